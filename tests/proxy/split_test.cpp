#include "proxy/split.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "flags/murmur3.hpp"
#include "proxy/config.hpp"

namespace fledge::proxy {
namespace {

std::vector<std::string> keys(std::size_t n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back("user-" + std::to_string(i * 7919 + 13));
  return out;
}

// Each arm's share over `n` keys must lie within 4 standard deviations of its weight.
void expectShares(const std::vector<double>& percents, std::size_t n) {
  std::vector<std::uint32_t> parts;
  for (double p : percents) {
    std::uint32_t x;
    ASSERT_TRUE(percentToParts(p, x)) << p;
    parts.push_back(x);
  }
  SplitTable table(parts);
  std::vector<std::size_t> counts(parts.size());
  for (const auto& k : keys(n)) ++counts[table.pick(splitPoint("route-web", k))];
  for (std::size_t i = 0; i < parts.size(); ++i) {
    double p = percents[i] / 100;
    double expected = p * static_cast<double>(n);
    double sigma = std::sqrt(static_cast<double>(n) * p * (1 - p));
    EXPECT_NEAR(static_cast<double>(counts[i]), expected, 4 * sigma + 1e-9)
        << "arm " << i << " weight " << percents[i] << "% got " << counts[i] << " of " << n;
  }
}

TEST(Split, SharesFollowWeights) {
  const std::size_t n = 200'000;
  expectShares({0.01, 99.99}, n);
  expectShares({1, 99}, n);
  expectShares({5, 95}, n);
  expectShares({50, 50}, n);
  expectShares({12.5, 37.5, 50}, n);
}

TEST(Split, PointIsFlagdFractionalScaling) {
  for (const auto& k : keys(1000)) {
    std::uint64_t h = flags::murmur3_x86_32("salt" + k);
    EXPECT_EQ(splitPoint("salt", k), static_cast<std::uint32_t>((h * 1'000'000) >> 32));
  }
}

TEST(Split, MonotonicRamp) {
  // Canary first: raising its weight only moves users into it, never out.
  const double steps[] = {1, 5, 25, 50, 100};
  const auto ks = keys(100'000);
  std::vector<char> in_canary(ks.size(), 0);
  for (double pct : steps) {
    std::uint32_t canary;
    ASSERT_TRUE(percentToParts(pct, canary));
    SplitTable table({canary, kSplitScale - canary});
    std::size_t count = 0;
    for (std::size_t i = 0; i < ks.size(); ++i) {
      bool now = table.pick(splitPoint("route-web", ks[i])) == 0;
      EXPECT_FALSE(in_canary[i] && !now) << ks[i] << " left the canary when it grew to " << pct << "%";
      in_canary[i] = now;
      count += now;
    }
    EXPECT_NEAR(static_cast<double>(count), pct / 100 * 100'000, 4 * std::sqrt(100'000 * pct / 100 * (1 - pct / 100)) + 1);
  }
}

TEST(Split, ZeroWeightArmsGetNothing) {
  SplitTable table({0, kSplitScale, 0});
  for (const auto& k : keys(10'000)) EXPECT_EQ(table.pick(splitPoint("s", k)), 1u);
  EXPECT_EQ(table.pick(0), 1u);
  EXPECT_EQ(table.pick(kSplitScale - 1), 1u);
}

TEST(Split, PercentParsing) {
  std::uint32_t p;
  EXPECT_TRUE(percentToParts(12.5, p));
  EXPECT_EQ(p, 125'000u);
  EXPECT_TRUE(percentToParts(0.0001, p));
  EXPECT_EQ(p, 1u);
  EXPECT_TRUE(percentToParts(100, p));
  EXPECT_EQ(p, 1'000'000u);
  EXPECT_FALSE(percentToParts(0.00001, p));  // finer than 1 in 1,000,000
  EXPECT_FALSE(percentToParts(-1, p));
  EXPECT_FALSE(percentToParts(100.5, p));
}

TEST(Split, ConfigValidationNamesTheField) {
  auto r = parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],
    "clusters":{"v1":{"endpoints":["127.0.0.1:1"]},"v2":{"endpoints":["127.0.0.1:2"]}},
    "routes":[
      {"name":"ok","split":{"arms":[{"name":"canary","cluster":"v2","weight":5},{"name":"stable","cluster":"v1","weight":95}]}},
      {"name":"sum","split":{"arms":[{"name":"a","cluster":"v2","weight":5},{"name":"b","cluster":"v1","weight":94.5}]}},
      {"name":"bad","split":{"arms":[{"name":"a","cluster":"nope","weight":50.00001},{"name":"a","cluster":"v1"}],
        "overrides":{"header":"x-fledge-arm","allow":["zzz"]}, "sticky":[{"ip":true}]}},
      {"name":"both","cluster":"v1","split":{"arms":[{"name":"a","cluster":"v1","weight":100},{"name":"b","cluster":"v1","weight":0}]}},
      {"name":"mirror","cluster":"v1","mirror":{"cluster":"gone","percent":150}}
    ]})");
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.errors) all += e.str() + "\n";
  for (const char* want : {
           "routes[1].split.arms: weights must sum to 100, got 99.5000",
           "routes[2].split.arms[0].weight: must be a percentage between 0 and 100 with at most 4 decimals",
           "routes[2].split.arms[0].cluster: unknown cluster \"nope\"",
           "routes[2].split.arms[1].name: duplicate arm \"a\"",
           "routes[2].split.arms[1].weight: is required",
           "routes[2].split.overrides.allow[0]: unknown arm \"zzz\"",
           "routes[2].split.sticky[0].ip: unknown field",
           "routes[3].split: a route has either \"cluster\" or \"split\", not both",
           "routes[4].mirror.percent: must be a percentage",
           "routes[4].mirror.cluster: unknown cluster \"gone\"",
       })
    EXPECT_NE(all.find(want), std::string::npos) << "missing: " << want << "\nall:\n" << all;
  EXPECT_EQ(all.find("routes[0]"), std::string::npos) << all;
}

TEST(Split, SaltDefaultsToRouteName) {
  auto r = parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],
    "clusters":{"v1":{"endpoints":["127.0.0.1:1"]}},
    "routes":[{"name":"web","split":{"arms":[{"name":"a","cluster":"v1","weight":50},{"name":"b","cluster":"v1","weight":50}]}},
              {"name":"api","split":{"salt":"custom","arms":[{"name":"a","cluster":"v1","weight":50},{"name":"b","cluster":"v1","weight":50}]}}]})");
  ASSERT_TRUE(r.ok()) << r.errors[0].str();
  EXPECT_EQ(r.config->routes[0].split->salt, "web");
  EXPECT_EQ(r.config->routes[1].split->salt, "custom");
}

}  // namespace
}  // namespace fledge::proxy
