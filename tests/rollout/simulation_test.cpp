// The analysis's floors, by simulation: injected randomness, one analysis per simulated second,
// no clock and no network. Each scenario runs at least 500 rollouts; the table it prints is the
// one in the README (ctest -R Simulation --verbose, or run the unit-test binary with
// --gtest_filter='Simulation*').
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "rollout/analysis.hpp"
#include "rollout/histogram.hpp"

namespace fledge::rollout {
namespace {

struct Arm {
  double error_rate = 0.001;
  double median_ms = 10;  // lognormal latency
  double sigma = 0.5;
};

struct Scenario {
  const char* name;
  double rps = 1000;     // both arms together
  double canary_share = 0.05;
  Arm baseline, canary;
  int seconds = 300;     // how long a rollout is watched
  int healthy_first = 0;  // seconds the canary behaves like the baseline before it regresses
};

struct Outcome {
  bool rolled_back = false;
  int seconds = 0;  // of data when the decision fell
  std::string check;
};

class Simulator {
 public:
  explicit Simulator(std::uint64_t seed) : rng_(seed) {}

  Outcome run(const Scenario& s, const AnalysisConfig& cfg) {
    Analyzer a(cfg, latencyBoundsMs());
    const auto base_p = bucketProbabilities(s.baseline);
    const auto canary_p = bucketProbabilities(s.canary);
    for (int t = 1; t <= s.healthy_first + s.seconds; ++t) {
      const bool regressed = t > s.healthy_first;
      auto canary = interval(s.rps * s.canary_share, regressed ? s.canary : s.baseline, regressed ? canary_p : base_p);
      auto base = interval(s.rps * (1 - s.canary_share), s.baseline, base_p);
      // Times count from the regression (a rollback before it is a false one: negative).
      if (auto f = a.observe(canary, base)) return {true, t - s.healthy_first, a.status()[*f].name};
    }
    return {false, s.seconds, {}};
  }

 private:
  static std::vector<double> bucketProbabilities(const Arm& arm) {
    const auto& bounds = kLatencyBoundsUs;
    std::vector<double> p(kLatencyBuckets);
    double prev = 0;
    for (std::size_t i = 0; i < kLatencyBounds; ++i) {
      const double z = (std::log(bounds[i] / 1000.0) - std::log(arm.median_ms)) / arm.sigma;
      const double cdf = 0.5 * std::erfc(-z / std::sqrt(2.0));
      p[i] = cdf - prev;
      prev = cdf;
    }
    p[kLatencyBounds] = 1 - prev;
    return p;
  }

  ArmInterval interval(double rate, const Arm& arm, const std::vector<double>& p) {
    ArmInterval out;
    out.requests = std::poisson_distribution<std::uint64_t>(rate)(rng_);
    out.errors = std::binomial_distribution<std::uint64_t>(out.requests, arm.error_rate)(rng_);
    // Multinomial over the buckets by successive conditional binomials.
    out.latency.assign(kLatencyBuckets, 0);
    std::uint64_t left = out.requests;
    double mass = 1;
    for (std::size_t i = 0; i < kLatencyBuckets && left > 0; ++i) {
      if (p[i] <= 0) continue;
      const double q = std::min(1.0, p[i] / mass);
      const std::uint64_t k = q >= 1 ? left : std::binomial_distribution<std::uint64_t>(left, q)(rng_);
      out.latency[i] = k;
      left -= k;
      mass -= p[i];
    }
    if (left) out.latency[kLatencyBounds] += left;
    return out;
  }

  std::mt19937_64 rng_;
};

struct Summary {
  int runs = 0, rolled_back = 0;
  double median_s = 0, p95_s = 0, max_s = 0;
};

Summary runMany(const Scenario& s, int runs, std::uint64_t seed) {
  Simulator sim(seed);
  AnalysisConfig cfg;  // the defaults: what a rollout without "analysis" gets
  std::vector<int> times;
  Summary out;
  out.runs = runs;
  for (int r = 0; r < runs; ++r) {
    auto o = sim.run(s, cfg);
    if (o.rolled_back) {
      ++out.rolled_back;
      times.push_back(o.seconds);
    }
  }
  if (!times.empty()) {
    std::sort(times.begin(), times.end());
    out.median_s = times[times.size() / 2];
    out.p95_s = times[std::min(times.size() - 1, std::size_t(std::ceil(0.95 * double(times.size()))) - 1)];
    out.max_s = times.back();
  }
  std::printf("%-44s runs %4d  rolled back %4d (%5.1f %%)  median %4.0f s  p95 %4.0f s  max %4.0f s\n", s.name, runs,
              out.rolled_back, 100.0 * out.rolled_back / runs, out.median_s, out.p95_s, out.max_s);
  return out;
}

TEST(Simulation, HealthyCanaryIsRarelyRolledBack) {
  Scenario s{"healthy (1000 rps, canary 5 %, 5 min)"};
  auto r = runMany(s, 600, 1);
  EXPECT_LE(r.rolled_back, 6);  // at most 1 % of the runs
}

TEST(Simulation, HealthyCanaryWithDriftingLoadAndHalfTheTraffic) {
  // The baseline's own error rate and latency need not be known or steady: both arms share them.
  Scenario s{"healthy, canary 50 %, 2 % errors, 40 ms", 200, 0.5, {0.02, 40, 0.8}, {0.02, 40, 0.8}, 300};
  auto r = runMany(s, 500, 2);
  EXPECT_LE(r.rolled_back, 5);
}

TEST(Simulation, ErrorRegressionIsFoundWithinSeconds) {
  Scenario s{"canary 2 % 5xx vs 0.1 % (50 rps canary)"};
  s.canary.error_rate = 0.02;
  s.seconds = 120;
  auto r = runMany(s, 500, 3);
  EXPECT_EQ(r.rolled_back, 500);
  EXPECT_LE(r.median_s, 10);
  EXPECT_LE(r.p95_s, 20);
}

TEST(Simulation, LatencyRegressionIsFoundWithinSeconds) {
  Scenario s{"canary +50 ms median over 10 ms (50 rps)"};
  s.canary.median_ms = 60;
  s.seconds = 120;
  auto r = runMany(s, 500, 4);
  EXPECT_EQ(r.rolled_back, 500);
  EXPECT_LE(r.median_s, 10);
}

// Anytime validity must not mean "slow after a long quiet spell": five healthy minutes first,
// then the canary starts failing 5 % of its requests (a later step's load, a bad dependency).
TEST(Simulation, LateRegressionIsFoundAsFastAsAnEarlyOne) {
  Scenario s{"healthy 5 min, then canary 5 % 5xx (50 rps)"};
  s.canary.error_rate = 0.05;
  s.healthy_first = 300;
  s.seconds = 120;
  auto r = runMany(s, 500, 6);
  EXPECT_EQ(r.rolled_back, 500);
  EXPECT_LE(r.median_s, 10);
  EXPECT_LE(r.p95_s, 20);
}

TEST(Simulation, TotalFailureIsFoundInTwoSeconds) {
  Scenario s{"canary 100 % 5xx (50 rps)"};
  s.canary.error_rate = 1.0;
  s.seconds = 30;
  auto r = runMany(s, 500, 5);
  EXPECT_EQ(r.rolled_back, 500);
  EXPECT_LE(r.max_s, 2);
}

}  // namespace
}  // namespace fledge::rollout
