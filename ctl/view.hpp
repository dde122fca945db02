#pragma once
// What `fledge ctl` prints for people: pure functions of the admin API's JSON answers (and of
// the time, passed in), so every view is tested without a server or a terminal.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ctl/json_text.hpp"

namespace fledge::ctl {

// `fledge ctl status`: GET /api/v1/config and GET /api/v1/rollouts.
std::string statusText(const json::value& config, const json::value& rollouts);
// A route's arms, "canary 5% (v2), stable 95% (v1)", or "cluster v3" without a split.
std::string routeTargetText(const json::value& route);
// `fledge ctl flag KEY`: GET /api/v1/flags/KEY.
std::string flagText(std::string_view key, const json::value& flag);
// What a rollout moves: "route shop, arm canary against stable", "flag checkout, variant v2 against v1".
std::string rolloutTargetText(const json::value& view);
// `fledge ctl rollout list`: GET /api/v1/rollouts.
std::string rolloutListText(const json::value& rollouts);

// Requests per second of each arm since the previous poll (unknown on the first).
struct ArmRates {
  std::optional<double> canary, baseline;
};

// Turns the cumulative request counts of successive rollout views into rates.
class RateMeter {
 public:
  ArmRates update(const json::value& view, std::chrono::steady_clock::time_point now);

 private:
  std::optional<std::chrono::steady_clock::time_point> last_at_;
  std::optional<double> last_canary_, last_baseline_;
};

// A rollout view (GET /api/v1/rollouts/NAME) as a screen: target, phase, step and weights, time
// left in the step, a bar over the steps, per-arm rates, errors and latency, every check.
std::string rolloutText(const json::value& view, std::int64_t now_ms, const ArmRates& rates);
// The same in one line, for a log or a pipe.
std::string rolloutLine(const json::value& view, std::int64_t now_ms, const ArmRates& rates);
// Phase, step and weight only: "r1: progressing, step 2/4, canary 20%"; the reason once finished.
std::string rolloutStepLine(const json::value& view);
// "[#####-----]": the share of the steps reached (all of them once succeeded).
std::string progressBar(std::size_t step, std::size_t steps, bool succeeded, std::size_t width = 20);

// "10 s", "0.5 s".
std::string secondsText(std::chrono::milliseconds d);

// Phases after which a rollout never changes again.
bool finishedPhase(std::string_view phase);

}  // namespace fledge::ctl
