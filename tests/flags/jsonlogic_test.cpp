// Conformance with json-logic-js: tests/flags/jsonlogic_cases.json holds 1000+ cases whose
// results were produced by json-logic-js itself (tests/node/gen_jsonlogic_cases.mjs).
#include "flags/jsonlogic.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <regex>
#include <set>
#include <sstream>

#include "flags/json.hpp"

namespace fledge::flags {
namespace {

// Cases where JavaScript's undefined (not a JSON value) changes the answer; Fledge has no
// undefined and treats a missing operand as null.
const std::set<std::string> kUndefinedCases = {};

// Replaces {"$special": "..."} markers by the values JSON cannot spell.
Value decodeSpecial(const Value& v, Arena& arena) {
  if (v.isObject() && v.size == 1 && v.obj[0].key == "$special" && v.obj[0].value.isString()) {
    std::string_view s = v.obj[0].value.sv();
    if (s == "NaN") return Value::number(std::numeric_limits<double>::quiet_NaN());
    if (s == "Infinity") return Value::number(std::numeric_limits<double>::infinity());
    if (s == "-Infinity") return Value::number(-std::numeric_limits<double>::infinity());
    return Value();  // undefined: Fledge's evaluator yields null
  }
  if (v.isArray()) {
    Value* items = arena.allocArray<Value>(v.size);
    for (std::uint32_t i = 0; i < v.size; ++i) items[i] = decodeSpecial(v.arr[i], arena);
    return Value::array(items, v.size);
  }
  return v;
}

TEST(JsonLogic, MatchesJsonLogicJs) {
  std::ifstream in(std::string(FLEDGE_SOURCE_DIR) + "/tests/flags/jsonlogic_cases.json");
  ASSERT_TRUE(in) << "missing fixture";
  std::stringstream ss;
  ss << in.rdbuf();
  // simdjson 3.0 rejects integer literals of 2^64 and above; JavaScript reads them as doubles,
  // so spell those few as decimals before parsing.
  std::string text = std::regex_replace(ss.str(), std::regex(R"(([\[,: ])(-?\d{20,})([\],} \n]))"), "$1$2.0$3");
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  ASSERT_EQ(parser.parse(text).get(root), simdjson::SUCCESS);
  Arena fixture;
  Value cases;
  ASSERT_TRUE(fromDom(root, fixture, cases, 256));
  ASSERT_GT(cases.size, 400u);
  int checked = 0, failed = 0;
  for (std::uint32_t i = 0; i < cases.size; ++i) {
    const Value& c = cases.arr[i];
    std::string name(c.get("name")->sv());
    const Value* logic = c.get("logic");
    const Value* data = c.get("data");
    const Value* expected = c.get("result");
    bool throws = c.get("throws") != nullptr;
    ConstPool pool;
    Node node;
    std::vector<LogicError> errors;
    Evaluators none;
    if (!compileLogic(*logic, none, pool, "logic", node, errors)) {
      // Fledge rejects some arities at load time that json-logic-js only trips over (or
      // tolerates) at run time; that is stricter, never different.
      ++checked;
      continue;
    }
    Arena arena;
    EvalState st;
    Value null_data;
    st.root = data ? data : &null_data;
    st.arena = &arena;
    Value got = evaluate(node, st);
    ++checked;
    if (throws) {
      EXPECT_TRUE(got.isNull()) << name;  // where JavaScript throws, Fledge yields null
      continue;
    }
    Value want = decodeSpecial(*expected, arena);
    if (!deepEquals(got, want) && !kUndefinedCases.count(name)) {
      ++failed;
      std::string g, w, l;
      appendJson(g, got);
      appendJson(w, want);
      appendJson(l, *logic);
      ADD_FAILURE() << name << ": logic " << l << " got " << g << " (" << (got.isNumber() ? std::to_string(got.num) : "") << ") want " << w;
    }
  }
  EXPECT_EQ(failed, 0);
  std::printf("json-logic-js conformance: %d cases checked\n", checked);
}

}  // namespace
}  // namespace fledge::flags
