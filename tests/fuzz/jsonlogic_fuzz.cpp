// flags/: a flagd document compiled by FlagSet::load (JsonLogic targeting, $evaluators,
// fractional, sem_ver, ...) and every flag evaluated against a context parsed from the input
// the way OFREP parses one (simdjson DOM -> flags::fromDom).
//
// Input: a document, an empty line, a context (JSON). A document that is a JSON object with a
// "flags" member is loaded as it is; anything else becomes the targeting of three flags (one
// per variant type) in a document with an $evaluators entry.
#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

#include "flags/flag_set.hpp"
#include "flags/json.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
using namespace fledge::flags;

constexpr std::size_t kMaxInput = 16 * 1024;  // JsonLogic map/reduce over big inputs only costs time

std::string document(std::string_view doc) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::dom::element flags;
  simdjson::padded_string padded(doc);
  if (!parser.parse(padded).get(root) && root.is_object() && !root["flags"].get(flags)) return std::string(doc);
  const std::string t(doc);
  return R"({"$evaluators": {"staff": {"ends_with": [{"var": "email"}, "@example.com"]},
                             "rule": )" + t + R"(},
             "metadata": {"flagSetId": "fuzz", "version": 3},
             "flags": {
               "bool": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                        "targeting": )" + t + R"(},
               "color": {"state": "ENABLED", "variants": {"red": "#c00", "green": "#0a0", "1": "one", "true": "t"},
                         "defaultVariant": null, "targeting": {"if": [{"$ref": "rule"}, {"$ref": "rule"}, "red"]}},
               "size": {"state": "ENABLED", "variants": {"small": 1, "large": 1e3}, "defaultVariant": "small",
                        "targeting": {"fractional": [{"var": "targetingKey"}, ["small", 3], ["large", 1]]}},
               "off": {"state": "DISABLED", "variants": {"a": {"x": 1}}, "defaultVariant": "a", "targeting": )" + t + R"(}
             }})";
}

// The evaluation context: an object parsed from `text`; other JSON is wrapped as {"value": ...}.
bool context(std::string_view text, Arena& arena, Value& out) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(text);
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    out = Value::object(nullptr, 0);
    return true;
  }
  if (parser.parse(padded).get(root)) return false;
  Value v;
  if (!fromDom(root, arena, v, 64)) return false;
  if (v.isObject()) {
    out = v;
  } else {
    Member* m = arena.allocArray<Member>(1);
    m->key = "value";
    m->value = v;
    out = Value::object(m, 1);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return -1;  // not added to the corpus
  fledge::fuzz::Bytes in(data, size);
  const std::string_view doc = in.until("\n\n");
  const std::string_view ctx_text = in.rest();

  std::vector<FlagSetError> errors;
  const auto set = FlagSet::load({{"fuzz.json", document(doc)}}, errors);
  FUZZ_CHECK((set == nullptr) == !errors.empty(), "load returned a set and errors, or neither");
  if (!set) return 0;
  for (const auto& e : errors) FUZZ_CHECK(!e.message.empty(), "empty error message");

  Arena arena;
  Value ctx;
  if (!context(ctx_text, arena, ctx)) return 0;

  EvalScratch scratch, again;
  const std::int64_t now = 1'800'000'000;
  for (const Flag& flag : set->flags()) {
    FUZZ_CHECK(set->find(flag.key) == &flag, flag.key);
    const Evaluation ev = set->evaluate(flag, ctx, scratch, now);
    const std::string what = "flag " + fledge::fuzz::printable(flag.key) + " with context \"" + fledge::fuzz::printable(ctx_text) + "\"";
    // The result names one of the flag's variants, or none.
    if (ev.variant) {
      FUZZ_CHECK(ev.variant >= flag.variants.data() && ev.variant < flag.variants.data() + flag.variants.size(), what);
      FUZZ_CHECK(flag.findVariant(ev.variant->name) == ev.variant, what);
    }
    switch (ev.reason) {
      case Reason::kDisabled: FUZZ_CHECK(!flag.enabled && !ev.variant, what); break;
      case Reason::kError: FUZZ_CHECK(!ev.variant && ev.error != ErrorCode::kNone && !ev.detail.empty(), what); break;
      case Reason::kStatic:
        FUZZ_CHECK(!flag.has_targeting && ev.variant == &flag.variants[static_cast<std::size_t>(flag.default_variant)], what);
        break;
      case Reason::kDefault:
        FUZZ_CHECK(ev.variant == (flag.default_variant < 0 ? nullptr : &flag.variants[static_cast<std::size_t>(flag.default_variant)]),
                   what);
        break;
      case Reason::kTargetingMatch: FUZZ_CHECK(flag.has_targeting && ev.variant, what); break;
    }
    if (ev.reason != Reason::kError) FUZZ_CHECK(ev.error == ErrorCode::kNone, what);
    // Pure: the same flag, context and time give the same answer with other scratch memory.
    const Evaluation ev2 = set->evaluate(flag, ctx, again, now);
    FUZZ_CHECK(ev2.variant == ev.variant && ev2.reason == ev.reason && ev2.error == ev.error, what);
  }
  return 0;
}
