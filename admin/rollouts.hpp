#pragma once
// Progressive rollouts of a split route's canary arm or of a flag's variant: the specification a
// user PUTs, its validation, and the status the controller keeps (phase, step, history). The controller itself is part of AdminApi
// (admin/rollout_controller.cpp): it runs on the admin work thread, once a second, and changes weights
// through the same store-audit-publish path as any admin write.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rollout/analysis.hpp"

namespace fledge::admin {

struct RolloutStep {
  unsigned weight = 0;             // canary share, percent
  std::uint64_t hold_s = 0;        // at least this long at the step
  std::uint64_t min_requests = 0;  // and at least this many canary requests
};

// An HTTP call the controller makes: a pre-step check before each step's weight is applied (not
// 200 in time: rolled back), or a confirm gate before leaving a step (held until it answers 200).
struct RolloutWebhook {
  enum class Type { kPreStep, kConfirm };
  std::string name;
  Type type = Type::kPreStep;
  std::string host, port, target;  // from "url": http://HOST[:PORT][/PATH]
  std::chrono::milliseconds timeout{5000};
};

struct RolloutSpec {
  // Either a route's canary arm against its baseline arm...
  std::string route, canary_arm, baseline_arm;
  // ...or a flag's variant, raised through fractional targeting, against the flag's default.
  std::string flag, variant;
  std::vector<RolloutStep> steps;
  rollout::AnalysisConfig analysis;
  std::vector<unsigned> error_classes{5};  // status classes that count as errors (5 = 5xx)
  std::vector<RolloutWebhook> webhooks;
  static constexpr std::size_t kMaxWebhooks = 8;

  bool isFlag() const { return !flag.empty(); }
  bool hasWebhooks(RolloutWebhook::Type t) const {
    for (const auto& w : webhooks)
      if (w.type == t) return true;
    return false;
  }
};

// Parses and validates a rollout body. On error, `field` names the offending member.
std::optional<RolloutSpec> parseRolloutSpec(std::string_view json, std::string& error, std::string& field);

// A flag rollout's flag (flagd JSON) at `weight` percent, from the flag as it was before: the
// flag's own rules keep the users they send to a variant other than the default; the others are
// bucketed by fractional (flag key + targetingKey), the variant first, so raising the weight never
// takes the variant from anyone who had it. nullopt if `before` is not a JSON object.
std::optional<std::string> flagAtWeight(std::string_view before, const std::string& variant, unsigned weight);
// The flag after its rollout succeeded: `variant` is the default; the flag's own rules still
// send their targeted users where they did.
std::optional<std::string> promotedFlag(std::string_view before, const std::string& variant);

enum class RolloutPhase { kProgressing, kPaused, kSucceeded, kRolledBack, kAborted };
const char* phaseName(RolloutPhase p);
std::optional<RolloutPhase> phaseFromName(std::string_view s);
inline bool finished(RolloutPhase p) { return p == RolloutPhase::kSucceeded || p == RolloutPhase::kRolledBack || p == RolloutPhase::kAborted; }

// The durable part of a rollout's progress (stored with the configuration).
struct RolloutStatus {
  RolloutPhase phase = RolloutPhase::kProgressing;
  std::size_t step = 0;
  unsigned canary_weight = 0;
  std::int64_t started_ms = 0, step_started_ms = 0, finished_ms = 0;  // Unix time
  std::string reason;
  bool entered = true;      // false: the step's weight waits for its pre-step webhooks
  std::string flag_before;  // flag rollouts: the flag as it was when the rollout started (JSON)
  std::vector<std::string> history;  // JSON objects, oldest first (the start and the last 199)
  // Appends the status as it is now to the history.
  void record(std::int64_t at_ms, const std::string& actor, const std::string& why);
  std::string toJson() const;
  static std::optional<RolloutStatus> fromJson(std::string_view json);
};

}  // namespace fledge::admin
