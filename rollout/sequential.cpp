#include "rollout/sequential.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fledge::rollout {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double logChoose(double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); }

// log sum_j exp(v_j) / size
double logMean(const std::vector<double>& v) {
  double m = *std::max_element(v.begin(), v.end());
  if (m == kNegInf) return m;
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s / static_cast<double>(v.size()));
}

}  // namespace

void logFisherNormalizers(std::uint64_t n1, std::uint64_t n2, std::uint64_t e, const std::vector<double>& log_thetas,
                          std::vector<double>& out) {
  out.assign(log_thetas.size(), kNegInf);
  if (e > n1 + n2) return;
  const std::uint64_t lo = e > n2 ? e - n2 : 0;
  const std::uint64_t hi = std::min(e, n1);
  // log C(n1,k) C(n2,e-k) for every k of the support, by the ratio of neighbours (the terms
  // with theta's power are log-concave in k, so each sum is dominated by a few around its mode).
  thread_local std::vector<double> base;
  base.resize(hi - lo + 1);
  base[0] = logChoose(double(n1), double(lo)) + logChoose(double(n2), double(e - lo));
  for (std::uint64_t k = lo; k < hi; ++k) {
    base[k - lo + 1] = base[k - lo] + std::log(double(n1 - k) * double(e - k) / (double(k + 1) * double(n2 + k + 1 - e)));
  }
  for (std::size_t j = 0; j < log_thetas.size(); ++j) {
    double m = kNegInf;
    for (std::size_t i = 0; i < base.size(); ++i) m = std::max(m, base[i] + double(lo + i) * log_thetas[j]);
    double s = 0;
    for (std::size_t i = 0; i < base.size(); ++i) {
      const double d = base[i] + double(lo + i) * log_thetas[j] - m;
      if (d > -60) s += std::exp(d);
    }
    out[j] = m + std::log(s);
  }
}

double logFisherNormalizer(std::uint64_t n1, std::uint64_t n2, std::uint64_t e, double log_theta) {
  std::vector<double> out;
  logFisherNormalizers(n1, n2, e, {log_theta}, out);
  return out[0];
}

TwoSampleTest::TwoSampleTest(double alpha, double null_ratio) : alpha_(alpha), log_null_(std::log(null_ratio)) {
  // Alternatives from a quarter more up to a thousand times the null odds: small shifts are found
  // with much data, gross failures within one interval.
  for (double r : {1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0, 1000.0}) log_ratio_.push_back(log_null_ + std::log(r));
  log_m_.assign(log_ratio_.size(), 0.0);
  log_all_.push_back(log_null_);
  log_all_.insert(log_all_.end(), log_ratio_.begin(), log_ratio_.end());
}

void TwoSampleTest::observe(std::uint64_t canary_n, std::uint64_t canary_x, std::uint64_t base_n, std::uint64_t base_x) {
  canary_x = std::min(canary_x, canary_n);
  base_x = std::min(base_x, base_n);
  cn_ += canary_n;
  cx_ += canary_x;
  bn_ += base_n;
  bx_ += base_x;
  const std::uint64_t e = canary_x + base_x;
  // No information unless both arms saw requests and some but not all had the outcome.
  if (canary_n == 0 || base_n == 0 || e == 0 || e == canary_n + base_n) return;
  thread_local std::vector<double> z;
  logFisherNormalizers(canary_n, base_n, e, log_all_, z);  // z[0]: the null
  for (std::size_t j = 0; j < log_ratio_.size(); ++j) {
    log_m_[j] += double(canary_x) * (log_ratio_[j] - log_null_) + z[0] - z[j + 1];
  }
  if (logEvidence() >= threshold()) rejected_ = true;
}

double TwoSampleTest::logEvidence() const { return logMean(log_m_); }
double TwoSampleTest::threshold() const { return std::log(1 / alpha_); }

CeilingTest::CeilingTest(double alpha, double max_rate) : alpha_(alpha), max_rate_(max_rate) {}

double CeilingTest::nextBet() const {
  const double max_bet = kMaxLoss / max_rate_;  // a request without the outcome costs at most half the wealth
  std::uint64_t n = 0, x = 0;
  for (const auto& [rn, rx] : recent_) n += rn, x += rx;
  if (n == 0) return max_bet / 2;  // nothing seen yet: a fixed, moderate bet
  // Kelly's bet for the recent rate (shrunk a little toward the ceiling), clipped to [0, max].
  const double p = (double(x) + max_rate_) / (double(n) + 1);
  const double kelly = (p - max_rate_) / (max_rate_ * (1 - max_rate_));
  return std::clamp(kelly, 0.0, max_bet);
}

void CeilingTest::observe(std::uint64_t n, std::uint64_t x) {
  x = std::min(x, n);
  n_ += n;
  x_ += x;
  if (n == 0) return;
  const double bet = nextBet();  // decided before this interval's data
  log_wealth_ += double(x) * std::log1p(bet * (1 - max_rate_)) + double(n - x) * std::log1p(-bet * max_rate_);
  recent_.emplace_back(n, x);
  if (recent_.size() > kRecent) recent_.pop_front();
  if (logEvidence() >= threshold()) rejected_ = true;
}

double CeilingTest::logEvidence() const { return log_wealth_; }
double CeilingTest::threshold() const { return std::log(1 / alpha_); }

}  // namespace fledge::rollout
