#include "proxy/resilience.hpp"

#include <algorithm>
#include <map>
#include <mutex>

namespace fledge::proxy {

namespace http = boost::beast::http;

const char* retryReasonName(AttemptResult r) {
  switch (r) {
    case AttemptResult::kConnectFailure: return "connect_failure";
    case AttemptResult::kReset: return "reset";
    case AttemptResult::kTimeout: return "timeout";
    case AttemptResult::kStatus: return "status";
    case AttemptResult::kOk: break;
  }
  return "ok";
}

bool RetryPolicy::retriesStatus(unsigned status) const {
  if (on_5xx && status >= 500 && status <= 599) return true;
  if (on_gateway_error && (status == 502 || status == 503 || status == 504)) return true;
  return std::find(statuses.begin(), statuses.end(), status) != statuses.end();
}

bool RetryPolicy::retriesOn(AttemptResult r, unsigned status) const {
  switch (r) {
    case AttemptResult::kOk: return false;
    case AttemptResult::kConnectFailure: return on_connect_failure || on_gateway_error || on_5xx;
    case AttemptResult::kReset:
    case AttemptResult::kTimeout: return on_reset || on_gateway_error || on_5xx;
    case AttemptResult::kStatus: return retriesStatus(status);
  }
  return false;
}

bool RetryPolicy::allowsMethod(http::verb m) const {
  if (methods.empty())
    return m == http::verb::get || m == http::verb::head || m == http::verb::options || m == http::verb::trace ||
           m == http::verb::put || m == http::verb::delete_;
  return std::find(methods.begin(), methods.end(), m) != methods.end();
}

bool retryBudgetAllows(std::uint64_t requests_in_flight, std::uint64_t retries_in_flight, double budget_percent,
                       std::uint32_t min_retry_concurrency) {
  if (retries_in_flight < min_retry_concurrency) return true;
  return double(retries_in_flight + 1) <= budget_percent / 100.0 * double(requests_in_flight);
}

bool OutlierState::record(AttemptResult r, unsigned status, const OutlierConfig& cfg, bool may_eject, Clock::time_point now) {
  // Time spent healthy earns the endpoint its ejections back, one per base_ejection.
  if (times_ > 0 && now >= until_) {
    const auto since = std::max(until_, last_decay_);
    const auto earned = cfg.base_ejection.count() > 0 ? (now - since) / cfg.base_ejection : 0;
    if (earned > 0) {
      times_ = earned >= times_ ? 0 : times_ - static_cast<std::uint32_t>(earned);
      last_decay_ = since + earned * cfg.base_ejection;
    }
  }
  const bool is_5xx = status >= 500 && status <= 599 && (r == AttemptResult::kOk || r == AttemptResult::kStatus);
  const bool gateway = r == AttemptResult::kConnectFailure || r == AttemptResult::kReset || r == AttemptResult::kTimeout ||
                       (is_5xx && (status == 502 || status == 503 || status == 504));
  run_5xx_ = is_5xx ? run_5xx_ + 1 : 0;
  run_gateway_ = gateway ? run_gateway_ + 1 : 0;
  const bool tripped = (cfg.consecutive_5xx && run_5xx_ >= cfg.consecutive_5xx) ||
                       (cfg.consecutive_gateway_errors && run_gateway_ >= cfg.consecutive_gateway_errors);
  if (!tripped || !may_eject || ejected(now)) return false;
  ++times_;
  const auto length = std::min(cfg.base_ejection * times_, std::max(cfg.max_ejection, cfg.base_ejection));
  until_ = now + length;
  last_decay_ = until_;
  run_5xx_ = run_gateway_ = 0;
  return true;
}

std::shared_ptr<CircuitCounts> CircuitCounts::forCluster(const std::string& name) {
  static std::mutex mu;  // taken when a configuration is applied, never per request
  static std::map<std::string, std::weak_ptr<CircuitCounts>> all;
  std::lock_guard lock(mu);
  auto& slot = all[name];
  auto counts = slot.lock();
  if (!counts) slot = counts = std::make_shared<CircuitCounts>();
  return counts;
}

std::uint32_t maxEjected(std::size_t endpoints, std::uint32_t max_ejection_percent) {
  return std::max<std::uint32_t>(1, static_cast<std::uint32_t>(endpoints * max_ejection_percent / 100));
}

}  // namespace fledge::proxy
