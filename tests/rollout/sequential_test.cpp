// The sequential tests' arithmetic and their behaviour on small, hand-checked cases.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "rollout/analysis.hpp"
#include "rollout/histogram.hpp"
#include "rollout/sequential.hpp"

namespace fledge::rollout {
namespace {

double bruteNormalizer(std::uint64_t n1, std::uint64_t n2, std::uint64_t e, double theta) {
  auto choose = [](double n, double k) { return std::exp(std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1)); };
  double s = 0;
  for (std::uint64_t k = 0; k <= e; ++k) {
    if (k > n1 || e - k > n2) continue;
    s += choose(double(n1), double(k)) * choose(double(n2), double(e - k)) * std::pow(theta, double(k));
  }
  return std::log(s);
}

TEST(Sequential, FisherNormalizerMatchesTheSum) {
  for (auto [n1, n2, e] : std::vector<std::array<std::uint64_t, 3>>{{5, 7, 3}, {50, 950, 2}, {50, 950, 51}, {10, 3, 12}, {1, 1, 1}, {40, 60, 100}}) {
    for (double theta : {1.0, 1.5, 20.0, 1000.0}) {
      EXPECT_NEAR(logFisherNormalizer(n1, n2, e, std::log(theta)), bruteNormalizer(n1, n2, e, theta), 1e-9)
          << n1 << " " << n2 << " " << e << " " << theta;
    }
  }
}

// Under the null, the e-value's expectation is 1 in every interval: check it exactly by summing
// over the hypergeometric distribution of one interval.
TEST(Sequential, TwoSampleLikelihoodRatioHasMeanOneUnderTheNull) {
  const std::uint64_t n1 = 30, n2 = 200, e = 12;
  const double z1 = logFisherNormalizer(n1, n2, e, 0);
  double mean = 0;
  for (std::uint64_t k = 0; k <= e; ++k) {
    TwoSampleTest t(0.01);
    t.observe(n1, k, n2, e - k);
    double p = std::exp(std::lgamma(n1 + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n1 - k + 1.0) + std::lgamma(n2 + 1.0) -
                        std::lgamma(e - k + 1.0) - std::lgamma(n2 - (e - k) + 1.0) - z1);
    mean += p * std::exp(t.logEvidence());
  }
  EXPECT_NEAR(mean, 1.0, 1e-9);
}

TEST(Sequential, CeilingLikelihoodRatioIsAtMostOneOnAverageUpToTheCeiling) {
  for (double p : {0.0, 0.01, 0.05}) {
    double mean = 0;
    for (int x = 0; x <= 1; ++x) {
      CeilingTest t(0.01, 0.05);
      t.observe(1, x);
      mean += (x ? p : 1 - p) * std::exp(t.logEvidence());
    }
    EXPECT_LE(mean, 1.0 + 1e-12) << p;
  }
}

TEST(Sequential, NoInformationLeavesEvidenceAtZero) {
  TwoSampleTest t(0.01);
  t.observe(0, 0, 100, 5);   // no canary traffic
  t.observe(100, 0, 100, 0);  // nobody failed
  t.observe(10, 10, 10, 10);  // everybody failed
  EXPECT_DOUBLE_EQ(t.logEvidence(), 0);
  EXPECT_FALSE(t.rejected());
}

TEST(Sequential, AGrossFailureIsFoundInOneInterval) {
  TwoSampleTest t(0.0025);
  t.observe(50, 50, 950, 1);
  EXPECT_TRUE(t.rejected());
  CeilingTest c(0.0025, 0.05);
  c.observe(50, 50);
  EXPECT_TRUE(c.rejected());
}

TEST(Sequential, RejectionIsSticky) {
  TwoSampleTest t(0.01);
  t.observe(50, 50, 950, 1);
  ASSERT_TRUE(t.rejected());
  for (int i = 0; i < 100; ++i) t.observe(50, 0, 950, 50);
  EXPECT_TRUE(t.rejected());
}

TEST(Sequential, ToleratedRatioIsNotRejected) {
  // The canary fails twice as often as the baseline; with max_ratio 3 that is allowed.
  std::mt19937_64 rng(7);
  TwoSampleTest t(0.01, 3.0);
  for (int i = 0; i < 2000; ++i) {
    std::binomial_distribution<std::uint64_t> c(100, 0.02), b(900, 0.01);
    t.observe(100, c(rng), 900, b(rng));
  }
  EXPECT_FALSE(t.rejected()) << t.logEvidence();
}

TEST(Histogram, BoundsAndBuckets) {
  const auto& b = kLatencyBoundsUs;
  EXPECT_EQ(b.front(), 50u);
  EXPECT_EQ(b[3], 100u);
  EXPECT_EQ(b.back(), 10'000'000u);
  EXPECT_EQ(latencyBucket(0), 0u);
  EXPECT_EQ(latencyBucket(50), 0u);
  EXPECT_EQ(latencyBucket(51), 1u);
  EXPECT_EQ(latencyBucket(100), 3u);
  EXPECT_EQ(latencyBucket(10'000'001), kLatencyBounds);
  EXPECT_EQ(latencyBucket(1'000'000'000), kLatencyBounds);
  for (std::size_t k = 1; k < kLatencyBounds; ++k) {
    EXPECT_LT(b[k - 1], b[k]);
    EXPECT_LE(b[k], b[k - 1] * 4 / 3 + 1) << k;  // at most a third apart
  }
}

TEST(Analysis, AlphaIsSplitOverTheEnabledChecks) {
  AnalysisConfig cfg;  // errors, error_rate_max, latency p50 and p90
  Analyzer a(cfg, latencyBoundsMs());
  ASSERT_EQ(a.checks(), 4u);
  for (const auto& s : a.status()) EXPECT_DOUBLE_EQ(s.alpha, 0.0025) << s.name;
  cfg.p99_max_ms = 200;
  cfg.latency_quantiles = {0.5};
  Analyzer b(cfg, latencyBoundsMs());
  ASSERT_EQ(b.checks(), 4u);
  EXPECT_EQ(b.status().back().name, "latency_p99_max");
}

TEST(Analysis, LatencyThresholdComesFromEarlierBaselineIntervals) {
  AnalysisConfig cfg;
  cfg.latency_quantiles = {0.5};
  cfg.errors_compare = false;
  cfg.errors_max_rate = 0;
  Analyzer a(cfg, latencyBoundsMs());
  ArmInterval base, canary;
  base.latency.assign(kLatencyBuckets, 0);
  canary.latency.assign(kLatencyBuckets, 0);
  base.latency[latencyBucket(10'000)] = 100;  // baseline: all at 10 ms
  canary.latency[latencyBucket(60'000)] = 100;  // canary: all at 60 ms
  base.requests = canary.requests = 100;
  // First interval: no earlier baseline data, no threshold, no verdict.
  EXPECT_FALSE(a.observe(canary, base));
  EXPECT_EQ(a.status()[0].canary_n, 0u);
  // Second: threshold 10 ms from the first, every canary request above it.
  auto f = a.observe(canary, base);
  ASSERT_TRUE(f);
  EXPECT_NEAR(a.status()[0].bound_ms, 11.0, 11.0 * 0.2);  // the baseline median plus the 1 ms minimum shift
  EXPECT_EQ(a.status()[0].canary_x, 100u);
  EXPECT_NE(a.status()[0].summary().find("failed"), std::string::npos);
}

// A tight baseline (everything at 0.2 ms) and a canary with a small slow tail (1.5 % at 3 ms):
// the canary is, truly, slower at 1.2 ms, but a median check must not roll it back for its tail.
// Seen on a loaded 2-core machine with two echo upstreams in separate processes.
TEST(Analysis, ATailDifferenceDoesNotFailAMedianCheck) {
  AnalysisConfig cfg;
  cfg.errors_compare = false;
  cfg.errors_max_rate = 0;
  Analyzer a(cfg, latencyBoundsMs());
  ArmInterval base, canary;
  base.latency.assign(kLatencyBuckets, 0);
  canary.latency.assign(kLatencyBuckets, 0);
  base.latency[latencyBucket(200)] = 1000;
  canary.latency[latencyBucket(200)] = 197;
  canary.latency[latencyBucket(3'000)] = 3;
  base.requests = 1000;
  canary.requests = 200;
  for (int t = 0; t < 600; ++t) ASSERT_FALSE(a.observe(canary, base)) << "second " << t << ": " << a.status()[0].summary();
  // The same canary with most of its requests slow is rolled back.
  canary.latency[latencyBucket(200)] = 40;
  canary.latency[latencyBucket(3'000)] = 160;
  std::optional<std::size_t> f;
  for (int t = 0; t < 5 && !f; ++t) f = a.observe(canary, base);
  ASSERT_TRUE(f);
  EXPECT_EQ(a.status()[*f].name.rfind("latency_p", 0), 0u) << a.status()[*f].name;
}

}  // namespace
}  // namespace fledge::rollout
