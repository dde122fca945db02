#pragma once
// Retries and passive outlier detection as pure decisions: what a route's retry policy allows
// after an attempt ended a given way, whether the retry budget has room, and when an endpoint's
// run of failures ejects it and for how long. No I/O and no clock of its own (times are passed
// in), so each rule is unit-tested by simulation (tests/proxy/resilience_test.cpp); the session
// and the upstream pool only apply the answers.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/beast/http/verb.hpp>

namespace fledge::proxy {

// How an upstream attempt ended, as far as retries and outlier detection care.
enum class AttemptResult : std::uint8_t {
  kOk,              // a response below 500 (or a 5xx the policy does not name)
  kConnectFailure,  // refused or unreachable before anything was sent
  kReset,           // the connection failed after the request started (reset, EOF, bad response)
  kTimeout,         // per-try (or upstream response) timeout
  kStatus,          // a response with a status the route treats as a failure (5xx, or listed)
};
inline constexpr std::size_t kRetryReasons = 4;  // connect-failure, reset, timeout, status
const char* retryReasonName(AttemptResult r);    // "connect_failure", "reset", "timeout", "status"

struct RetryPolicy {
  std::uint32_t attempts = 1;  // all tries, the first included (1: no retries)
  bool on_connect_failure = false, on_reset = false, on_5xx = false, on_gateway_error = false;
  std::vector<unsigned> statuses;                   // retriable-status:N
  std::chrono::milliseconds per_try_timeout{0};     // 0: the upstream response timeout only
  double budget_percent = 20;                       // retries in flight per requests in flight
  std::uint32_t min_retry_concurrency = 3;          // retries always allowed in flight, whatever the budget
  std::vector<boost::beast::http::verb> methods;    // empty: the idempotent ones (RFC 9110 §9.2.2)
  std::uint64_t max_body_bytes = 64 * 1024;         // larger request bodies are not replayed

  // Whether a response with `status` calls for another try.
  bool retriesStatus(unsigned status) const;
  // Whether an attempt that ended with `r` (for kStatus: `status`) may be tried again.
  bool retriesOn(AttemptResult r, unsigned status) const;
  bool allowsMethod(boost::beast::http::verb m) const;
};

// The retry budget (as Envoy's): a retry may start while the retries in flight stay within
// budget_percent of the requests in flight, or under min_retry_concurrency. An outage then
// never multiplies the load on the upstream: at most (1 + budget) attempts per request in flight.
bool retryBudgetAllows(std::uint64_t requests_in_flight, std::uint64_t retries_in_flight, double budget_percent,
                       std::uint32_t min_retry_concurrency);

struct OutlierConfig {
  std::uint32_t consecutive_5xx = 5;             // 0: off
  std::uint32_t consecutive_gateway_errors = 3;  // 502, 503, 504, connect failures, resets, timeouts; 0: off
  std::chrono::milliseconds base_ejection{30'000};
  std::chrono::milliseconds max_ejection{300'000};
  std::uint32_t max_ejection_percent = 50;
};

// One endpoint's passive health. An ejection lasts base × (times ejected), capped at
// max_ejection; every base_ejection the endpoint then spends un-ejected takes one off the count.
class OutlierState {
 public:
  using Clock = std::chrono::steady_clock;
  // Records an attempt's end (and a 5xx status when r is kStatus or kOk with status >= 500).
  // Returns true when this ends a run that ejects the endpoint; `may_eject` is false when the
  // cluster already has its maximum share ejected (the run then continues to count).
  bool record(AttemptResult r, unsigned status, const OutlierConfig& cfg, bool may_eject, Clock::time_point now);
  bool ejected(Clock::time_point now) const { return now < until_; }
  Clock::time_point until() const { return until_; }
  std::uint32_t timesEjected() const { return times_; }

 private:
  std::uint32_t run_5xx_ = 0, run_gateway_ = 0;
  std::uint32_t times_ = 0;
  Clock::time_point until_{}, last_decay_{};
};

// A cluster's circuit-breaker counts, shared by every worker (only clusters with a
// circuit_breaker use them: two relaxed atomic updates per request).
struct CircuitCounts {
  std::atomic<std::int64_t> requests{0};  // in flight to the cluster
  std::atomic<std::int64_t> pending{0};   // waiting for a new upstream connection
  // The process's counts for cluster `name` (made on first use, kept while referenced).
  static std::shared_ptr<CircuitCounts> forCluster(const std::string& name);
};

// How many of `endpoints` may be ejected at once (at least one).
std::uint32_t maxEjected(std::size_t endpoints, std::uint32_t max_ejection_percent);

}  // namespace fledge::proxy
