// Canary splitting end to end: distribution, stickiness, agreement with flagd-core's
// fractional, cookie assignment and tester overrides, through the real binary.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "proxy/split.hpp"
#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

std::string splitConfig(const EchoUpstream& stable, const EchoUpstream& canary, double canary_pct,
                        const std::string& split_extra = "", const std::string& salt = "") {
  char weights[128];
  std::snprintf(weights, sizeof weights, R"({"name":"canary","cluster":"v2","weight":%g},{"name":"stable","cluster":"v1","weight":%g})",
                canary_pct, 100 - canary_pct);
  std::string split = std::string(R"({"arms":[)") + weights + "]" + (salt.empty() ? "" : R"(,"salt":")" + salt + "\"") +
                      R"(,"sticky":[{"header":"x-user-id"},{"cookie":"session"}])" + split_extra + "}";
  return config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
                R"([{"name":"web","match":{"path_prefix":"/"},"split":)" + split + "}]");
}

// The arm that served a request: the echo upstream's name, cross-checked with x-fledge-arm.
std::string armOf(const http::response<http::string_body>& res) {
  std::string name = echoField(res.body(), "name");
  auto header = echoHeader(res.body(), "x-fledge-arm");
  if (!header || *header != name) return "mismatch(" + name + "," + header.value_or("none") + ")";
  return name;
}

TEST(SplitE2E, DistinctUsersFollowTheWeight) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 10));
  Client c(f.port());
  const int n = 10'000;
  std::map<std::string, int> seen;
  for (int i = 0; i < n; ++i) {
    auto res = c.request(http::verb::get, "/p", {{"X-User-Id", "user-" + std::to_string(i)}});
    ASSERT_EQ(res.result_int(), 200);
    ++seen[armOf(res)];
  }
  const double sigma = std::sqrt(n * 0.1 * 0.9);
  EXPECT_NEAR(seen["canary"], n * 0.1, 4 * sigma) << seen["canary"];
  EXPECT_EQ(seen["canary"] + seen["stable"], n);
}

TEST(SplitE2E, SameKeyAlwaysSameArm) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 50));
  for (const char* user : {"alice", "bob", "carol"}) {
    Client c(f.port());
    std::map<std::string, int> seen;
    for (int i = 0; i < 1000; ++i) ++seen[armOf(c.request(http::verb::get, "/s", {{"X-User-Id", user}}))];
    EXPECT_EQ(seen.size(), 1u) << user;
    const std::string want = proxy::splitPoint("web", user) < 500'000 ? "canary" : "stable";
    EXPECT_EQ(seen.begin()->first, want) << user;
  }
}

TEST(SplitE2E, AgreesWithFlagdCoreFractional) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 50, "", "shop-salt"));
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) keys.push_back("key-" + std::to_string(i * 31 + 7));
  std::string key_file = writeTempFile("", ".txt");
  {
    FILE* out = std::fopen(key_file.c_str(), "w");
    for (const auto& k : keys) std::fprintf(out, "%s\n", k.c_str());
    std::fclose(out);
  }
  std::string cmd = "node " + sourceDir() + "/tests/node/split_oracle.mjs shop-salt canary:500000,stable:500000 < " + key_file;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  std::vector<std::string> oracle;
  char line[256];
  while (std::fgets(line, sizeof line, pipe.get())) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    oracle.push_back(s);
  }
  std::remove(key_file.c_str());
  ASSERT_EQ(oracle.size(), keys.size()) << "split_oracle.mjs failed";
  Client c(f.port());
  int mismatches = 0, canaries = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::string arm = armOf(c.request(http::verb::get, "/o", {{"X-User-Id", keys[i]}}));
    mismatches += arm != oracle[i];
    canaries += arm == "canary";
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(canaries, 100);
  EXPECT_LT(canaries, 200);
}

TEST(SplitE2E, AssignedCookieKeepsAVisitorOnTheirArm) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 50,
                       R"(,"assign_cookie":{"name":"fl_id","max_age":3600,"secure":true,"same_site":"Strict"},"expose_arm_header":true)"));
  std::map<std::string, int> first_arms;
  for (int visitor = 0; visitor < 20; ++visitor) {
    Client c(f.port());
    auto first = c.request(http::verb::get, "/");
    std::string set_cookie(first[http::field::set_cookie]);
    ASSERT_EQ(set_cookie.rfind("fl_id=", 0), 0u) << set_cookie;
    EXPECT_NE(set_cookie.find("; Max-Age=3600"), std::string::npos) << set_cookie;
    EXPECT_NE(set_cookie.find("; SameSite=Strict; Secure; HttpOnly"), std::string::npos) << set_cookie;
    std::string id = set_cookie.substr(6, set_cookie.find(';') - 6);
    std::string arm = armOf(first);
    EXPECT_EQ(std::string(first["x-fledge-arm"]), arm);  // expose_arm_header
    ++first_arms[arm];
    for (int i = 0; i < 20; ++i) {
      auto res = c.request(http::verb::get, "/again", {{"Cookie", "fl_id=" + id}});
      EXPECT_EQ(armOf(res), arm);
      EXPECT_TRUE(res[http::field::set_cookie].empty());  // already has one
    }
  }
  EXPECT_EQ(first_arms.size(), 2u);  // 20 visitors at 50/50: both arms (p of failure ~2e-6)
}

TEST(SplitE2E, OverridesNeedTheTokenAndAnAllowlistedArm) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 0,
                       R"(,"overrides":{"header":"X-Fledge-Arm","cookie":"fledge_arm","allow":["canary"],"token":"s3cret"})"));
  Client c(f.port());
  // At 0% every normal request goes to stable.
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"X-User-Id", "u"}})), "stable");
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"X-Fledge-Arm", "canary;token=s3cret"}})), "canary");
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"Cookie", "fledge_arm=canary;token=s3cret"}})), "stable")
      << "a cookie value cannot hold ';' unquoted: the token is cut off, so it must not pass";
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"X-Fledge-Arm", "canary"}})), "stable");              // no token
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"X-Fledge-Arm", "canary;token=wrong"}})), "stable");  // bad token
  auto res = c.request(http::verb::get, "/", {{"X-Fledge-Arm", "canary;token=s3cret"}});
  // The override header itself never reaches the upstream; only Fledge's own x-fledge-arm does.
  EXPECT_EQ(echoHeader(res.body(), "x-fledge-arm"), "canary");
}

TEST(SplitE2E, OverrideByCookieWithoutToken) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 0, R"(,"overrides":{"cookie":"fledge_arm","allow":["canary"]})"));
  Client c(f.port());
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"Cookie", "a=b; fledge_arm=canary"}})), "canary");
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"Cookie", "fledge_arm=stable"}})), "stable");
  EXPECT_EQ(armOf(c.request(http::verb::get, "/", {{"Cookie", "fledge_arm=nonexistent"}})), "stable");
}

TEST(SplitE2E, RequestsWithoutAKeyGetARandomPoint) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(splitConfig(stable, canary, 50));
  Client c(f.port());
  std::map<std::string, int> seen;
  for (int i = 0; i < 400; ++i) ++seen[armOf(c.request(http::verb::get, "/anon"))];
  EXPECT_NEAR(seen["canary"], 200, 4 * std::sqrt(400 * 0.25));
}

}  // namespace
}  // namespace fledge::test
