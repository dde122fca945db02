#pragma once
// Anytime-valid sequential tests for canary analysis: each is a test martingale (an e-process)
// that the analysis may look at as often as it likes. By Ville's inequality the probability that
// it ever reaches 1/alpha while its null hypothesis holds is at most alpha, so checking every
// second does not inflate false alarms (Lindon, Sanden, Shirikian, KDD 2022, arXiv 2205.14762,
// use the same property for count and latency data). Pure arithmetic: no clock, no I/O.
#include <cstdint>
#include <deque>
#include <utility>
#include <vector>

namespace fledge::rollout {

// Two arms, one binary outcome per request (an error, or a latency above a threshold), observed
// in intervals. H0: the odds of the outcome in the canary are at most `null_ratio` times the
// baseline's. Within an interval, given how many outcomes the two arms had together, the number
// that fell in the canary follows Fisher's noncentral hypergeometric distribution with the odds
// ratio as parameter, whatever the baseline rate is and however it drifts between intervals. The
// test multiplies, per interval, the likelihood ratio of alternative odds ratios against the null
// one (a supermartingale under H0 for any ratio up to null_ratio) and mixes the alternatives.
class TwoSampleTest {
 public:
  explicit TwoSampleTest(double alpha, double null_ratio = 1.0);

  // One interval: canary requests and outcomes, baseline requests and outcomes.
  void observe(std::uint64_t canary_n, std::uint64_t canary_x, std::uint64_t base_n, std::uint64_t base_x);

  double logEvidence() const;            // log of the mixture e-value
  double threshold() const;              // log(1/alpha)
  bool rejected() const { return rejected_; }  // once true, stays true
  double alpha() const { return alpha_; }
  // Outcome share per arm over everything observed (for reports).
  std::uint64_t canaryN() const { return cn_; }
  std::uint64_t canaryX() const { return cx_; }
  std::uint64_t baseN() const { return bn_; }
  std::uint64_t baseX() const { return bx_; }

 private:
  double alpha_, log_null_;
  std::vector<double> log_ratio_;  // alternatives: log odds ratios
  std::vector<double> log_all_;    // the null, then the alternatives
  std::vector<double> log_m_;      // per alternative: log of its likelihood-ratio product
  std::uint64_t cn_ = 0, cx_ = 0, bn_ = 0, bx_ = 0;
  bool rejected_ = false;
};

// One arm against a fixed ceiling: H0: the share of requests with the outcome is at most
// `max_rate`. A betting martingale (Waudby-Smith & Ramdas, "Estimating means of bounded random
// variables by betting", 2023): each request multiplies the wealth by 1 + bet * (X - max_rate),
// X = 1 for the outcome, with a bet in [0, 0.5 / max_rate] fixed before the interval from the
// recent intervals' rate (Kelly's bet for it). Under H0 every factor has mean at most 1, so the
// wealth is a test supermartingale. While the arm is healthy the bet is 0 and the wealth stays
// put, so a regression that starts late in a long rollout is found as fast as one at the start
// (a likelihood-ratio mixture would first have to win back everything it lost meanwhile).
class CeilingTest {
 public:
  CeilingTest(double alpha, double max_rate);

  void observe(std::uint64_t n, std::uint64_t x);

  double logEvidence() const;
  double threshold() const;
  bool rejected() const { return rejected_; }
  double alpha() const { return alpha_; }
  double maxRate() const { return max_rate_; }
  std::uint64_t n() const { return n_; }
  std::uint64_t x() const { return x_; }

 private:
  static constexpr double kMaxLoss = 0.5;    // largest share of the wealth one request may lose
  static constexpr std::size_t kRecent = 5;  // intervals the bet is estimated from
  double nextBet() const;

  double alpha_, max_rate_;
  double log_wealth_ = 0;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> recent_;  // (requests, outcomes)
  std::uint64_t n_ = 0, x_ = 0;
  bool rejected_ = false;
};

// log of sum_k C(n1,k) C(n2,e-k) theta^k over the support of k (Fisher's noncentral
// hypergeometric normalizer, up to the constant C(n1+n2,e) at theta = 1). Exposed for tests.
double logFisherNormalizer(std::uint64_t n1, std::uint64_t n2, std::uint64_t e, double log_theta);
// The same for several thetas at once (the binomial terms are computed once).
void logFisherNormalizers(std::uint64_t n1, std::uint64_t n2, std::uint64_t e, const std::vector<double>& log_thetas,
                          std::vector<double>& out);

}  // namespace fledge::rollout
