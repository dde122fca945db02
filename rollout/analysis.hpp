#pragma once
// Canary analysis: the checks a rollout runs every interval on the canary and baseline arms, each
// an anytime-valid sequential test (rollout/sequential.hpp). The stated false-rollback
// probability is split evenly over the enabled checks, so the chance that any check ever fails
// while none of their hypotheses is violated is at most that probability, for the whole rollout,
// however long it runs. Pure: intervals in, verdicts out.
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "rollout/sequential.hpp"

namespace fledge::rollout {

// What one arm did in one interval.
struct ArmInterval {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;            // responses whose status counts as an error
  std::vector<std::uint64_t> latency;  // per bucket of the analysis bounds (+1: above the last)
};

struct AnalysisConfig {
  double false_rollback = 0.01;  // for the whole rollout, all checks together
  // Error rate relative to the baseline: rolled back when the canary's odds of an error are
  // shown to exceed max_ratio times the baseline's (1: any increase).
  bool errors_compare = true;
  double errors_max_ratio = 1.0;
  // Absolute guard: rolled back when the canary's error rate is shown to exceed this (0: off).
  double errors_max_rate = 0.05;
  // Latency relative to the baseline, at each quantile q: rolled back when the canary's odds of
  // being slower than the baseline's q-quantile (plus min_shift_ms) are shown both to exceed
  // max_ratio times the baseline's odds there and to exceed max_ratio times the odds q itself
  // names (1.5 at q = 0.5: more than 60 % of canary requests slower than the baseline median).
  // The second keeps a tail difference (say 1.4 % of canary requests above the threshold where
  // the baseline has none) from failing a median check.
  std::vector<double> latency_quantiles = {0.5, 0.9};
  double latency_max_ratio = 1.5;
  // Differences smaller than this are not judged: the threshold is the first bucket bound at
  // least this far above the baseline quantile (sub-millisecond noise between two hosts is not
  // a regression).
  double latency_min_shift_ms = 1.0;
  // Absolute latency ceilings (0: off): rolled back when the canary's p50 (p99) is shown to be
  // above this many milliseconds.
  double p50_max_ms = 0;
  double p99_max_ms = 0;
  // The baseline quantile that latency checks compare against follows this many past intervals.
  std::uint32_t baseline_window = 60;
};

// A check's current standing, for the API and the audit trail.
struct CheckStatus {
  std::string name;  // errors, error_rate_max, latency_p50, latency_p90, latency_p50_max, ...
  double alpha = 0;
  double evidence = 0;   // log e-value
  double threshold = 0;  // log(1/alpha): the check fails when evidence reaches it
  bool failed = false;
  std::uint64_t canary_n = 0, canary_x = 0, baseline_n = 0, baseline_x = 0;  // x: errors or slow requests
  double bound_ms = 0;   // latency checks: the threshold last used
  std::string summary() const;  // one line in words
};

class Analyzer {
 public:
  // bounds_ms: the upper bounds of the latency buckets, increasing.
  Analyzer(AnalysisConfig cfg, std::vector<double> bounds_ms);

  // One interval of both arms; returns the index (into status()) of a check that failed now.
  std::optional<std::size_t> observe(const ArmInterval& canary, const ArmInterval& baseline);
  std::vector<CheckStatus> status() const;
  std::size_t checks() const { return checks_.size(); }

 private:
  enum class Kind { kErrors, kErrorRateMax, kLatencyRelative, kLatencyMax };
  struct Check {
    Kind kind;
    std::string name;
    double param;  // quantile (relative) or ceiling in ms (max)
    std::variant<TwoSampleTest, CeilingTest> test;
    // Relative latency: the canary's share above the bound against its nominal ceiling. The
    // check fails only when both tests reject (an intersection-union test: still level alpha).
    std::optional<CeilingTest> share;
    double bound_ms = 0;
    bool rejected() const;
    double logEvidence() const;
  };
  std::optional<std::size_t> baselineQuantileBucket(double q) const;

  AnalysisConfig cfg_;
  std::vector<double> bounds_ms_;
  std::vector<Check> checks_;
  std::vector<std::vector<std::uint64_t>> recent_base_;  // ring of the baseline's past histograms
  std::vector<std::uint64_t> recent_sum_;
  std::size_t recent_next_ = 0;
};

// Share of an interval's requests in buckets above `bucket` (bucket i holds latencies up to
// bounds[i]; the last bucket is above every bound).
std::uint64_t above(const std::vector<std::uint64_t>& hist, std::size_t bucket);

}  // namespace fledge::rollout
