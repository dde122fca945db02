#include "flags/flag_set.hpp"

#include <gtest/gtest.h>

#include "flags/json.hpp"
#include "flags/murmur3.hpp"

namespace fledge::flags {
namespace {

std::shared_ptr<const FlagSet> load(const std::string& json, std::vector<FlagSetError>* errors_out = nullptr) {
  std::vector<FlagSetError> errors;
  auto set = FlagSet::load({{"", json}}, errors);
  if (errors_out) *errors_out = errors;
  return set;
}

struct Ctx {
  Arena arena;
  Value value;
  explicit Ctx(const std::string& json) {
    simdjson::dom::parser p;
    simdjson::dom::element e = p.parse(json).value();
    fromDom(e, arena, value);
  }
};

struct Result {
  std::string reason, error, variant, value;
};

Result eval(const FlagSet& set, const std::string& key, const std::string& ctx_json = "{}") {
  Ctx ctx(ctx_json);
  EvalScratch scratch;
  const Flag* f = set.find(key);
  if (!f) return {"ERROR", "FLAG_NOT_FOUND", "", ""};
  Evaluation ev = set.evaluate(*f, ctx.value, scratch, 1700000000);
  Result r{std::string(reasonName(ev.reason)), std::string(errorCodeName(ev.error)), "", ""};
  if (ev.variant) {
    r.variant = ev.variant->name;
    r.value = ev.variant->json;
  }
  return r;
}

constexpr const char* kFlags = R"({
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "metadata": {"flagSetId": "shop", "version": 3},
  "$evaluators": {
    "is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}
  },
  "flags": {
    "static-on": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "disabled": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "no-default": {"state": "ENABLED", "variants": {"a": "A", "b": "B"}, "defaultVariant": null,
                   "targeting": {"if": [{"==": [{"var": "tier"}, "gold"]}, "b", null]}},
    "absent-default": {"state": "ENABLED", "variants": {"a": 1, "b": 2}},
    "staff": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
              "targeting": {"if": [{"$ref": "is_staff"}, "on", null]}, "metadata": {"version": 9, "owner": "web"}},
    "bool-result": {"state": "ENABLED", "variants": {"true": "yes", "false": "no"}, "defaultVariant": "false",
                    "targeting": {"==": [{"var": "x"}, 1]}},
    "bad-variant": {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a",
                    "targeting": {"cat": ["zz", {"var": "x"}]}},
    "flag-key": {"state": "ENABLED", "variants": {"flag-key": 1, "other": 2}, "defaultVariant": "other",
                 "targeting": {"var": "$flagd.flagKey"}},
    "empty-targeting": {"state": "ENABLED", "variants": {"x": {"a": [1, "two"]}}, "defaultVariant": "x", "targeting": {}},
    "semver": {"state": "ENABLED", "variants": {"new": true, "old": false}, "defaultVariant": "old",
               "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "1.2.0"]}, "new", "old"]}},
    "rule": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
             "targeting": {"if": [{"and": [{"ends_with": [{"var": "email"}, "@example.com"]},
                                           {"in": [{"var": "plan"}, ["pro", "enterprise"]]},
                                           {">=": [{"var": "age"}, 18]}]}, "on", "off"]}},
    "split": {"state": "ENABLED", "variants": {"red": "r", "green": "g", "blue": "b"}, "defaultVariant": "red",
              "targeting": {"fractional": [["red", 25], ["green", 25], ["blue", 50]]}}
  }
})";

TEST(FlagSet, FlagdResultSemantics) {
  auto set = load(kFlags);
  ASSERT_TRUE(set);
  auto r = eval(*set, "static-on");
  EXPECT_EQ(r.reason, "STATIC");
  EXPECT_EQ(r.variant, "on");
  EXPECT_EQ(r.value, "true");

  r = eval(*set, "disabled");
  EXPECT_EQ(r.reason, "DISABLED");
  EXPECT_EQ(r.variant, "");  // no value

  r = eval(*set, "nope");
  EXPECT_EQ(r.error, "FLAG_NOT_FOUND");

  r = eval(*set, "no-default", R"({"tier":"silver"})");
  EXPECT_EQ(r.reason, "DEFAULT");
  EXPECT_EQ(r.variant, "");
  r = eval(*set, "no-default", R"({"tier":"gold"})");
  EXPECT_EQ(r.reason, "TARGETING_MATCH");
  EXPECT_EQ(r.value, "\"B\"");

  r = eval(*set, "absent-default");
  EXPECT_EQ(r.reason, "DEFAULT");  // no targeting and no default: flagd-core answers DEFAULT, no value
  EXPECT_EQ(r.variant, "");

  r = eval(*set, "staff", R"({"email":"ann@example.com"})");
  EXPECT_EQ(r.reason, "TARGETING_MATCH");
  EXPECT_EQ(r.variant, "on");
  r = eval(*set, "staff", R"({"email":"ann@elsewhere.com"})");
  EXPECT_EQ(r.reason, "DEFAULT");
  EXPECT_EQ(r.variant, "off");

  r = eval(*set, "bool-result", R"({"x":1})");
  EXPECT_EQ(r.variant, "true");
  EXPECT_EQ(r.value, "\"yes\"");
  r = eval(*set, "bool-result", R"({"x":2})");
  EXPECT_EQ(r.variant, "false");
  EXPECT_EQ(r.reason, "TARGETING_MATCH");

  r = eval(*set, "bad-variant", R"({"x":1})");
  EXPECT_EQ(r.reason, "ERROR");
  EXPECT_EQ(r.error, "GENERAL");

  r = eval(*set, "flag-key");
  EXPECT_EQ(r.variant, "flag-key");

  r = eval(*set, "empty-targeting");
  EXPECT_EQ(r.reason, "STATIC");
  EXPECT_EQ(r.value, R"({"a":[1,"two"]})");

  EXPECT_EQ(eval(*set, "semver", R"({"version":"v1.10.0"})").variant, "new");
  EXPECT_EQ(eval(*set, "semver", R"({"version":"1.2.0-rc.1"})").variant, "old");
  EXPECT_EQ(eval(*set, "semver", R"({"version":"nonsense"})").variant, "old");  // sem_ver null is falsy
}

TEST(FlagSet, MetadataMergesSetAndFlag) {
  auto set = load(kFlags);
  ASSERT_TRUE(set);
  EXPECT_EQ(set->find("staff")->metadata_json, R"({"flagSetId":"shop","version":9,"owner":"web"})");
  EXPECT_EQ(set->find("static-on")->metadata_json, R"({"flagSetId":"shop","version":3})");
}

TEST(FlagSet, FractionalMatchesTheFormula) {
  auto set = load(kFlags);
  ASSERT_TRUE(set);
  const std::uint64_t weights[] = {25, 25, 50};
  const char* names[] = {"red", "green", "blue"};
  int counts[3] = {0, 0, 0};
  for (int i = 0; i < 3000; ++i) {
    std::string key = "user-" + std::to_string(i);
    std::uint32_t h = murmur3_x86_32("split" + key);
    std::uint64_t bucket = (static_cast<std::uint64_t>(h) * 100) >> 32;
    int want = bucket < 25 ? 0 : bucket < 50 ? 1 : 2;
    EXPECT_EQ(pickBucket(h, weights, 3, 100), want);
    auto r = eval(*set, "split", R"({"targetingKey":")" + key + "\"}");
    ASSERT_EQ(r.variant, names[want]) << key;
    ++counts[want];
  }
  EXPECT_NEAR(counts[2], 1500, 150);
  // No targeting key: fractional yields null, so the default variant applies.
  auto r = eval(*set, "split", "{}");
  EXPECT_EQ(r.reason, "DEFAULT");
  EXPECT_EQ(r.variant, "red");
}

TEST(FlagSet, ValidationNamesTheFieldAndLoadsNothing) {
  std::vector<FlagSetError> errors;
  auto set = load(R"({"flags": {
      "ok": {"state": "ENABLED", "variants": {"a": true}, "defaultVariant": "a"},
      "bad-state": {"state": "ON", "variants": {"a": true}},
      "mixed": {"state": "ENABLED", "variants": {"a": true, "b": "x"}},
      "bad-default": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "z"},
      "bad-op": {"state": "ENABLED", "variants": {"a": 1}, "targeting": {"if": [{"frobnicate": [1]}, "a", null]}},
      "bad-ref": {"state": "ENABLED", "variants": {"a": 1}, "targeting": {"$ref": "missing"}},
      "extra": {"state": "ENABLED", "variants": {"a": 1}, "color": "red"},
      "no-variants": {"state": "ENABLED"}
    }, "surprise": 1})", &errors);
  EXPECT_FALSE(set);
  std::string all;
  for (const auto& e : errors) all += e.str() + "\n";
  for (const char* want : {"flags.bad-state.state: must be \"ENABLED\" or \"DISABLED\"",
                           "flags.mixed.variants.b: must be a boolean like the other variants, got string",
                           "flags.bad-default.defaultVariant: \"z\" is not one of the variants",
                           "flags.bad-op.targeting.if[0]: unknown operator \"frobnicate\"",
                           "flags.bad-ref.targeting.$ref: unknown evaluator \"missing\"",
                           "flags.extra.color: unknown field", "flags.no-variants.variants: is required",
                           "surprise: unknown field"})
    EXPECT_NE(all.find(want), std::string::npos) << "missing: " << want << "\nall:\n" << all;
}

// flagd loads a file whose targeting it cannot compile: such a flag answers PARSE_ERROR, and
// starts_with / ends_with / sem_ver with a wrong argument count evaluate to null (DEFAULT).
// Strict loading (admin API writes) refuses both.
TEST(FlagSet, FlagdLoadingKeepsFlagsWithBadTargeting) {
  const std::string doc = R"({"flags": {
      "ok": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a"},
      "bad-ref": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a",
                  "targeting": {"if": [{"$ref": "missing"}, "b", null]}},
      "bad-op": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a", "targeting": {"frobnicate": [1]}},
      "off-bad": {"state": "DISABLED", "variants": {"a": "a"}, "defaultVariant": "a", "targeting": {"$ref": "missing"}},
      "sw": {"state": "ENABLED", "variants": {"a": "a", "false": "f"}, "defaultVariant": "a", "targeting": {"starts_with": ["abc"]}},
      "ew": {"state": "ENABLED", "variants": {"a": "a"}, "defaultVariant": "a", "targeting": {"ends_with": ["a", "b", "c"]}},
      "sv": {"state": "ENABLED", "variants": {"a": "a", "b": "b"}, "defaultVariant": "a",
             "targeting": {"if": [{"sem_ver": [{"var": "v"}, "="]}, "b", "a"]}}
    }})";
  std::vector<FlagSetError> errors, warnings;
  auto set = FlagSet::load({{"", doc}}, errors, FlagSet::Strictness::kFlagd, &warnings);
  ASSERT_TRUE(set) << errors.front().str();
  EXPECT_EQ(set->flags().size(), 7u);
  EXPECT_EQ(set->parseErrorCount(), 3u);
  std::string all;
  for (const auto& w : warnings) all += w.str() + "\n";
  for (const char* want : {"flags.bad-ref.targeting.if[0].$ref: unknown evaluator \"missing\"; the flag answers PARSE_ERROR",
                           "flags.bad-op.targeting: unknown operator \"frobnicate\"; the flag answers PARSE_ERROR",
                           "flags.sw.targeting.starts_with: takes 2 arguments, got 1 (evaluates to null)",
                           "flags.ew.targeting.ends_with: takes 2 arguments, got 3 (evaluates to null)",
                           "flags.sv.targeting.if[0].sem_ver: takes 3 arguments, got 2 (evaluates to null)"})
    EXPECT_NE(all.find(want), std::string::npos) << "missing: " << want << "\nall:\n" << all;

  Result r = eval(*set, "bad-ref");
  EXPECT_EQ(r.reason, "ERROR");
  EXPECT_EQ(r.error, "PARSE_ERROR");
  EXPECT_EQ(r.variant, "");
  EXPECT_EQ(eval(*set, "bad-op").error, "PARSE_ERROR");
  EXPECT_EQ(eval(*set, "off-bad").reason, "DISABLED");  // flagd looks at the state first
  for (const char* key : {"sw", "ew"}) {
    r = eval(*set, key);
    EXPECT_EQ(r.reason, "DEFAULT") << key;  // null, not false (no lookup of a "false" variant)
    EXPECT_EQ(r.variant, "a") << key;
  }
  r = eval(*set, "sv", R"({"v": "1.0.0"})");
  EXPECT_EQ(r.reason, "TARGETING_MATCH");  // the `if` took its else branch on null
  EXPECT_EQ(r.variant, "a");
  EXPECT_EQ(eval(*set, "ok").reason, "STATIC");

  errors.clear();
  EXPECT_FALSE(FlagSet::load({{"", doc}}, errors, FlagSet::Strictness::kStrict));
  all.clear();
  for (const auto& e : errors) all += e.str() + "\n";
  EXPECT_NE(all.find("flags.bad-ref.targeting.if[0].$ref: unknown evaluator \"missing\""), std::string::npos) << all;
  EXPECT_NE(all.find("flags.sw.targeting.starts_with: takes 2 arguments, got 1 (evaluates to null)"), std::string::npos) << all;
  // Structural errors refuse the document in flagd mode too.
  errors.clear();
  EXPECT_FALSE(FlagSet::load({{"", R"({"flags": {"x": {"state": "ON", "variants": {"a": 1}}}})"}}, errors,
                             FlagSet::Strictness::kFlagd, &warnings));
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].str(), "flags.x.state: must be \"ENABLED\" or \"DISABLED\"");
}

// flagd (Go) and json-logic-js join a missing value as "", where flagd-core (JS) writes "null".
TEST(FlagSet, CatOfAMissingValueIsEmptyAsInFlagd) {
  auto set = load(R"({"flags": {"c": {"state": "ENABLED", "variants": {"a": "a", "anull": "anull"}, "defaultVariant": "anull",
                     "targeting": {"cat": ["a", {"var": "nope"}]}}}})");
  ASSERT_TRUE(set);
  Result r = eval(*set, "c");
  EXPECT_EQ(r.reason, "TARGETING_MATCH");
  EXPECT_EQ(r.variant, "a");
}

TEST(FlagSet, DuplicateKeysAcrossSourcesAreErrors) {
  std::vector<FlagSetError> errors;
  auto set = FlagSet::load({{"a.json", R"({"flags":{"x":{"state":"ENABLED","variants":{"a":1}}}})"},
                            {"b.json", R"({"flags":{"x":{"state":"ENABLED","variants":{"a":2}}}})"}},
                           errors);
  EXPECT_FALSE(set);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].str(), "b.json: flags.x: flag \"x\" is defined more than once");
}

TEST(FlagSet, StaticAndFractionalEvaluationsDoNotAllocate) {
  auto set = load(kFlags);
  ASSERT_TRUE(set);
  // Numbers and strings from the context alike: "age" arrives as a string from headers.
  Ctx ctx(R"({"targetingKey":"user-7","email":"a@example.com","version":"1.4.0","plan":"pro","age":"30"})");
  EvalScratch scratch;
  EXPECT_EQ(eval(*set, "rule", R"({"email":"a@example.com","plan":"pro","age":"30"})").variant, "on");
  EXPECT_EQ(eval(*set, "rule", R"({"email":"a@example.com","plan":"pro","age":17})").variant, "off");
  for (const char* key : {"static-on", "split", "staff", "rule"}) {
    set->evaluate(*set->find(key), ctx.value, scratch, 0);
    EXPECT_FALSE(scratch.arena.onHeap()) << key;
  }
}

TEST(SemVer, FlagdOperators) {
  auto v = [](const char* s) { return Value::string(s); };
  auto check = [&](const char* a, const char* op, const char* b) {
    bool ok = false;
    bool r = semVerCompare(v(a), op, v(b), ok);
    return ok ? (r ? 1 : 0) : -1;
  };
  EXPECT_EQ(check("1.2.3", "=", "v1.2.3"), 1);
  EXPECT_EQ(check("1.2.3", "!=", "1.2.4"), 1);
  EXPECT_EQ(check("1.2.3", "<", "1.10.0"), 1);  // numeric, not lexical
  EXPECT_EQ(check("1.2.3-alpha", "<", "1.2.3"), 1);
  EXPECT_EQ(check("1.2.3-alpha.2", "<", "1.2.3-alpha.10"), 1);
  EXPECT_EQ(check("1.2.3-alpha.1", "<", "1.2.3-beta"), 1);
  EXPECT_EQ(check("1.2.3-1", "<", "1.2.3-alpha"), 1);  // numeric identifiers sort first
  EXPECT_EQ(check("1.2.3+build.5", "=", "1.2.3"), 1);  // build metadata is ignored
  EXPECT_EQ(check("2.0.0", ">=", "2.0.0"), 1);
  EXPECT_EQ(check("2.0.1", ">", "2.0.0"), 1);
  EXPECT_EQ(check("1.9.0", "<=", "1.10.0"), 1);
  EXPECT_EQ(check("1.5.0", "^", "1.0.0"), 1);
  EXPECT_EQ(check("2.0.0", "^", "1.0.0"), 0);
  EXPECT_EQ(check("1.2.9", "~", "1.2.0"), 1);
  EXPECT_EQ(check("1.3.0", "~", "1.2.0"), 0);
  EXPECT_EQ(check("1", "=", "1.0.0"), 1);  // partial versions are coerced
  EXPECT_EQ(check("1.2", "=", "1.2.0"), 1);
  EXPECT_EQ(check("not-a-version", "=", "1.0.0"), -1);
  EXPECT_EQ(check("1.2.3.4", "=", "1.2.3"), -1);
  EXPECT_EQ(check("01.2.3", "=", "1.2.3"), -1);  // no leading zeros
  EXPECT_EQ(check("1.2.3", "<>", "1.2.3"), -1);
  bool ok = false;
  EXPECT_TRUE(semVerCompare(Value::number(2), "=", v("2.0.0"), ok));  // numbers become strings
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace fledge::flags
