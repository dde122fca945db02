#!/usr/bin/env node
// Conformance fixture generator for the C++ JsonLogic evaluator (flags/jsonlogic.hpp).
//
// Every expected result in tests/flags/jsonlogic_cases.json is produced by the reference
// implementation, json-logic-js (generated with 2.0.5), never written by hand. Only the inputs
// ({logic, data}) below are hand-written.
//
// Regenerate (from the repo root; json-logic-js is NOT a dependency of this repo, install it in a
// scratch directory outside the tree):
//
//   mkdir -p /tmp/jl && (cd /tmp/jl && npm init -y && npm install json-logic-js)
//   NODE_PATH=/tmp/jl/node_modules node tests/node/gen_jsonlogic_cases.mjs > tests/flags/jsonlogic_cases.json
// or
//   node tests/node/gen_jsonlogic_cases.mjs --jsonlogic /tmp/jl/node_modules/json-logic-js \
//     > tests/flags/jsonlogic_cases.json
//
// (--jsonlogic accepts the package directory or its logic.js.) The library version used is
// printed on stderr. Before printing, the script re-parses its own output and re-evaluates every
// case from the parsed JSON, so the file is known to reproduce json-logic-js exactly.
//
// Output: a JSON array, one case per line:
//   {"name": "...", "logic": <json>, "data": <json>, "result": <json>}
//   {"name": "...", "logic": <json>, "data": <json>, "throws": true}   (json-logic-js threw)
// "data" is always present (null when a case does not need data) and is passed to apply() as is.
//
// JSON cannot carry NaN, +/-Infinity, undefined or -0. In results (at any depth, e.g. inside an
// array returned by map) they are encoded as:
//   NaN        -> {"$special": "NaN"}
//   Infinity   -> {"$special": "Infinity"}
//   -Infinity  -> {"$special": "-Infinity"}
//   undefined  -> {"$special": "undefined"}     (e.g. {"and": []}, {"or": []})
//   -0         -> 0                              (written as plain 0; sign not recorded)
// No input contains any of these: cases that need NaN/Infinity as an operand compute it with an
// operator (e.g. {"/": [0, 0]}). No data object uses the key "$special".
//
// Inputs written with R('...') keep their exact JSON spelling in the fixture (e.g. 1.0, -0.0,
// 9007199254740993), because JSON.stringify would otherwise normalise them (1.0 -> 1, -0 -> 0).
// In JavaScript every number is an IEEE double, so 9007199254740993 parses to 9007199254740992.
//
// Deliberately excluded (not in the fixture):
//   - "log": writes to the console (side effect), otherwise the identity.
//   - "method": calls arbitrary JavaScript methods on values; not part of the portable JsonLogic
//     operator set and not deterministic across implementations.
//   - unknown operators (and dotted names like "a.b" that json-logic-js resolves into its own
//     operations table): they just throw "Unrecognized operation"; C++ rejects them at compile time.
//   - JavaScript prototype leaks through var/in, e.g. {"var": "a.length"} on an array or string
//     (returns the length), {"var": "toString"}, and indexing into strings ({"var": "s.0"} with
//     s = "xyz" returns "x"): artefacts of JS property lookup, not of JsonLogic.
//   - Object-to-primitive coercion: objects (from data) in ==, <, +, cat ... become the string
//     "[object Object]" in JS.
//   - Reference identity: {"===": [{"var": "a"}, {"var": "a"}]} is true for an array/object a in JS
//     (same reference) while two separately built equal arrays are never == / === (those
//     "distinct arrays" cases ARE included), and likewise "in" finding an array by reference.
//   - Strings with astral-plane characters in substr (JS counts UTF-16 units and can split a
//     surrogate pair). A BMP case ("héllo") is included: json-logic-js counts UTF-16 code units.
import { createRequire } from "node:module";
import path from "node:path";
import fs from "node:fs";

// ---------------------------------------------------------------------------------------------
// Library loading
function loadJsonLogic() {
  const args = process.argv.slice(2);
  const i = args.indexOf("--jsonlogic");
  const require = createRequire(import.meta.url);
  if (i >= 0) {
    if (!args[i + 1]) throw new Error("--jsonlogic needs a path");
    let p = path.resolve(args[i + 1]);
    if (fs.statSync(p).isDirectory()) {
      const pkg = JSON.parse(fs.readFileSync(path.join(p, "package.json"), "utf8"));
      process.stderr.write(`json-logic-js ${pkg.version} from ${p}\n`);
      p = path.join(p, pkg.main || "logic.js");
    } else {
      process.stderr.write(`json-logic-js from ${p}\n`);
    }
    return require(p);
  }
  // CommonJS resolution honours NODE_PATH.
  let lib;
  try {
    lib = require("json-logic-js");
  } catch (e) {
    process.stderr.write("cannot load json-logic-js: set NODE_PATH to a node_modules that has it, " +
                         "or pass --jsonlogic PATH (see the top of this file)\n");
    process.exit(2);
  }
  try {
    const pkgPath = require.resolve("json-logic-js/package.json");
    process.stderr.write(`json-logic-js ${require(pkgPath).version} from ${path.dirname(pkgPath)}\n`);
  } catch {
    process.stderr.write("json-logic-js (version unknown)\n");
  }
  return lib;
}

// ---------------------------------------------------------------------------------------------
// Case list helpers
class Raw {
  constructor(text) {
    this.text = text;
    this.value = JSON.parse(text);
  }
}
const R = (text) => new Raw(text);

const cases = [];
function c(name, logic, data = null) {
  cases.push({ name, logic, data });
}

// =============================================================================================
// Literals: logic that is not an operator object is returned as is (arrays are evaluated
// element-wise; objects with 0 or 2+ keys are plain data and NOT evaluated).
c("literal_number", 5);
c("literal_float", 3.25);
c("literal_negative", -7);
c("literal_string", "s");
c("literal_empty_string", "");
c("literal_true", true);
c("literal_false", false);
c("literal_null", null);
c("literal_empty_array", []);
c("literal_array_scalars", [1, "a", null, true]);
c("literal_array_with_var", [1, { var: "a" }], { a: 2 });
c("literal_nested_array_with_logic", [[{ var: "a" }, { "+": [1, 1] }], "x"], { a: "A" });
c("literal_empty_object", {});
c("literal_two_key_object_not_evaluated", { a: { var: "x" }, b: 1 }, { x: 9 });
c("literal_array_of_empty_object", [{}], null);
c("literal_number_with_data", 42, { a: 1 });

// =============================================================================================
// var
c("var_simple", { var: "a" }, { a: 1 });
c("var_array_form", { var: ["a"] }, { a: 1 });
c("var_string_value", { var: "a" }, { a: "hello" });
c("var_missing_key", { var: "b" }, { a: 1 });
c("var_missing_key_default", { var: ["b", 26] }, { a: 1 });
c("var_present_key_ignores_default", { var: ["a", 26] }, { a: 1 });
c("var_null_valued_key", { var: "a" }, { a: null });
c("var_null_valued_key_with_default", { var: ["a", 5] }, { a: null });
c("var_false_valued_key_with_default", { var: ["a", 5] }, { a: false });
c("var_zero_valued_key_with_default", { var: ["a", 5] }, { a: 0 });
c("var_empty_string_valued_key_with_default", { var: ["a", 5] }, { a: "" });
c("var_dotted", { var: "a.b" }, { a: { b: 2 } });
c("var_dotted_deep", { var: "a.b.c.d" }, { a: { b: { c: { d: "deep" } } } });
c("var_dotted_missing_leaf", { var: "a.x" }, { a: { b: 2 } });
c("var_dotted_missing_middle", { var: "a.x.y" }, { a: { b: 2 } });
c("var_dotted_missing_middle_default", { var: ["a.x.y", "dflt"] }, { a: { b: 2 } });
c("var_dotted_through_null", { var: "a.b" }, { a: null });
c("var_dotted_through_null_default", { var: ["a.b", 7] }, { a: null });
c("var_dotted_null_leaf_default", { var: ["a.b", 7] }, { a: { b: null } });
c("var_dotted_returns_object", { var: "a" }, { a: { b: 2, c: [1, 2] } });
c("var_dotted_returns_array", { var: "a.c" }, { a: { b: 2, c: [1, 2] } });
c("var_array_index_string", { var: "1" }, ["apple", "banana", "carrot"]);
c("var_array_index_number", { var: 1 }, ["apple", "banana", "carrot"]);
c("var_array_index_number_array_form", { var: [1] }, ["apple", "banana", "carrot"]);
c("var_array_index_zero_number", { var: 0 }, ["apple", "banana"]);
c("var_array_index_out_of_range", { var: 5 }, ["apple", "banana"]);
c("var_array_index_out_of_range_default", { var: [5, "none"] }, ["apple", "banana"]);
c("var_array_index_negative", { var: "-1" }, ["apple", "banana"]);
c("var_dotted_array_index", { var: "a.1" }, { a: [10, 20, 30] });
c("var_dotted_array_index_zero", { var: "a.0" }, { a: [10, 20, 30] });
c("var_dotted_array_index_then_key", { var: "a.1.name" }, { a: [{ name: "x" }, { name: "y" }] });
c("var_dotted_nested_arrays", { var: "m.1.0" }, { m: [[1, 2], [3, 4]] });
c("var_dotted_array_index_out_of_range", { var: "a.9" }, { a: [10, 20, 30] });
c("var_dotted_array_index_null_element_default", { var: ["a.1", "d"] }, { a: [1, null] });
c("var_numeric_key_on_object", { var: 0 }, { 0: "zero" });
c("var_numeric_string_key_on_object", { var: "1" }, { 1: "one" });
c("var_float_number_path", { var: 1.5 }, { 1: { 5: "nested" } });
c("var_empty_string_whole_object", { var: "" }, { a: 1, b: [2] });
c("var_empty_string_whole_array", { var: "" }, [1, 2, 3]);
c("var_empty_string_whole_number", { var: "" }, 5);
c("var_empty_string_whole_string", { var: "" }, "str");
c("var_empty_string_whole_null", { var: "" }, null);
c("var_empty_string_array_form", { var: [""] }, { a: 1 });
c("var_null_whole_data", { var: null }, { a: 1 });
c("var_null_array_form_whole_data", { var: [null] }, { a: 1 });
c("var_empty_args_whole_data", { var: [] }, { a: 1 });
c("var_empty_string_ignores_default", { var: ["", "d"] }, null);
c("var_on_null_data", { var: "a" }, null);
c("var_on_null_data_default", { var: ["a", 1] }, null);
c("var_on_number_data", { var: "a" }, 5);
c("var_on_number_data_default", { var: ["a", "d"] }, 5);
c("var_key_with_space", { var: "a b" }, { "a b": 3 });
c("var_empty_key_segment", { var: "a." }, { a: { "": "emptykey" } });
c("var_trailing_dot_missing", { var: ["a.", "d"] }, { a: { b: 1 } });
c("var_leading_dot", { var: ".a" }, { "": { a: "root-empty" } });
c("var_dotted_key_unreachable", { var: ["a.b", "d"] }, { "a.b": 1 });
c("var_path_from_var", { var: { var: "p" } }, { p: "x.y", x: { y: "found" } });
c("var_default_from_var", { var: ["nope", { var: "d" }] }, { d: "computed-default" });
c("var_default_is_array", { var: ["nope", [1, 2]] }, {});
c("var_default_is_logic_evaluated", { var: ["nope", { "+": [1, 2] }] }, {});
c("var_returns_logic_shaped_data_unevaluated", { var: "r" }, { r: { var: "a" }, a: 1 });
c("var_value_true", { var: "t" }, { t: true });
c("var_value_false", { var: "f" }, { f: false });
c("var_value_zero", { var: "z" }, { z: 0 });
c("var_value_float", { var: "f" }, { f: 0.5 });
c("var_value_empty_array", { var: "e" }, { e: [] });
c("var_value_empty_object", { var: "e" }, { e: {} });
c("var_unicode_key", { var: "é" }, { "é": "accent" });
c("var_extra_args_ignored", { var: ["a", 1, 2] }, { a: "A" });

// =============================================================================================
// missing / missing_some
c("missing_none_missing", { missing: ["a", "b"] }, { a: "apple", b: "banana" });
c("missing_some_keys", { missing: ["a", "b"] }, { a: "apple" });
c("missing_all", { missing: ["a", "b"] }, {});
c("missing_empty_args", { missing: [] }, { a: 1 });
c("missing_single_string_arg", { missing: "a" }, {});
c("missing_null_valued_counts_as_missing", { missing: ["a"] }, { a: null });
c("missing_empty_string_counts_as_missing", { missing: ["a"] }, { a: "" });
c("missing_zero_is_present", { missing: ["a"] }, { a: 0 });
c("missing_false_is_present", { missing: ["a"] }, { a: false });
c("missing_empty_array_is_present", { missing: ["a"] }, { a: [] });
c("missing_empty_object_is_present", { missing: ["a"] }, { a: {} });
c("missing_dotted", { missing: ["a.b", "a.c"] }, { a: { b: 1 } });
c("missing_dotted_through_null", { missing: ["a.b"] }, { a: null });
c("missing_array_index", { missing: [0, 2] }, ["x", "y"]);
c("missing_array_first_arg_only_used", { missing: [["a"], "b"] }, {});
c("missing_from_merge", { missing: { merge: ["a", ["b", "c"]] } }, { b: 1 });
c("missing_from_if", { missing: { if: [true, ["a", "b"], ["c"]] } }, { a: 1 });
c("missing_on_null_data", { missing: ["a"] }, null);
c("missing_duplicate_keys", { missing: ["a", "a"] }, {});
c("missing_preserves_key_type_number", { missing: [1] }, {});
c("missing_empty_key_whole_data_present", { missing: [""] }, { a: 1 });
c("missing_empty_key_null_data", { missing: [""] }, null);
c("missing_in_if_pattern", { if: [{ missing: ["a"] }, "missing a", "ok"] }, { b: 1 });
c("missing_some_satisfied", { missing_some: [1, ["a", "b", "c"]] }, { a: "apple" });
c("missing_some_unsatisfied", { missing_some: [2, ["a", "b", "c"]] }, { a: "apple" });
c("missing_some_none_present", { missing_some: [1, ["a", "b"]] }, {});
c("missing_some_all_present", { missing_some: [2, ["a", "b"]] }, { a: 1, b: 2 });
c("missing_some_zero_needed", { missing_some: [0, ["a", "b"]] }, {});
c("missing_some_need_more_than_options", { missing_some: [3, ["a", "b"]] }, { a: 1, b: 2 });
c("missing_some_null_valued", { missing_some: [1, ["a", "b"]] }, { a: null, b: "" });
c("missing_some_empty_options", { missing_some: [1, []] }, {});
c("missing_some_empty_options_zero_needed", { missing_some: [0, []] }, {});
c("missing_some_dotted", { missing_some: [1, ["x.a", "x.b"]] }, { x: { b: 1 } });
c("missing_some_need_string", { missing_some: ["1", ["a", "b"]] }, { a: 1 });
c("missing_some_no_options_throws", { missing_some: [1] }, {});
c("missing_some_in_merge_pattern",
  { if: [{ merge: [{ missing: ["first"] }, { missing_some: [1, ["phone", "email"]] }] }, "bad", "ok"] },
  { first: "Bob", email: "b@x" });
c("missing_some_in_merge_pattern_missing",
  { merge: [{ missing: ["first", "last"] }, { missing_some: [1, ["phone", "email"]] }] },
  { first: "Bob" });

// =============================================================================================
// if / ?:
c("if_zero_args", { if: [] });
c("if_one_arg", { if: ["only"] });
c("if_one_arg_logic", { if: [{ var: "a" }] }, { a: "A" });
c("if_one_arg_non_array", { if: true });
c("if_two_args_true", { if: [true, "yes"] });
c("if_two_args_false", { if: [false, "yes"] });
c("if_three_args_true", { if: [true, "yes", "no"] });
c("if_three_args_false", { if: [false, "yes", "no"] });
c("if_four_args_first", { if: [true, "a", true, "b"] });
c("if_four_args_second", { if: [false, "a", true, "b"] });
c("if_four_args_none", { if: [false, "a", false, "b"] });
c("if_five_args_first", { if: [true, "a", true, "b", "c"] });
c("if_five_args_second", { if: [false, "a", true, "b", "c"] });
c("if_five_args_else", { if: [false, "a", false, "b", "c"] });
c("if_seven_args_chain", { if: [false, 1, 0, 2, "", 3, 4] });
c("if_chain_fizzbuzz_15",
  { if: [{ "==": [{ "%": [{ var: "i" }, 15] }, 0] }, "fizzbuzz",
         { "==": [{ "%": [{ var: "i" }, 3] }, 0] }, "fizz",
         { "==": [{ "%": [{ var: "i" }, 5] }, 0] }, "buzz", { var: "i" }] },
  { i: 15 });
c("if_chain_fizzbuzz_9",
  { if: [{ "==": [{ "%": [{ var: "i" }, 15] }, 0] }, "fizzbuzz",
         { "==": [{ "%": [{ var: "i" }, 3] }, 0] }, "fizz",
         { "==": [{ "%": [{ var: "i" }, 5] }, 0] }, "buzz", { var: "i" }] },
  { i: 9 });
c("if_chain_fizzbuzz_10",
  { if: [{ "==": [{ "%": [{ var: "i" }, 15] }, 0] }, "fizzbuzz",
         { "==": [{ "%": [{ var: "i" }, 3] }, 0] }, "fizz",
         { "==": [{ "%": [{ var: "i" }, 5] }, 0] }, "buzz", { var: "i" }] },
  { i: 10 });
c("if_chain_fizzbuzz_7",
  { if: [{ "==": [{ "%": [{ var: "i" }, 15] }, 0] }, "fizzbuzz",
         { "==": [{ "%": [{ var: "i" }, 3] }, 0] }, "fizz",
         { "==": [{ "%": [{ var: "i" }, 5] }, 0] }, "buzz", { var: "i" }] },
  { i: 7 });
c("if_truthy_string_zero", { if: ["0", "t", "f"] });
c("if_falsy_empty_string", { if: ["", "t", "f"] });
c("if_falsy_zero", { if: [0, "t", "f"] });
c("if_falsy_null", { if: [null, "t", "f"] });
c("if_falsy_empty_array", { if: [[], "t", "f"] });
c("if_truthy_array_zero", { if: [[0], "t", "f"] });
c("if_truthy_empty_object", { if: [{}, "t", "f"] });
c("if_falsy_nan", { if: [{ "/": [0, 0] }, "t", "f"] });
c("if_truthy_string_false", { if: ["false", "t", "f"] });
c("if_returns_evaluated_branch", { if: [{ var: "c" }, { var: "a" }, { var: "b" }] }, { c: 1, a: "A", b: "B" });
c("if_lazy_untaken_branch_not_evaluated", { if: [true, "ok", { missing_some: [1] }] });
c("if_lazy_untaken_condition_not_evaluated", { if: [true, "ok", { missing_some: [1] }, "x"] });
c("if_nested", { if: [{ var: "a" }, { if: [{ var: "b" }, "ab", "a"] }, "none"] }, { a: 1, b: 0 });
c("if_returns_array", { if: [true, [1, { var: "x" }], null] }, { x: 2 });
c("ternary_true", { "?:": [true, 1, 2] });
c("ternary_false", { "?:": [false, 1, 2] });
c("ternary_truthy_var", { "?:": [{ var: "x" }, "yes", "no"] }, { x: "0" });
c("ternary_falsy_var", { "?:": [{ var: "x" }, "yes", "no"] }, { x: 0 });
c("ternary_zero_args", { "?:": [] });
c("ternary_one_arg", { "?:": ["v"] });
c("ternary_two_args_false", { "?:": [false, "v"] });
c("ternary_chain_five", { "?:": [false, "a", true, "b", "c"] });

// =============================================================================================
// == and != (loose equality)
const looseEqPairs = [
  ["num_num", 1, 1], ["num_num_diff", 1, 2], ["num_str", 1, "1"], ["num_str_float", 1, "1.0"],
  ["str_str_float_vs_int", "1.0", "1"], ["str_str_equal", "abc", "abc"], ["str_str_case", "abc", "ABC"],
  ["zero_false", 0, false], ["one_true", 1, true], ["two_true", 2, true], ["str_one_true", "1", true],
  ["str_true_true", "true", true], ["str_false_false", "false", false], ["str_zero_false", "0", false],
  ["empty_false", "", false], ["empty_zero", "", 0], ["space_zero", " ", 0], ["newline_zero", "\n", 0],
  ["tab_zero", "\t", 0], ["str_padded_num", " 12 ", 12], ["str_exp_num", "1e1", 10],
  ["str_hex_num", "0x10", 16], ["str_plus_num", "+5", 5], ["str_dot_num", ".5", 0.5],
  ["str_trailing_garbage_num", "5abc", 5], ["null_null", null, null], ["null_zero", null, 0],
  ["null_false", null, false], ["null_empty", null, ""], ["null_str_null", null, "null"],
  ["true_true", true, true], ["true_false", true, false], ["false_false", false, false],
  ["array1_num", [1], 1], ["array1_str", [1], "1"], ["array_str_elem_str", ["a"], "a"],
  ["empty_array_zero", [], 0], ["empty_array_empty_str", [], ""], ["empty_array_false", [], false],
  ["array_zero_false", [0], false], ["array_zero_zero", [0], 0], ["nested_empty_array_zero", [[]], 0],
  ["array_null_empty_str", [null], ""], ["array_null_zero", [null], 0], ["array_two_str", [1, 2], "1,2"],
  ["array_two_num", [1, 2], 1], ["array_nested_str", [1, [2, 3]], "1,2,3"], ["array_true_str", [true], "true"],
  ["array_true_true", [true], true], ["array_one_true", [1], true], ["empty_array_null", [], null],
  ["array_array_distinct", [1], [1]], ["empty_array_empty_array_distinct", [], []],
  ["num_float_int", 1.0, 1], ["neg_zero_str", 0, "-0"], ["str_num_neg", "-1", -1],
  ["str_infinity_word", "Infinity", 1e308], ["str_with_inner_space", "1 2", 12],
];
for (const [n, a, b] of looseEqPairs) {
  c(`eq_${n}`, { "==": [a, b] });
  c(`ne_${n}`, { "!=": [a, b] });
}
c("eq_reversed_str_num", { "==": ["1", 1] });
c("eq_reversed_false_zero", { "==": [false, 0] });
c("eq_reversed_empty_str_array", { "==": ["", []] });
c("eq_nan_nan", { "==": [{ "/": [0, 0] }, { "/": [0, 0] }] });
c("ne_nan_nan", { "!=": [{ "/": [0, 0] }, { "/": [0, 0] }] });
c("eq_infinity_str", { "==": [{ "/": [1, 0] }, "Infinity"] });
c("eq_infinity_infinity", { "==": [{ "/": [1, 0] }, { "/": [2, 0] }] });
c("eq_neg_zero_zero", { "==": [{ "-": [0] }, 0] });
c("eq_one_arg_null_vs_undefined", { "==": [null] });
c("eq_one_arg_number", { "==": [1] });
c("eq_zero_args", { "==": [] });
c("eq_extra_args_ignored", { "==": [1, 1, 2] });
c("eq_var_vs_literal", { "==": [{ var: "a" }, "1"] }, { a: 1 });
c("eq_two_distinct_data_arrays", { "==": [{ var: "a" }, { var: "b" }] }, { a: [1], b: [1] });
c("eq_missing_var_null", { "==": [{ var: "nope" }, null] }, {});
c("eq_float_sum", { "==": [{ "+": [0.1, 0.2] }, 0.3] });
c("ne_one_arg_null", { "!=": [null] });
c("ne_zero_args", { "!=": [] });

// =============================================================================================
// === and !== (strict equality)
const strictEqPairs = [
  ["num_num", 1, 1], ["num_str", 1, "1"], ["zero_false", 0, false], ["null_null", null, null],
  ["null_zero", null, 0], ["str_str", "a", "a"], ["empty_empty", "", ""], ["true_true", true, true],
  ["true_one", true, 1], ["float_int", 1.0, 1], ["array_array_distinct", [1], [1]],
  ["empty_array_distinct", [], []], ["array_num", [1], 1], ["float_float", 0.5, 0.5],
  ["str_case", "a", "A"], ["null_empty", null, ""], ["false_false", false, false],
];
for (const [n, a, b] of strictEqPairs) {
  c(`seq_${n}`, { "===": [a, b] });
  c(`sne_${n}`, { "!==": [a, b] });
}
c("seq_nan_nan", { "===": [{ "/": [0, 0] }, { "/": [0, 0] }] });
c("seq_neg_zero_zero", { "===": [{ "-": [0] }, 0] });
c("seq_one_arg_null", { "===": [null] });
c("seq_zero_args", { "===": [] });
c("sne_one_arg_null", { "!==": [null] });
c("seq_var_number", { "===": [{ var: "a" }, 1] }, { a: 1 });
c("seq_var_string_vs_number", { "===": [{ var: "a" }, 1] }, { a: "1" });
c("seq_missing_var_null", { "===": [{ var: "a" }, null] }, {});

// =============================================================================================
// ! and !! (truthiness)
const truthValues = [
  ["zero", 0], ["one", 1], ["neg", -1], ["float", 0.1], ["str_zero", "0"], ["str_empty", ""],
  ["str_space", " "], ["str_false", "false"], ["str_null", "null"], ["true", true], ["false", false],
  ["null", null], ["empty_object", {}], ["two_key_object", { a: 1, b: 2 }],
];
for (const [n, v] of truthValues) {
  c(`notnot_${n}`, { "!!": [v] });
  c(`not_${n}`, { "!": [v] });
}
// Arrays must be wrapped: {"!!": [[]]} tests [], while {"!!": []} has no argument.
c("notnot_empty_array", { "!!": [[]] });
c("not_empty_array", { "!": [[]] });
c("notnot_array_zero", { "!!": [[0]] });
c("not_array_zero", { "!": [[0]] });
c("notnot_array_empty_string", { "!!": [[""]] });
c("notnot_nested_empty_array", { "!!": [[[]]] });
c("notnot_no_args", { "!!": [] });
c("not_no_args", { "!": [] });
c("notnot_non_array_arg", { "!!": "x" });
c("not_non_array_arg", { "!": true });
c("not_non_array_zero", { "!": 0 });
c("notnot_nan", { "!!": [{ "/": [0, 0] }] });
c("notnot_infinity", { "!!": [{ "/": [1, 0] }] });
c("notnot_neg_zero", { "!!": [{ "-": [0] }] });
c("notnot_var_empty_array", { "!!": { var: "a" } }, { a: [] });
c("notnot_var_empty_object", { "!!": { var: "a" } }, { a: {} });
c("notnot_missing_var", { "!!": { var: "nope" } }, {});
c("not_extra_args_ignored", { "!": [false, true] });
c("notnot_missing_result", { "!!": { missing: ["a"] } }, { a: 1 });
c("not_not", { "!": { "!": [5] } });

// =============================================================================================
// or / and (return the deciding value)
c("or_first_truthy", { or: [0, "", "x", "y"] });
c("or_all_falsy_returns_last", { or: [0, "", null] });
c("or_all_falsy_last_empty_array", { or: [0, false, []] });
c("or_first_value", { or: [1, 2] });
c("or_single", { or: [0] });
c("or_single_truthy", { or: ["a"] });
c("or_empty", { or: [] });
c("or_non_array_arg", { or: "x" });
c("or_array_value_truthy", { or: [[], [0]] });
c("or_short_circuit", { or: [true, { missing_some: [1] }] });
c("or_falsy_then_throw", { or: [false, { missing_some: [1] }] });
c("or_var_default", { or: [{ var: "a" }, "fallback"] }, { a: "" });
c("or_var_present", { or: [{ var: "a" }, "fallback"] }, { a: "set" });
c("or_str_zero_truthy", { or: [false, "0"] });
c("or_nan_then_zero", { or: [{ "/": [0, 0] }, 0] });
c("or_zero_then_nan", { or: [0, { "/": [0, 0] }] });
c("or_returns_object", { or: [null, { var: "o" }] }, { o: { k: 1 } });
c("and_all_truthy_returns_last", { and: [1, "a", true, [1]] });
c("and_first_falsy", { and: [1, 0, "x"] });
c("and_first_falsy_empty_string", { and: [true, "", false] });
c("and_first_falsy_empty_array", { and: [true, [], false] });
c("and_single", { and: [5] });
c("and_single_falsy", { and: [null] });
c("and_empty", { and: [] });
c("and_non_array_arg", { and: 0 });
c("and_short_circuit", { and: [false, { missing_some: [1] }] });
c("and_truthy_then_throw", { and: [true, { missing_some: [1] }] });
c("and_returns_nan", { and: [1, { "/": [0, 0] }, 2] });
c("and_with_comparisons", { and: [{ ">": [3, 1] }, { "<": [1, 3] }] });
c("and_with_comparisons_false", { and: [{ ">": [3, 1] }, { "<": [3, 1] }] });
c("and_var_values", { and: [{ var: "a" }, { var: "b" }] }, { a: "x", b: "y" });
c("and_nested_or", { and: [{ or: [0, "a"] }, { or: ["", 0] }] });
c("or_nested_and", { or: [{ and: [1, 0] }, { and: ["a", "b"] }] });

// =============================================================================================
// < <= > >=
const cmpPairs = [
  ["num_lt", 1, 2], ["num_eq", 2, 2], ["num_gt", 3, 2], ["str_num_10_9", "10", "9"],
  ["str_10_num_9", "10", 9], ["num_10_str_9", 10, "9"], ["str_a_num_1", "a", 1], ["num_1_str_a", 1, "a"],
  ["null_1", null, 1], ["null_0", null, 0], ["null_neg1", null, -1], ["true_0", true, 0],
  ["true_1", true, 1], ["false_0", false, 0], ["array2_1", [2], 1], ["array_two_3", [1, 2], 3],
  ["arrays_as_strings", [1, 2], [1, 3]], ["arrays_10_9", [10], [9]], ["array2_str10", [2], "10"],
  ["str_b_a", "b", "a"], ["str_upper_lower", "B", "a"], ["str_abc_abd", "abc", "abd"],
  ["str_prefix", "ab", "abc"], ["empty_str_1", "", 1], ["empty_str_0", "", 0], ["space_1", " ", 1],
  ["str_exp", "1e1", 9], ["str_hex", "0x10", 15], ["null_null", null, null], ["null_empty_str", null, ""],
  ["empty_array_0", [], 0], ["empty_array_1", [], 1], ["float", 0.1, 0.2], ["neg", -5, -3],
  ["str_float_num", "2.5", 2], ["str_str_numbers", "2", "12"], ["bool_bool", false, true],
  ["str_true_true", "true", true], ["empty_strs", "", ""], ["str_a_null", "a", null],
];
for (const [n, a, b] of cmpPairs) {
  c(`lt_${n}`, { "<": [a, b] });
  c(`le_${n}`, { "<=": [a, b] });
  c(`gt_${n}`, { ">": [a, b] });
  c(`ge_${n}`, { ">=": [a, b] });
}
c("lt_nan_1", { "<": [{ "/": [0, 0] }, 1] });
c("ge_nan_1", { ">=": [{ "/": [0, 0] }, 1] });
c("lt_infinity", { "<": [1e308, { "/": [1, 0] }] });
c("gt_neg_infinity", { ">": [-1e308, { "/": [-1, 0] }] });
c("lt_one_arg", { "<": [1] });
c("lt_zero_args", { "<": [] });
c("gt_one_arg", { ">": [1] });
c("ge_one_arg_null", { ">=": [null] });
c("gt_three_args_third_ignored", { ">": [3, 2, 100] });
c("ge_three_args_third_ignored", { ">=": [3, 2, 100] });
c("lt_var", { "<": [{ var: "temp" }, 110] }, { temp: 100 });
c("gt_var_string_number", { ">": [{ var: "v" }, 5] }, { v: "6" });
// between
c("lt_between_inside", { "<": [1, 2, 3] });
c("lt_between_low_edge", { "<": [1, 1, 3] });
c("lt_between_high_edge", { "<": [1, 3, 3] });
c("lt_between_outside", { "<": [1, 4, 3] });
c("le_between_inside", { "<=": [1, 2, 3] });
c("le_between_low_edge", { "<=": [1, 1, 3] });
c("le_between_high_edge", { "<=": [1, 3, 3] });
c("le_between_outside", { "<=": [1, 4, 3] });
c("le_between_all_equal", { "<=": [2, 2, 2] });
c("lt_between_strings", { "<": ["1", 2, "3"] });
c("lt_between_lexicographic", { "<": ["a", "b", "c"] });
c("lt_between_mixed_nan", { "<": [1, "a", 3] });
c("le_between_null", { "<=": [null, 0, 1] });
c("lt_between_var", { "<": [0, { var: "t" }, 10] }, { t: 5 });
c("lt_between_var_outside", { "<": [0, { var: "t" }, 10] }, { t: 10 });
c("le_between_var_edge", { "<=": [0, { var: "t" }, 10] }, { t: 10 });
c("lt_third_null_not_undefined", { "<": [1, 2, { var: "nope" }] }, {});
c("le_third_null_not_undefined", { "<=": [-1, 0, { var: "nope" }] }, {});
c("lt_third_literal_null", { "<": [1, 2, null] });
c("lt_four_args_fourth_ignored", { "<": [1, 2, 3, 0] });
c("lt_between_first_fails_short", { "<": [5, 2, 3] });

// =============================================================================================
// max / min
c("max_numbers", { max: [1, 2, 3] });
c("min_numbers", { min: [1, 2, 3] });
c("max_single", { max: [7] });
c("min_single", { min: [7] });
c("max_empty", { max: [] });
c("min_empty", { min: [] });
c("max_negatives", { max: [-3, -1, -2] });
c("min_floats", { min: [0.5, 0.25, 1] });
c("max_numeric_strings", { max: ["1", "3", "2"] });
c("min_numeric_strings", { min: ["10", "9"] });
c("max_non_numeric_string", { max: ["a", 1] });
c("min_non_numeric_string", { min: [1, "a"] });
c("max_null", { max: [null, -1] });
c("min_null", { min: [null, 1] });
c("max_only_null", { max: [null] });
c("max_bool", { max: [true, 0] });
c("min_bool", { min: [false, 1] });
c("max_empty_string", { max: ["", -5] });
c("max_array_single", { max: [[5], 1] });
c("max_array_multi", { max: [[1, 2], 1] });
c("min_empty_array", { min: [[], 1] });
c("max_var", { max: [{ var: "a" }, { var: "b" }] }, { a: 4, b: 9 });
c("max_missing_var", { max: [{ var: "nope" }, -2] }, {});
c("min_nan_propagates", { min: [{ "/": [0, 0] }, 1] });
c("max_non_array_arg", { max: 3 });
c("max_padded_string", { max: [" 12 ", 3] });
c("max_hex_string", { max: ["0x10", 3] });
c("min_trailing_garbage_string", { min: ["5abc", 3] });

// =============================================================================================
// + (parseFloat on every operand)
c("add_two", { "+": [1, 2] });
c("add_many", { "+": [1, 2, 3, 4] });
c("add_zero_args", { "+": [] });
c("add_single_number", { "+": [5] });
c("add_single_string", { "+": ["3.14"] });
c("add_single_non_array", { "+": "3" });
c("add_string_numbers", { "+": ["1", "2"] });
c("add_string_trailing_garbage", { "+": ["3.5abc", 1] });
c("add_string_non_numeric", { "+": ["abc", 1] });
c("add_empty_string", { "+": ["", 1] });
c("add_single_empty_string", { "+": [""] });
c("add_null", { "+": [null, 1] });
c("add_single_null", { "+": [null] });
c("add_true", { "+": [true, 1] });
c("add_false", { "+": [false] });
c("add_array_single", { "+": [[2], 1] });
c("add_array_multi", { "+": [[1, 2], 1] });
c("add_empty_array", { "+": [[], 1] });
c("add_leading_space", { "+": ["  12", 1] });
c("add_trailing_space", { "+": ["12  ", 1] });
c("add_exponent_string", { "+": ["1e3", 1] });
c("add_hex_string", { "+": ["0x10", 1] });
c("add_leading_dot", { "+": [".5", 1] });
c("add_trailing_dot", { "+": ["5.", 1] });
c("add_plus_sign", { "+": ["+5", 1] });
c("add_minus_sign", { "+": ["-5", 1] });
c("add_underscore", { "+": ["1_000", 1] });
c("add_comma", { "+": ["1,5", 1] });
c("add_infinity_string", { "+": ["Infinity", 1] });
c("add_neg_infinity_string", { "+": ["-Infinity"] });
c("add_infinity_prefix_garbage", { "+": ["Infinityx"] });
c("add_lowercase_infinity", { "+": ["infinity"] });
c("add_nan_string", { "+": ["NaN"] });
c("add_floats", { "+": [0.1, 0.2] });
c("add_large", { "+": [1e308, 1e308] });
c("add_negative_result", { "+": [-5, 2] });
c("add_neg_zeros", { "+": [{ "-": [0] }, { "-": [0] }] });
c("add_var", { "+": [{ var: "a" }, { var: "b" }] }, { a: "1.5", b: 2 });
c("add_missing_var", { "+": [{ var: "nope" }, 1] }, {});
c("add_exponent_garbage", { "+": ["1e", 1] });
c("add_multiple_dots", { "+": ["1.2.3"] });

// =============================================================================================
// - (JS numeric coercion: Number(), not parseFloat)
c("sub_binary", { "-": [4, 2] });
c("sub_unary", { "-": [2] });
c("sub_unary_negative", { "-": [-2] });
c("sub_unary_non_array", { "-": 3 });
c("sub_unary_string", { "-": ["5"] });
c("sub_unary_non_numeric_string", { "-": ["abc"] });
c("sub_unary_empty_string", { "-": [""] });
c("sub_unary_null", { "-": [null] });
c("sub_unary_true", { "-": [true] });
c("sub_unary_array_single", { "-": [[5]] });
c("sub_unary_empty_array", { "-": [[]] });
c("sub_zero_args", { "-": [] });
c("sub_strings", { "-": ["5", "2"] });
c("sub_string_trailing_garbage", { "-": ["3.5abc", 1] });
c("sub_empty_string", { "-": ["", 1] });
c("sub_null_left", { "-": [null, 1] });
c("sub_null_right", { "-": [1, null] });
c("sub_padded_string", { "-": [" 12 ", 2] });
c("sub_hex_string", { "-": ["0x10", 1] });
c("sub_exponent_string", { "-": ["1e3", 0] });
c("sub_array_single", { "-": [[5], 1] });
c("sub_array_multi", { "-": [[1, 2], 1] });
c("sub_bool", { "-": [true, false] });
c("sub_floats", { "-": [0.3, 0.1] });
c("sub_three_args_third_ignored", { "-": [10, 3, 2] });
c("sub_var", { "-": [{ var: "a" }, 1] }, { a: "10" });
c("sub_missing_var", { "-": [{ var: "nope" }, 1] }, {});
c("sub_infinity_string", { "-": ["Infinity", 1] });
c("sub_plus_sign_string", { "-": ["+5", 1] });
c("sub_dot_string", { "-": [".5", 0] });
c("sub_whitespace_string", { "-": [" ", 1] });
c("sub_zero_minus_zero", { "-": [0, 0] });

// =============================================================================================
// * (parseFloat, reduce WITHOUT an initial value)
c("mul_two", { "*": [2, 3] });
c("mul_many", { "*": [2, 3, 4] });
c("mul_single_number", { "*": [5] });
c("mul_single_string_unconverted", { "*": ["5"] });
c("mul_single_non_numeric_string", { "*": ["abc"] });
c("mul_single_null", { "*": [null] });
c("mul_single_array", { "*": [[1, 2]] });
c("mul_single_bool", { "*": [true] });
c("mul_single_non_array", { "*": "2" });
c("mul_zero_args_throws", { "*": [] });
c("mul_strings", { "*": ["2", "3"] });
c("mul_string_trailing_garbage", { "*": ["2.5x", 2] });
c("mul_non_numeric", { "*": ["a", 2] });
c("mul_null", { "*": [null, 2] });
c("mul_bool", { "*": [true, 2] });
c("mul_empty_string", { "*": ["", 2] });
c("mul_array", { "*": [[3], 2] });
c("mul_floats", { "*": [0.1, 3] });
c("mul_negative_zero", { "*": [-1, 0] });
c("mul_overflow", { "*": [1e200, 1e200] });
c("mul_hex_string", { "*": ["0x10", 2] });
c("mul_var", { "*": [{ var: "a" }, 2] }, { a: "4" });
c("mul_single_var_string_unconverted", { "*": [{ var: "a" }] }, { a: "4" });
c("mul_three_with_string", { "*": [2, "3", "4abc"] });

// =============================================================================================
// / (JS division)
c("div_simple", { "/": [4, 2] });
c("div_fraction", { "/": [1, 3] });
c("div_by_zero", { "/": [1, 0] });
c("div_neg_by_zero", { "/": [-1, 0] });
c("div_zero_by_zero", { "/": [0, 0] });
c("div_by_neg_zero", { "/": [1, { "-": [0] }] });
c("div_strings", { "/": ["6", "2"] });
c("div_non_numeric", { "/": ["a", 1] });
c("div_null_numerator", { "/": [null, 2] });
c("div_null_denominator", { "/": [2, null] });
c("div_empty_string_denominator", { "/": [2, ""] });
c("div_hex_string", { "/": ["0x10", 2] });
c("div_trailing_garbage", { "/": ["6x", 2] });
c("div_array", { "/": [[6], [3]] });
c("div_single_arg", { "/": [1] });
c("div_zero_args", { "/": [] });
c("div_bool", { "/": [true, 2] });
c("div_three_args_third_ignored", { "/": [8, 2, 2] });
c("div_var", { "/": [{ var: "a" }, { var: "b" }] }, { a: 7, b: 2 });
c("div_tiny", { "/": [1, 1e308] });
c("div_padded_string", { "/": [" 9 ", 3] });

// =============================================================================================
// % (JS remainder: sign of the dividend)
c("mod_simple", { "%": [7, 3] });
c("mod_exact", { "%": [6, 3] });
c("mod_negative_dividend", { "%": [-7, 3] });
c("mod_negative_divisor", { "%": [7, -3] });
c("mod_both_negative", { "%": [-7, -3] });
c("mod_negative_exact", { "%": [-6, 3] });
c("mod_by_zero", { "%": [5, 0] });
c("mod_zero_by_zero", { "%": [0, 0] });
c("mod_zero_dividend", { "%": [0, 5] });
c("mod_float", { "%": [5.5, 2] });
c("mod_float_divisor", { "%": [1, 0.3] });
c("mod_strings", { "%": ["7", "3"] });
c("mod_non_numeric", { "%": ["a", 3] });
c("mod_null", { "%": [null, 3] });
c("mod_by_null", { "%": [3, null] });
c("mod_bool", { "%": [true, 2] });
c("mod_smaller_dividend", { "%": [2, 5] });
c("mod_infinity_dividend", { "%": [{ "/": [1, 0] }, 3] });
c("mod_by_infinity", { "%": [3, { "/": [1, 0] }] });
c("mod_single_arg", { "%": [3] });
c("mod_var", { "%": [{ var: "n" }, 2] }, { n: 11 });
c("mod_large", { "%": [1e17, 7] });
c("mod_hex_string", { "%": ["0x11", 16] });

// =============================================================================================
// map / filter / reduce
c("map_double", { map: [[1, 2, 3], { "*": [{ var: "" }, 2] }] });
c("map_var_array", { map: [{ var: "integers" }, { "*": [{ var: "" }, 2] }] }, { integers: [1, 2, 3, 4, 5] });
c("map_empty", { map: [[], { var: "" }] });
c("map_non_array_null", { map: [null, { var: "" }] });
c("map_non_array_number", { map: [5, { var: "" }] });
c("map_non_array_string", { map: ["abc", { var: "" }] });
c("map_missing_var", { map: [{ var: "nope" }, { var: "" }] }, {});
c("map_object_input", { map: [{ var: "o" }, { var: "" }] }, { o: { a: 1 } });
c("map_no_args", { map: [] });
c("map_no_logic", { map: [[1, 2]] });
c("map_objects_field", { map: [{ var: "people" }, { var: "name" }] }, { people: [{ name: "a" }, { name: "b" }, {}] });
c("map_scope_hides_outer_data", { map: [[1, 2], { var: "outer" }] }, { outer: "x" });
c("map_index_into_pairs", { map: [[[1, 2], [3, 4]], { var: 1 }] });
c("map_literal_logic", { map: [[1, 2], "k"] });
c("map_to_undefined", { map: [[1, 2], { and: [] }] });
c("map_to_nan", { map: [["a", 1], { "+": [{ var: "" }] }] });
c("map_nested", { map: [[[1, 2], [3]], { map: [{ var: "" }, { "+": [{ var: "" }, 10] }] }] });
c("map_cat", { map: [["a", "b"], { cat: [{ var: "" }, "!"] }] });
c("filter_gt", { filter: [[1, 2, 3, 4, 5], { ">": [{ var: "" }, 2] }] });
c("filter_odd", { filter: [{ var: "integers" }, { "%": [{ var: "" }, 2] }] }, { integers: [1, 2, 3, 4, 5] });
c("filter_truthiness", { filter: [[0, 1, "", "a", null, [], [0], {}, "0", false, true], { var: "" }] });
c("filter_empty", { filter: [[], true] });
c("filter_non_array", { filter: ["abc", true] });
c("filter_null", { filter: [null, true] });
c("filter_all_pass", { filter: [[1, 2], true] });
c("filter_none_pass", { filter: [[1, 2], false] });
c("filter_objects", { filter: [{ var: "xs" }, { "==": [{ var: "k" }, "a"] }] }, { xs: [{ k: "a", v: 1 }, { k: "b", v: 2 }, { k: "a", v: 3 }] });
c("filter_no_args", { filter: [] });
c("filter_then_map", { map: [{ filter: [[1, 2, 3, 4], { "<": [{ var: "" }, 3] }] }, { "*": [{ var: "" }, 10] }] });
c("reduce_sum_initial", { reduce: [[1, 2, 3, 4], { "+": [{ var: "current" }, { var: "accumulator" }] }, 0] });
c("reduce_sum_no_initial", { reduce: [[1, 2, 3], { "+": [{ var: "current" }, { var: "accumulator" }] }] });
c("reduce_product_initial", { reduce: [[1, 2, 3, 4], { "*": [{ var: "current" }, { var: "accumulator" }] }, 1] });
c("reduce_var_input", { reduce: [{ var: "desserts" }, { "+": [{ var: "accumulator" }, { var: "current.qty" }] }, 0] },
  { desserts: [{ name: "pie", qty: 1 }, { name: "cake", qty: 2 }, { name: "tart", qty: 3 }] });
c("reduce_empty_with_initial", { reduce: [[], { "+": [{ var: "current" }, { var: "accumulator" }] }, 7] });
c("reduce_empty_no_initial", { reduce: [[], { "+": [{ var: "current" }, { var: "accumulator" }] }] });
c("reduce_non_array_with_initial", { reduce: ["abc", { "+": [1, 1] }, 5] });
c("reduce_non_array_no_initial", { reduce: [5, { "+": [1, 1] }] });
c("reduce_null_input_with_initial", { reduce: [null, { "+": [1, 1] }, "init"] });
c("reduce_missing_var_input", { reduce: [{ var: "nope" }, { "+": [1, 1] }, 0] }, {});
c("reduce_initial_from_var", { reduce: [[1, 2], { "+": [{ var: "current" }, { var: "accumulator" }] }, { var: "start" }] }, { start: 100 });
c("reduce_initial_null_literal", { reduce: [[1, 2], { "+": [{ var: "current" }, { var: "accumulator" }] }, null] });
c("reduce_max", { reduce: [[3, 9, 2], { max: [{ var: "current" }, { var: "accumulator" }] }, 0] });
c("reduce_cat", { reduce: [["a", "b", "c"], { cat: [{ var: "accumulator" }, { var: "current" }] }, ""] });
c("reduce_cat_no_initial", { reduce: [["a", "b"], { cat: [{ var: "accumulator" }, { var: "current" }] }] });
c("reduce_build_array", { reduce: [[1, 2, 3], { merge: [{ var: "accumulator" }, [{ var: "current" }]] }, []] });
c("reduce_accumulator_only", { reduce: [[1, 2, 3], { var: "accumulator" }, "keep"] });
c("reduce_current_only", { reduce: [[1, 2, 3], { var: "current" }, "keep"] });
c("reduce_no_args", { reduce: [] });
c("reduce_mul_no_initial", { reduce: [[2, 3], { "*": [{ var: "current" }, { var: "accumulator" }] }] });
c("reduce_and_all_truthy", { reduce: [[1, "a", true], { and: [{ var: "accumulator" }, { var: "current" }] }, true] });

// =============================================================================================
// all / none / some
c("all_true", { all: [[1, 2, 3], { ">": [{ var: "" }, 0] }] });
c("all_false", { all: [[1, 2, 3], { ">": [{ var: "" }, 1] }] });
c("all_empty", { all: [[], { ">": [{ var: "" }, 0] }] });
c("all_empty_literal_true", { all: [[], true] });
c("all_non_array", { all: ["abc", true] });
c("all_null", { all: [null, true] });
c("all_no_args", { all: [] });
c("all_truthiness", { all: [[1, "a", [0], {}], { var: "" }] });
c("all_with_empty_array_element", { all: [[1, []], { var: "" }] });
c("all_objects", { all: [{ var: "items" }, { ">=": [{ var: "qty" }, 1] }] }, { items: [{ qty: 1 }, { qty: 2 }] });
c("all_objects_fail", { all: [{ var: "items" }, { ">=": [{ var: "qty" }, 1] }] }, { items: [{ qty: 1 }, { qty: 0 }] });
c("all_missing_var", { all: [{ var: "nope" }, true] }, {});
c("none_true", { none: [[-3, -2], { ">": [{ var: "" }, 0] }] });
c("none_false", { none: [[-3, 2], { ">": [{ var: "" }, 0] }] });
c("none_empty", { none: [[], true] });
c("none_non_array", { none: [5, true] });
c("none_null", { none: [null, true] });
c("none_no_args", { none: [] });
c("none_truthiness", { none: [[0, "", null, [], false], { var: "" }] });
c("some_true", { some: [[-1, 0, 1], { ">": [{ var: "" }, 0] }] });
c("some_false", { some: [[-1, 0], { ">": [{ var: "" }, 0] }] });
c("some_empty", { some: [[], true] });
c("some_non_array", { some: ["abc", true] });
c("some_null", { some: [null, true] });
c("some_no_args", { some: [] });
c("some_objects", { some: [{ var: "pies" }, { "==": [{ var: "filling" }, "apple"] }] },
  { pies: [{ filling: "pumpkin", temp: 110 }, { filling: "rhubarb", temp: 210 }, { filling: "apple", temp: 310 }] });
c("some_truthiness_array_zero", { some: [[0, [0]], { var: "" }] });
c("all_nested_some", { all: [[[1, 0], [0, 2]], { some: [{ var: "" }, { var: "" }] }] });

// =============================================================================================
// merge
c("merge_empty", { merge: [] });
c("merge_single_array", { merge: [[1, 2]] });
c("merge_arrays", { merge: [[1, 2], [3, 4]] });
c("merge_scalars", { merge: [1, 2] });
c("merge_mixed", { merge: [1, [2, 3], "a"] });
c("merge_nested_one_level", { merge: [1, [2, [3, [4]]]] });
c("merge_nested_arrays", { merge: [[[1]], [[2, 3]]] });
c("merge_null", { merge: [null] });
c("merge_non_array_arg", { merge: "a" });
c("merge_null_non_array", { merge: null });
c("merge_empty_arrays", { merge: [[], []] });
c("merge_empty_inner_array", { merge: [[[]]] });
c("merge_var", { merge: [{ var: "a" }, { var: "b" }] }, { a: [1], b: 2 });
c("merge_missing_var", { merge: [{ var: "a" }, { var: "nope" }] }, { a: [1] });
c("merge_object", { merge: [{ var: "o" }, 1] }, { o: { k: 1 } });
c("merge_bools", { merge: [true, [false]] });
c("merge_strings_not_split", { merge: ["ab", ["cd"]] });

// =============================================================================================
// in
c("in_substring", { in: ["Spring", "Springfield"] });
c("in_substring_absent", { in: ["i", "team"] });
c("in_substring_case", { in: ["spring", "Springfield"] });
c("in_empty_substring", { in: ["", "abc"] });
c("in_empty_in_empty", { in: ["", ""] });
c("in_number_in_string", { in: [1, "a1b"] });
c("in_float_in_string", { in: [1.5, "x1.5"] });
c("in_null_in_string", { in: [null, "nullable"] });
c("in_bool_in_string", { in: [true, "is true"] });
c("in_array_in_string", { in: [[1, 2], "a1,2b"] });
c("in_array_literal", { in: ["b", ["a", "b"]] });
c("in_array_absent", { in: ["c", ["a", "b"]] });
c("in_array_strict_num_vs_str", { in: [1, ["1"]] });
c("in_array_strict_str_vs_num", { in: ["1", [1]] });
c("in_array_number", { in: [1, [1, 2]] });
c("in_array_float_int", { in: [R("1.0"), [1]] });
c("in_array_null", { in: [null, [null]] });
c("in_array_null_absent", { in: [null, [0, ""]] });
c("in_array_bool", { in: [true, [1, true]] });
c("in_array_bool_strict", { in: [true, [1]] });
c("in_array_empty", { in: ["a", []] });
c("in_array_distinct_arrays", { in: [[1], [[1]]] });
c("in_array_nan", { in: [{ "/": [0, 0] }, [{ "/": [0, 0] }]] });
c("in_array_neg_zero", { in: [{ "-": [0] }, [0]] });
c("in_array_from_var", { in: [{ var: "x" }, { var: "list" }] }, { x: "b", list: ["a", "b"] });
c("in_array_nested_not_deep", { in: ["a", [["a"]]] });
c("in_number_haystack", { in: [1, 123] });
c("in_bool_haystack", { in: [true, true] });
c("in_null_haystack", { in: ["a", null] });
c("in_object_haystack", { in: ["a", { var: "o" }] }, { o: { a: 1 } });
c("in_empty_object_literal_haystack", { in: ["a", {}] });
c("in_missing_haystack", { in: ["a"] });
c("in_zero_args", { in: [] });
c("in_missing_var_haystack", { in: ["a", { var: "nope" }] }, {});
c("in_null_in_null", { in: [null, null] });
c("in_unicode_substring", { in: ["é", "café"] });

// =============================================================================================
// cat (JS String() of each argument; null -> "", arrays -> comma join)
c("cat_strings", { cat: ["I love", " pie"] });
c("cat_with_var", { cat: ["I love ", { var: "filling" }, " pie"] }, { filling: "apple", temp: 110 });
c("cat_empty", { cat: [] });
c("cat_single_non_array", { cat: "abc" });
c("cat_single_number_non_array", { cat: 5 });
c("cat_int", { cat: [1, 2] });
c("cat_float_1_0", { cat: [R("1.0")] });
c("cat_float_1_5", { cat: [1.5] });
c("cat_float_2_50", { cat: [R("2.50")] });
c("cat_1e21", { cat: [R("1e21")] });
c("cat_1e20", { cat: [R("1e20")] });
c("cat_999999999999999900000", { cat: [R("999999999999999900000")] });
c("cat_big_integer_literal", { cat: [R("123456789012345680000")] });
c("cat_1_23e22", { cat: [R("123e20")] });
c("cat_neg_1e21", { cat: [R("-1e21")] });
c("cat_1e300", { cat: [R("1e300")] });
c("cat_max_double", { cat: [R("1.7976931348623157e308")] });
c("cat_min_subnormal", { cat: [R("5e-324")] });
c("cat_1e_minus_7", { cat: [R("1e-7")] });
c("cat_neg_1e_minus_7", { cat: [R("-1e-7")] });
c("cat_1e_minus_6", { cat: [R("1e-6")] });
c("cat_1_5e_minus_7", { cat: [R("1.5e-7")] });
c("cat_0_0000123", { cat: [R("0.0000123")] });
c("cat_0_1", { cat: [0.1] });
c("cat_neg_float", { cat: [-2.75] });
c("cat_neg_zero_literal", { cat: [R("-0.0")] });
c("cat_neg_zero_int_literal", { cat: [R("-0")] });
c("cat_neg_zero_computed", { cat: [{ "-": [0] }] });
c("cat_neg_zero_mul", { cat: [{ "*": [-1, 0] }] });
c("cat_2_pow_53", { cat: [R("9007199254740992")] });
c("cat_2_pow_53_plus_1_literal", { cat: [R("9007199254740993")] });
c("cat_int64_max_literal", { cat: [R("9223372036854775807")] });
c("cat_large_integer_exact", { cat: [R("4294967296")] });
c("cat_exp_literal_integer", { cat: [R("1e2")] });
c("cat_exp_upper_literal", { cat: [R("2.5E3")] });
c("cat_one_third", { cat: [{ "/": [1, 3] }] });
c("cat_two_thirds", { cat: [{ "/": [2, 3] }] });
c("cat_point_one_plus_point_two", { cat: [{ "+": [0.1, 0.2] }] });
c("cat_float_product", { cat: [{ "*": [1.1, 1.1] }] });
c("cat_computed_large", { cat: [{ "*": [1e11, 1e11] }] });
c("cat_computed_small", { cat: [{ "/": [1, 1e7] }] });
c("cat_computed_integer_from_floats", { cat: [{ "+": [0.5, 0.5] }] });
c("cat_nan", { cat: [{ "/": [0, 0] }] });
c("cat_infinity", { cat: [{ "/": [1, 0] }] });
c("cat_neg_infinity", { cat: [{ "/": [-1, 0] }] });
c("cat_null", { cat: ["a", null, "b"] });
c("cat_only_null", { cat: [null] });
c("cat_booleans", { cat: [true, "/", false] });
c("cat_array", { cat: [[1, 2]] });
c("cat_nested_array", { cat: [[1, [2, [3]]], "x"] });
c("cat_array_with_null", { cat: [[1, null, 2]] });
c("cat_array_of_null", { cat: [[null]] });
c("cat_empty_array", { cat: ["a", [], "b"] });
c("cat_array_of_bools_floats", { cat: [[true, 1.5, "s"]] });
c("cat_array_with_computed", { cat: [[{ "/": [1, 3] }, { "/": [0, 0] }]] });
c("cat_missing_var", { cat: ["x", { var: "nope" }, "y"] }, {});
c("cat_empty_strings", { cat: ["", ""] });
c("cat_unicode", { cat: ["caf", "é", " ☕"] });
c("cat_number_from_var", { cat: [{ var: "n" }] }, { n: 2.5 });
c("cat_and_undefined", { cat: ["a", { and: [] }, "b"] });
c("cat_if_null", { cat: ["a", { if: [] }] });

// =============================================================================================
// substr (JS String.prototype.substr; negative length emulates PHP)
c("substr_start", { substr: ["jsonlogic", 4] });
c("substr_negative_start", { substr: ["jsonlogic", -5] });
c("substr_start_length", { substr: ["jsonlogic", 1, 3] });
c("substr_negative_length", { substr: ["jsonlogic", 4, -2] });
c("substr_negative_start_negative_length", { substr: ["jsonlogic", -5, -2] });
c("substr_negative_start_positive_length", { substr: ["jsonlogic", -5, 2] });
c("substr_start_beyond", { substr: ["abc", 10] });
c("substr_start_at_end", { substr: ["abc", 3] });
c("substr_negative_start_beyond", { substr: ["abc", -10] });
c("substr_negative_start_beyond_length", { substr: ["abc", -10, 2] });
c("substr_length_beyond", { substr: ["abc", 1, 100] });
c("substr_negative_length_beyond", { substr: ["abc", 0, -10] });
c("substr_negative_length_exact", { substr: ["abc", 0, -3] });
c("substr_zero_length", { substr: ["abc", 1, 0] });
c("substr_zero_start", { substr: ["abc", 0] });
c("substr_no_start", { substr: ["abc"] });
c("substr_non_array_arg", { substr: "abc" });
c("substr_no_args", { substr: [] });
c("substr_null_source", { substr: [null, 0] });
c("substr_number_source", { substr: [12345, 1, 2] });
c("substr_float_source", { substr: [1.5, 1] });
c("substr_float_source_1_0", { substr: [R("1.0"), 0] });
c("substr_bool_source", { substr: [true, 0, 2] });
c("substr_array_source", { substr: [[1, 2], 1] });
c("substr_computed_number_source", { substr: [{ "/": [1, 3] }, 0, 4] });
c("substr_float_start", { substr: ["abcdef", 1.7] });
c("substr_float_length", { substr: ["abcdef", 1, 2.9] });
c("substr_negative_float_start", { substr: ["abcdef", -1.5] });
c("substr_string_start", { substr: ["abcdef", "2"] });
c("substr_string_length", { substr: ["abcdef", 0, "2"] });
c("substr_non_numeric_start", { substr: ["abcdef", "x"] });
c("substr_null_start", { substr: ["abcdef", null] });
c("substr_null_length", { substr: ["abcdef", 1, null] });
c("substr_bool_length", { substr: ["abcdef", 1, true] });
c("substr_string_negative_length_quirk", { substr: ["abcdef", 0, "-1"] });
c("substr_nan_start", { substr: ["abcdef", { "/": [0, 0] }] });
c("substr_infinite_length", { substr: ["abcdef", 2, { "/": [1, 0] }] });
c("substr_neg_infinite_length", { substr: ["abcdef", 2, { "/": [-1, 0] }] });
c("substr_empty_string", { substr: ["", 0, 1] });
c("substr_var", { substr: [{ var: "s" }, 0, 3] }, { s: "flagd-rocks" });
c("substr_bmp_unicode", { substr: ["héllo", 1, 1] });
c("substr_bmp_unicode_negative", { substr: ["héllo", -4, -2] });
c("substr_extra_args_ignored", { substr: ["abcdef", 1, 2, 3] });

// =============================================================================================
// Nested combinations
c("nested_if_and_or_var",
  { if: [{ and: [{ ">=": [{ var: "age" }, 18] }, { or: [{ "==": [{ var: "country" }, "NL"] }, { "==": [{ var: "country" }, "BE"] }] }] }, "eligible", "not"] },
  { age: 20, country: "BE" });
c("nested_if_and_or_var_fail",
  { if: [{ and: [{ ">=": [{ var: "age" }, 18] }, { or: [{ "==": [{ var: "country" }, "NL"] }, { "==": [{ var: "country" }, "BE"] }] }] }, "eligible", "not"] },
  { age: 20, country: "DE" });
c("nested_if_and_or_var_missing",
  { if: [{ and: [{ ">=": [{ var: "age" }, 18] }, { or: [{ "==": [{ var: "country" }, "NL"] }, { "==": [{ var: "country" }, "BE"] }] }] }, "eligible", "not"] },
  {});
c("nested_in_email_domain", { in: ["@example.com", { var: "email" }] }, { email: "joe@example.com" });
c("nested_in_list_var", { if: [{ in: [{ var: "user.id" }, ["u1", "u2"]] }, "on", "off"] }, { user: { id: "u2" } });
c("nested_pie_temp", { and: [{ "<": [{ var: "temp" }, 110] }, { "==": [{ var: "pie.filling" }, "apple"] }] }, { temp: 100, pie: { filling: "apple" } });
c("nested_arith_chain", { "+": [{ "*": [2, { "-": [10, 4] }] }, { "/": [9, 3] }, { "%": [10, 4] }] });
c("nested_max_of_map_array_not_spread", { max: { map: [[1, 5, 3], { "*": [{ var: "" }, 2] }] } });
c("nested_merge_map_filter", { merge: [{ map: [[1, 2], { "+": [{ var: "" }, 1] }] }, { filter: [[1, 2, 3], { ">": [{ var: "" }, 2] }] }] });
c("nested_cat_substr_var", { cat: [{ substr: [{ var: "first" }, 0, 1] }, ". ", { var: "last" }] }, { first: "John", last: "Doe" });
c("nested_var_path_from_cat", { var: { cat: ["a.", { var: "k" }] } }, { k: "b", a: { b: "dyn" } });
c("nested_var_index_from_arith", { var: { "+": [{ var: "i" }, 1] } }, { i: 0, 0: "zero", 1: "one" });
c("nested_missing_with_or_default", { or: [{ missing: ["a", "b"] }, "all present"] }, { a: 1, b: 2 });
c("nested_missing_nonempty", { or: [{ missing: ["a", "b"] }, "all present"] }, { a: 1 });
c("nested_not_missing", { "!": { missing: ["a"] } }, { a: 1 });
c("nested_if_in_array_literal", [{ if: [true, "a", "b"] }, { if: [false, "a", "b"] }]);
c("nested_reduce_over_filter", { reduce: [{ filter: [{ var: "xs" }, { ">": [{ var: "" }, 0] }] }, { "+": [{ var: "accumulator" }, { var: "current" }] }, 0] }, { xs: [-1, 2, -3, 4] });
c("nested_some_in", { some: [{ var: "tags" }, { in: [{ var: "" }, ["beta", "internal"]] }] }, { tags: ["public", "beta"] });
c("nested_all_between", { all: [{ var: "xs" }, { "<=": [0, { var: "" }, 10] }] }, { xs: [0, 5, 10] });
c("nested_none_eq", { none: [{ var: "xs" }, { "===": [{ var: "" }, "1"] }] }, { xs: [1, 2] });
c("nested_ternary_equality_chain", { "?:": [{ "==": [{ var: "a" }, 0] }, "zeroish", "other"] }, { a: "" });
c("nested_and_returns_var_value", { and: [{ var: "a" }, { var: "b" }, { var: "c" }] }, { a: 1, b: [], c: 3 });
c("nested_or_returns_data_array", { or: [{ var: "a" }, { var: "b" }] }, { a: [], b: [1, 2] });
c("nested_cat_of_map", { cat: { map: [[1, 2, 3], { "*": [{ var: "" }, 1.5] }] } });
c("nested_array_literal_with_ops", [{ "+": [1, 2] }, { cat: ["a", "b"] }, [{ var: "x" }]], { x: null });
c("nested_if_condition_literal_array_truthy", { if: [[{ var: "nope" }], "t", "f"] }, {});
c("nested_if_empty_merge_falsy", { if: [{ merge: [] }, "t", "f"] });
c("nested_double_negation_chain", { "!!": { "!": { "!!": [[]] } } });
c("nested_comparison_of_cats", { "<": [{ cat: ["1", "0"] }, { cat: ["9"] }] });
c("nested_comparison_of_sums", { "<": [{ "+": ["1", "0"] }, { "+": ["9"] }] });
c("nested_substr_of_cat_number", { substr: [{ cat: [{ "/": [1, 3] }] }, 0, 5] });
c("nested_in_of_cat", { in: ["3", { cat: [1, 2, 3] }] });
c("nested_cat_of_missing_joins_with_commas", { "==": [{ cat: { missing: ["a", "b", "c"] } }, "bc"] }, { a: 1 });
c("nested_min_max", { min: [{ max: [1, 9] }, { max: [3, 4] }] });
c("nested_map_if", { map: [[1, 2, 3, 4], { if: [{ "%": [{ var: "" }, 2] }, "odd", "even"] }] });
c("nested_filter_missing_data_field", { filter: [{ var: "xs" }, { var: "on" }] }, { xs: [{ on: true, id: 1 }, { id: 2 }, { on: 0, id: 3 }, { on: "y", id: 4 }] });

// =============================================================================================
// Output: custom serializer (one case per line, specials encoded, Raw inputs kept verbatim).
function isJsonSafe(v) {
  if (v instanceof Raw) return true;
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0);
  if (Array.isArray(v)) return v.every(isJsonSafe);
  if (typeof v === "object") {
    return Object.keys(v).every((k) => k !== "$special" && isJsonSafe(v[k]));
  }
  return false;
}

function unraw(v) {
  if (v instanceof Raw) return v.value;
  if (Array.isArray(v)) return v.map(unraw);
  if (v !== null && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = unraw(v[k]);
    return o;
  }
  return v;
}

const special = (s) => `{"$special": ${JSON.stringify(s)}}`;

function ser(v) {
  if (v instanceof Raw) return v.text;
  if (v === undefined) return special("undefined");
  if (v === null) return "null";
  switch (typeof v) {
    case "number":
      if (Number.isNaN(v)) return special("NaN");
      if (v === Infinity) return special("Infinity");
      if (v === -Infinity) return special("-Infinity");
      return JSON.stringify(v); // -0 -> "0"
    case "string":
    case "boolean":
      return JSON.stringify(v);
    case "object":
      if (Array.isArray(v)) {
        const parts = [];
        for (let i = 0; i < v.length; i++) parts.push(ser(v[i])); // holes -> undefined
        return `[${parts.join(", ")}]`;
      }
      return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}: ${ser(v[k])}`).join(", ")}}`;
    default:
      throw new Error(`cannot serialise ${typeof v}`);
  }
}

function decodeSpecials(v) {
  if (Array.isArray(v)) return v.map(decodeSpecials);
  if (v !== null && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$special") {
      return { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, undefined: undefined }[v.$special];
    }
    const o = {};
    for (const k of keys) o[k] = decodeSpecials(v[k]);
    return o;
  }
  return v;
}

function sameValue(a, b) {
  // SameValue, except that -0 and 0 are equal (the fixture does not record the sign of zero).
  if (typeof a === "number" && typeof b === "number") return a === b || (Number.isNaN(a) && Number.isNaN(b));
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && sameValue(a[k], b[k]));
  }
  return a === b;
}

function run(jsonLogic, logic, data) {
  try {
    return { result: jsonLogic.apply(logic, data) };
  } catch (e) {
    return { throws: true };
  }
}

function main() {
  const jsonLogic = loadJsonLogic();
  const names = new Set();
  const lines = [];
  for (const cs of cases) {
    if (names.has(cs.name)) throw new Error(`duplicate case name ${cs.name}`);
    names.add(cs.name);
    if (!isJsonSafe(cs.logic) || !isJsonSafe(cs.data)) {
      throw new Error(`case ${cs.name}: input is not representable in JSON`);
    }
    const out = run(jsonLogic, unraw(cs.logic), unraw(cs.data));
    let line = `{"name": ${JSON.stringify(cs.name)}, "logic": ${ser(cs.logic)}, "data": ${ser(cs.data)}, `;
    line += out.throws ? `"throws": true}` : `"result": ${ser(out.result)}}`;
    lines.push(line);
  }
  const text = `[\n${lines.map((l) => " " + l).join(",\n")}\n]\n`;

  // Self-check: the written fixture, parsed back, must reproduce json-logic-js exactly.
  const parsed = JSON.parse(text);
  if (parsed.length !== cases.length) throw new Error("self-check: case count mismatch");
  for (const p of parsed) {
    const again = run(jsonLogic, p.logic, p.data);
    if (p.throws) {
      if (!again.throws) throw new Error(`self-check: ${p.name} no longer throws`);
    } else if (again.throws || !sameValue(again.result, decodeSpecials(p.result))) {
      throw new Error(`self-check: ${p.name} does not round-trip`);
    }
  }
  if (cases.length < 400) throw new Error(`only ${cases.length} cases`);
  process.stderr.write(`${cases.length} cases\n`);
  process.stdout.write(text);
}

main();
