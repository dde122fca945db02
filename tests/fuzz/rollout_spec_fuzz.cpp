// admin/rollouts.cpp: rollout specifications as PUT /api/v1/rollouts/NAME receives them
// (parseRolloutSpec), and the flag a flag rollout writes at each of the spec's steps.
//
// A refused spec names a field and a reason. An accepted one is either a route rollout or a flag
// rollout, has 1-100 steps of non-decreasing weights up to 100, webhooks with a port and an
// absolute path; the flag it would write at each step (flagAtWeight) and after success
// (promotedFlag), from a flag with rules, is a flag the flag engine loads without error.
#include <string>
#include <string_view>

#include "admin/rollouts.hpp"
#include "flags/flag_set.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
using namespace fledge::admin;
using fledge::fuzz::printable;

constexpr std::size_t kMaxInput = 16 * 1024;
const std::string kBefore =
    R"({"state":"ENABLED","variants":{"on":true,"off":false,"beta":true},"defaultVariant":"off",
        "targeting":{"if":[{"==":[{"var":"plan"},"pro"]},"beta","off"]}})";

void checkFlagLoads(const std::string& flag, std::string_view input) {
  std::vector<fledge::flags::FlagSetError> errors;
  auto set = fledge::flags::FlagSet::load({{"", R"({"flags":{"f":)" + flag + "}}"}}, errors);
  FUZZ_CHECK(set && errors.empty(), "rollout flag does not load: " + flag + (errors.empty() ? "" : " / " + errors[0].message) +
                                        " for " + printable(input));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return -1;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error, field;
  auto spec = parseRolloutSpec(input, error, field);
  if (!spec) {
    FUZZ_CHECK(!error.empty() && !field.empty(), "a refusal without its reason or field: " + printable(input));
    return 0;
  }
  FUZZ_CHECK(!spec->steps.empty() && spec->steps.size() <= 100, "steps: " + printable(input));
  for (std::size_t i = 0; i < spec->steps.size(); ++i) {
    FUZZ_CHECK(spec->steps[i].weight <= 100, "weight over 100: " + printable(input));
    FUZZ_CHECK(i == 0 || spec->steps[i].weight >= spec->steps[i - 1].weight, "weights decrease: " + printable(input));
  }
  if (spec->isFlag()) {
    FUZZ_CHECK(!spec->variant.empty() && spec->route.empty() && spec->canary_arm.empty(), "flag rollout fields: " + printable(input));
  } else {
    FUZZ_CHECK(!spec->route.empty() && !spec->canary_arm.empty() && !spec->baseline_arm.empty() && spec->canary_arm != spec->baseline_arm,
               "route rollout fields: " + printable(input));
  }
  FUZZ_CHECK(spec->webhooks.size() <= RolloutSpec::kMaxWebhooks, "webhook count: " + printable(input));
  for (const auto& w : spec->webhooks)
    FUZZ_CHECK(!w.host.empty() && !w.port.empty() && !w.target.empty() && w.target[0] == '/' && w.timeout.count() >= 1,
               "webhook: " + printable(input));
  for (const auto& step : spec->steps) {
    auto flag = flagAtWeight(kBefore, "on", step.weight);
    FUZZ_CHECK(flag.has_value(), "flagAtWeight refused a valid flag");
    checkFlagLoads(*flag, input);
  }
  auto promoted = promotedFlag(kBefore, "on");
  FUZZ_CHECK(promoted.has_value(), "promotedFlag refused a valid flag");
  checkFlagLoads(*promoted, input);
  return 0;
}
