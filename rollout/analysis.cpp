#include "rollout/analysis.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace fledge::rollout {

std::uint64_t above(const std::vector<std::uint64_t>& hist, std::size_t bucket) {
  std::uint64_t n = 0;
  for (std::size_t i = bucket + 1; i < hist.size(); ++i) n += hist[i];
  return n;
}

namespace {

std::string fmt(const char* f, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a, b, c, d);
  return buf;
}

}  // namespace

std::string CheckStatus::summary() const {
  const double cr = canary_n ? double(canary_x) / double(canary_n) : 0;
  const double br = baseline_n ? double(baseline_x) / double(baseline_n) : 0;
  std::string s = name + ": canary " + std::to_string(canary_x) + "/" + std::to_string(canary_n);
  if (baseline_n) s += ", baseline " + std::to_string(baseline_x) + "/" + std::to_string(baseline_n);
  s += fmt(" (%.3g%% vs %.3g%%)", 100 * cr, 100 * br);
  if (bound_ms > 0) s += fmt(", above %.4g ms", bound_ms);
  s += fmt(", evidence %.2f of %.2f", evidence, threshold);
  s += failed ? ": failed" : ": ok";
  return s;
}

Analyzer::Analyzer(AnalysisConfig cfg, std::vector<double> bounds_ms) : cfg_(std::move(cfg)), bounds_ms_(std::move(bounds_ms)) {
  std::size_t n = (cfg_.errors_compare ? 1 : 0) + (cfg_.errors_max_rate > 0 ? 1 : 0) + cfg_.latency_quantiles.size() +
                  (cfg_.p50_max_ms > 0 ? 1 : 0) + (cfg_.p99_max_ms > 0 ? 1 : 0);
  const double alpha = cfg_.false_rollback / double(std::max<std::size_t>(n, 1));
  if (cfg_.errors_compare) checks_.push_back({Kind::kErrors, "errors", 0, TwoSampleTest(alpha, cfg_.errors_max_ratio), std::nullopt});
  if (cfg_.errors_max_rate > 0)
    checks_.push_back({Kind::kErrorRateMax, "error_rate_max", 0, CeilingTest(alpha, cfg_.errors_max_rate), std::nullopt});
  for (double q : cfg_.latency_quantiles) {
    const double odds = cfg_.latency_max_ratio * (1 - q) / q;  // of a canary request being above the bound
    checks_.push_back({Kind::kLatencyRelative, "latency_p" + fmt("%g", q * 100), q, TwoSampleTest(alpha, cfg_.latency_max_ratio),
                       CeilingTest(alpha, odds / (1 + odds))});
  }
  if (cfg_.p50_max_ms > 0) checks_.push_back({Kind::kLatencyMax, "latency_p50_max", cfg_.p50_max_ms, CeilingTest(alpha, 0.5), std::nullopt});
  if (cfg_.p99_max_ms > 0) checks_.push_back({Kind::kLatencyMax, "latency_p99_max", cfg_.p99_max_ms, CeilingTest(alpha, 0.01), std::nullopt});
  recent_base_.assign(std::max<std::uint32_t>(cfg_.baseline_window, 1), std::vector<std::uint64_t>(bounds_ms_.size() + 1));
  recent_sum_.assign(bounds_ms_.size() + 1, 0);
}

bool Analyzer::Check::rejected() const {
  return std::visit([](const auto& t) { return t.rejected(); }, test) && (!share || share->rejected());
}

double Analyzer::Check::logEvidence() const {
  const double e = std::visit([](const auto& t) { return t.logEvidence(); }, test);
  return share ? std::min(e, share->logEvidence()) : e;  // against both nulls: the smaller e-value
}

// The bucket whose upper bound is the baseline's q-quantile over the recent intervals: the
// first whose cumulative share reaches q. None without data, or when that is the open top bucket.
std::optional<std::size_t> Analyzer::baselineQuantileBucket(double q) const {
  std::uint64_t total = 0;
  for (auto c : recent_sum_) total += c;
  if (total == 0) return std::nullopt;
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < bounds_ms_.size(); ++i) {
    cum += recent_sum_[i];
    if (double(cum) >= q * double(total)) return i;
  }
  return std::nullopt;
}

std::optional<std::size_t> Analyzer::observe(const ArmInterval& canary, const ArmInterval& baseline) {
  std::optional<std::size_t> failed;
  auto hist = [&](const ArmInterval& a) -> const std::vector<std::uint64_t>& {
    static const std::vector<std::uint64_t> empty;
    return a.latency.size() == bounds_ms_.size() + 1 ? a.latency : empty;
  };
  const auto& ch = hist(canary);
  const auto& bh = hist(baseline);
  for (std::size_t i = 0; i < checks_.size(); ++i) {
    auto& c = checks_[i];
    const bool was = c.rejected();
    switch (c.kind) {
      case Kind::kErrors:
        std::get<TwoSampleTest>(c.test).observe(canary.requests, canary.errors, baseline.requests, baseline.errors);
        break;
      case Kind::kErrorRateMax:
        std::get<CeilingTest>(c.test).observe(canary.requests, canary.errors);
        break;
      case Kind::kLatencyRelative: {
        // The threshold comes from earlier intervals only, so it is fixed before this interval's
        // data is seen (what keeps the test valid).
        auto q = baselineQuantileBucket(c.param);
        if (!q || ch.empty() || bh.empty()) break;
        auto it = std::lower_bound(bounds_ms_.begin(), bounds_ms_.end(), bounds_ms_[*q] + cfg_.latency_min_shift_ms);
        if (it == bounds_ms_.end()) break;
        const std::size_t b = std::size_t(it - bounds_ms_.begin());
        c.bound_ms = bounds_ms_[b];
        std::uint64_t cn = 0, bn = 0;
        for (auto v : ch) cn += v;
        for (auto v : bh) bn += v;
        std::get<TwoSampleTest>(c.test).observe(cn, above(ch, b), bn, above(bh, b));
        c.share->observe(cn, above(ch, b));
        break;
      }
      case Kind::kLatencyMax: {
        // The first bound at or above the ceiling: counting above it never counts more than
        // above the ceiling itself, so the test stays conservative.
        auto it = std::lower_bound(bounds_ms_.begin(), bounds_ms_.end(), c.param);
        if (it == bounds_ms_.end() || ch.empty()) break;
        const std::size_t b = std::size_t(it - bounds_ms_.begin());
        c.bound_ms = bounds_ms_[b];
        std::uint64_t cn = 0;
        for (auto v : ch) cn += v;
        std::get<CeilingTest>(c.test).observe(cn, above(ch, b));
        break;
      }
    }
    if (!was && c.rejected() && !failed) failed = i;
  }
  if (!bh.empty()) {
    auto& slot = recent_base_[recent_next_];
    for (std::size_t i = 0; i < slot.size(); ++i) recent_sum_[i] += bh[i] - slot[i];
    slot = bh;
    recent_next_ = (recent_next_ + 1) % recent_base_.size();
  }
  return failed;
}

std::vector<CheckStatus> Analyzer::status() const {
  std::vector<CheckStatus> out;
  for (const auto& c : checks_) {
    CheckStatus s;
    s.name = c.name;
    s.bound_ms = c.bound_ms;
    std::visit(
        [&](const auto& t) {
          s.alpha = t.alpha();
          s.threshold = t.threshold();
          if constexpr (std::is_same_v<std::decay_t<decltype(t)>, TwoSampleTest>) {
            s.canary_n = t.canaryN();
            s.canary_x = t.canaryX();
            s.baseline_n = t.baseN();
            s.baseline_x = t.baseX();
          } else {
            s.canary_n = t.n();
            s.canary_x = t.x();
          }
        },
        c.test);
    s.evidence = c.logEvidence();
    s.failed = c.rejected();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fledge::rollout
