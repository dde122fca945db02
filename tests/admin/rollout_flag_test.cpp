// Flag rollouts rewrite the flag's targeting at each step: evaluated here with the real flag
// evaluator over many users, the rewritten flag must keep the flag's own rules, give the
// variant to about `weight` percent of the others, and never take it from a user who had it.
#include <gtest/gtest.h>

#include <simdjson.h>

#include "admin/rollouts.hpp"
#include "flags/flag_set.hpp"
#include "flags/json.hpp"

namespace fledge::admin {
namespace {

// The demo flag: staff and pro users get "on" by rule, everyone else "off" (explicitly).
const std::string kBefore =
    R"({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
        "targeting":{"if":[{"or":[{"==":[{"var":"plan"},"pro"]},{"$ref":"is_staff"}]},"on","off"]}})";

std::string variantFor(const std::string& flag_json, const std::string& user, const std::string& plan = "free") {
  std::vector<flags::FlagSetError> errors;
  auto set = flags::FlagSet::load(
      {{"", R"({"$evaluators":{"is_staff":{"ends_with":[{"var":"email"},"@example.com"]}},"flags":{"f":)" + flag_json + "}}"}}, errors);
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors[0].message) << " in " << flag_json;
  if (!set) return "?";
  flags::Arena arena;
  flags::Value ctx;
  simdjson::dom::parser p;
  const std::string ctx_json = user.empty() ? R"({"plan":")" + plan + "\"}" : R"({"targetingKey":")" + user + R"(","plan":")" + plan + "\"}";
  flags::fromDom(p.parse(ctx_json).value(), arena, ctx);
  flags::EvalScratch scratch;
  auto ev = set->evaluate(*set->find("f"), ctx, scratch, 0);
  return ev.variant ? ev.variant->name : "";
}

TEST(FlagRollout, RaisesTheVariantMonotonicallyAndKeepsTheFlagsRules) {
  std::vector<bool> had(2000, false);
  for (unsigned weight : {0u, 1u, 5u, 25u, 50u, 100u}) {
    auto flag = flagAtWeight(kBefore, "on", weight);
    ASSERT_TRUE(flag);
    unsigned on = 0;
    for (std::size_t u = 0; u < had.size(); ++u) {
      const bool got = variantFor(*flag, "user-" + std::to_string(u)) == "on";
      EXPECT_TRUE(got || !had[u]) << "user-" << u << " lost the variant at " << weight << " %";
      had[u] = got;
      on += got;
    }
    EXPECT_NEAR(double(on) / had.size(), weight / 100.0, 0.035) << weight << " %";
    // The flag's own rule still decides for its users.
    EXPECT_EQ(variantFor(*flag, "someone", "pro"), "on");
    // No targeting key: not bucketed, the flag as before.
    EXPECT_EQ(variantFor(*flag, "", "free"), "off");
  }
}

TEST(FlagRollout, PromotedFlagHasTheVariantAsDefaultAndKeepsItsRules) {
  auto flag = promotedFlag(kBefore, "on");
  ASSERT_TRUE(flag);
  EXPECT_NE(flag->find(R"("defaultVariant":"on")"), std::string::npos) << *flag;
  for (int u = 0; u < 200; ++u) EXPECT_EQ(variantFor(*flag, "user-" + std::to_string(u)), "on");
  EXPECT_EQ(variantFor(*flag, "", "free"), "on");
  // A flag without targeting simply changes its default.
  auto plain = promotedFlag(R"({"state":"ENABLED","variants":{"a":1,"b":2},"defaultVariant":"a"})", "b");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->find("targeting"), std::string::npos) << *plain;
  EXPECT_EQ(variantFor(*plain, "x"), "b");
  EXPECT_FALSE(flagAtWeight("not json", "on", 5));
}

}  // namespace
}  // namespace fledge::admin
