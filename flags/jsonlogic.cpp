#include "flags/jsonlogic.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <unordered_map>

#include "flags/murmur3.hpp"

namespace fledge::flags {
namespace {

constexpr int kMaxRefDepth = 32;
constexpr std::uint64_t kMaxTotalWeight = 2147483647;

struct OpInfo {
  Op op;
  int min_args;
  int max_args;  // -1: any
};

const std::unordered_map<std::string_view, OpInfo>& opTable() {
  static const std::unordered_map<std::string_view, OpInfo> t = {
      {"var", {Op::kVar, 0, 2}},        {"missing", {Op::kMissing, 0, -1}},
      {"missing_some", {Op::kMissingSome, 2, 2}}, {"if", {Op::kIf, 0, -1}},
      {"?:", {Op::kIf, 0, -1}},         {"==", {Op::kEq, 0, 2}},
      {"===", {Op::kStrictEq, 0, 2}},   {"!=", {Op::kNe, 0, 2}},
      {"!==", {Op::kStrictNe, 0, 2}},   {"!", {Op::kNot, 0, 1}},
      {"!!", {Op::kNotNot, 0, 1}},      {"or", {Op::kOr, 0, -1}},
      {"and", {Op::kAnd, 0, -1}},       {"<", {Op::kLt, 0, 3}},
      {"<=", {Op::kLe, 0, 3}},          {">", {Op::kGt, 0, 2}},
      {">=", {Op::kGe, 0, 2}},          {"max", {Op::kMax, 0, -1}},
      {"min", {Op::kMin, 0, -1}},       {"+", {Op::kAdd, 0, -1}},
      {"-", {Op::kSub, 0, 2}},          {"*", {Op::kMul, 0, -1}},
      {"/", {Op::kDiv, 0, 2}},          {"%", {Op::kMod, 0, 2}},
      {"map", {Op::kMap, 0, 2}},        {"filter", {Op::kFilter, 0, 2}},
      {"reduce", {Op::kReduce, 0, 3}},  {"all", {Op::kAll, 0, 2}},
      {"none", {Op::kNone, 0, 2}},      {"some", {Op::kSome, 0, 2}},
      {"merge", {Op::kMerge, 0, -1}},   {"in", {Op::kIn, 0, 2}},
      {"cat", {Op::kCat, 0, -1}},       {"substr", {Op::kSubstr, 0, 3}},
      {"fractional", {Op::kFractional, 1, -1}}, {"sem_ver", {Op::kSemVer, 3, 3}},
      {"starts_with", {Op::kStartsWith, 2, 2}}, {"ends_with", {Op::kEndsWith, 2, 2}},
  };
  return t;
}

// Operators whose result depends on the evaluation context, or that must not run at compile time.
bool foldable(Op op) {
  switch (op) {
    case Op::kVar: case Op::kFlagKey: case Op::kTimestamp: case Op::kMissing: case Op::kMissingSome:
    case Op::kFractional:
      return false;
    default:
      return true;
  }
}

Value copyInto(const Value& v, Arena& arena) {
  switch (v.type) {
    case Type::kString: return Value::string(arena.copy(v.sv()));
    case Type::kArray: {
      Value* items = arena.allocArray<Value>(v.size);
      for (std::uint32_t i = 0; i < v.size; ++i) items[i] = copyInto(v.arr[i], arena);
      return Value::array(items, v.size);
    }
    case Type::kObject: {
      Member* m = arena.allocArray<Member>(v.size);
      for (std::uint32_t i = 0; i < v.size; ++i) m[i] = Member{arena.copy(v.obj[i].key), copyInto(v.obj[i].value, arena)};
      return Value::object(m, v.size);
    }
    default: return v;
  }
}

}  // namespace

namespace {

// Reads one bucket entry [variant, weight?] the way flagd-core's toBucketingList does.
bool readBucket(const Value& e, Value& variant, std::uint64_t& weight) {
  if (!e.isArray() || e.size == 0 || e.size > 2) return false;
  const Value& v = e.arr[0];
  if (v.type == Type::kArray || v.type == Type::kObject) return false;
  variant = v;
  weight = 1;
  if (e.size == 2) {
    const Value& w = e.arr[1];
    if (!w.isNumber() || std::floor(w.num) != w.num || std::isinf(w.num)) return false;
    weight = w.num < 0 ? 0 : static_cast<std::uint64_t>(std::min(w.num, 1e18));
  }
  return true;
}

void buildPlan(const Value* entries, std::size_t n, FractionalPlan& plan) {
  for (std::size_t i = 0; i < n; ++i) {
    Value variant;
    std::uint64_t w;
    if (!readBucket(entries[i], variant, w)) {
      plan.valid = false;
      return;
    }
    plan.variants.push_back(variant);
    plan.weights.push_back(w);
    plan.total += w;
  }
  if (plan.total > kMaxTotalWeight) plan.valid = false;
}

bool compileNode(const Value& logic, const Evaluators& evaluators, ConstPool& pool, const std::string& path, Node& out,
                 std::vector<LogicError>& errors, int depth);

// After compiling an operator, replace it by its value when every operand is a constant.
void finalize(Node& n);

void fold(Node& n, ConstPool& pool) {
  if (!foldable(n.op)) return;
  for (const auto& a : n.args)
    if (a.op != Op::kLiteral) return;
  finalize(n);
  Arena scratch;
  EvalState st;
  Value empty = Value::object(nullptr, 0);
  st.root = &empty;
  st.arena = &scratch;
  Value v = evaluate(n, st);
  n.literal = copyInto(v, pool.arena());
  n.op = Op::kLiteral;
  n.args.clear();
}

bool compileOperator(std::string_view name, const Value& operand, const Evaluators& evaluators, ConstPool& pool,
                     const std::string& path, Node& out, std::vector<LogicError>& errors, int depth) {
  if (name == "$ref") {
    if (!operand.isString()) {
      errors.push_back({path + ".$ref", "must be the name of an evaluator"});
      return false;
    }
    const Value* target = evaluators.find(operand.sv());
    if (!target) {
      errors.push_back({path + ".$ref", "unknown evaluator \"" + std::string(operand.sv()) + "\""});
      return false;
    }
    if (depth > kMaxRefDepth) {
      errors.push_back({path + ".$ref", "evaluator references nest too deeply (a cycle?)"});
      return false;
    }
    return compileNode(*target, evaluators, pool, "$evaluators." + std::string(operand.sv()), out, errors, depth + 1);
  }
  auto it = opTable().find(name);
  if (it == opTable().end()) {
    errors.push_back({path, "unknown operator \"" + std::string(name) + "\""});
    return false;
  }
  const OpInfo info = it->second;
  // A non-array operand is a single argument: {"var": "a"} == {"var": ["a"]}.
  const Value* items = operand.isArray() ? operand.arr : &operand;
  std::size_t n = operand.isArray() ? operand.size : 1;
  std::string sub = path + "." + std::string(name);
  if (static_cast<int>(n) < info.min_args || (info.max_args >= 0 && static_cast<int>(n) > info.max_args)) {
    const std::string count = info.max_args < 0               ? "at least " + std::to_string(info.min_args)
                              : info.min_args == info.max_args ? std::to_string(info.min_args)
                                                               : std::to_string(info.min_args) + " to " + std::to_string(info.max_args);
    // flagd's own operators answer null to a wrong argument count when evaluated (flagd-testbed's
    // @operator-errors): the node is that null, and the error says so.
    const bool yields_null = info.op == Op::kStartsWith || info.op == Op::kEndsWith || info.op == Op::kSemVer;
    errors.push_back({sub, "takes " + count + " arguments, got " + std::to_string(n) + (yields_null ? " (evaluates to null)" : ""),
                      yields_null});
    if (!yields_null) return false;
    out = Node();
    out.op = Op::kLiteral;
    return true;
  }
  out.op = info.op;
  out.args.resize(n);
  bool ok = true;
  for (std::size_t i = 0; i < n; ++i)
    ok &= compileNode(items[i], evaluators, pool, operand.isArray() ? sub + "[" + std::to_string(i) + "]" : sub,
                      out.args[i], errors, depth);
  if (!ok) return false;

  if (out.op == Op::kVar && (n == 0 || out.args[0].op == Op::kLiteral)) {
    Value p = n == 0 ? Value() : out.args[0].literal;
    std::string_view ps;
    std::string tmp;
    if (p.isNull() || (p.isString() && p.size == 0) || (p.isArray() && p.size == 0)) {
      out.whole_data = true;
    } else {
      if (p.isString()) {
        ps = p.sv();
      } else {
        appendJsString(tmp, p);
        ps = pool.arena().copy(tmp);
      }
      if (ps == "$flagd.flagKey") {
        out.op = Op::kFlagKey;
      } else if (ps == "$flagd.timestamp") {
        out.op = Op::kTimestamp;
      } else {
        std::size_t start = 0;
        for (;;) {
          auto dot = ps.find('.', start);
          out.path.push_back(ps.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
          if (dot == std::string_view::npos) break;
          start = dot + 1;
        }
      }
    }
    return true;
  }
  if (out.op == Op::kFractional) {
    // Precompute the bucket list when it is constant (the usual case).
    std::size_t first = out.args[0].op == Op::kLiteral && out.args[0].literal.isArray() ? 0 : 1;
    bool constant = true;
    for (std::size_t i = first; i < n; ++i) constant &= out.args[i].op == Op::kLiteral;
    if (constant && (first == 0 || n > 1)) {
      auto plan = std::make_shared<FractionalPlan>();
      std::vector<Value> entries;
      for (std::size_t i = first; i < n; ++i) entries.push_back(out.args[i].literal);
      buildPlan(entries.data(), entries.size(), *plan);
      out.fractional = std::move(plan);
    }
    return true;
  }
  fold(out, pool);
  return true;
}

bool compileNode(const Value& logic, const Evaluators& evaluators, ConstPool& pool, const std::string& path, Node& out,
                 std::vector<LogicError>& errors, int depth) {
  if (logic.isObject() && logic.size == 1)
    return compileOperator(logic.obj[0].key, logic.obj[0].value, evaluators, pool, path, out, errors, depth);
  if (logic.isArray()) {
    out.op = Op::kArray;
    out.args.resize(logic.size);
    bool ok = true;
    bool constant = true;
    for (std::uint32_t i = 0; i < logic.size; ++i) {
      ok &= compileNode(logic.arr[i], evaluators, pool, path + "[" + std::to_string(i) + "]", out.args[i], errors, depth);
      constant &= out.args[i].op == Op::kLiteral;
    }
    if (ok && constant) {
      Value* items = pool.arena().allocArray<Value>(logic.size);
      for (std::uint32_t i = 0; i < logic.size; ++i) items[i] = out.args[i].literal;
      out.op = Op::kLiteral;
      out.literal = Value::array(items, logic.size);
      out.args.clear();
    }
    return ok;
  }
  out.op = Op::kLiteral;  // scalars and multi-key objects are data
  out.literal = copyInto(logic, pool.arena());
  return true;
}

// ---------------------------------------------------------------------------------------------
// Evaluation

Value eval(const Node& n, const Value& data, EvalState& st);

const Value kNull;

template <typename Segments>
Value resolvePath(const Value& data, const Segments& segs, const Value& not_found, EvalState& st);

// Operands are mostly constants and plain `var`s: resolve those without a dispatch.
inline Value ev(const Node& c, const Value& data, EvalState& st) {
  if (c.op == Op::kLiteral) return c.literal;
  return c.fn(c, data, st);
}

Value flagdObject(EvalState& st) {
  Member* m = st.arena->allocArray<Member>(2);
  m[0] = Member{"flagKey", Value::string(st.flag_key)};
  m[1] = Member{"timestamp", Value::number(static_cast<double>(st.timestamp))};
  return Value::object(m, 2);
}

// One step of a var path: an object member or an array index; nullptr when absent.
const Value* step(const Value& cur, std::string_view seg) {
  if (cur.isObject()) return cur.get(seg);
  if (cur.isArray()) {
    std::size_t idx = 0;
    auto [p, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), idx);
    if (ec != std::errc{} || p != seg.data() + seg.size() || idx >= cur.size) return nullptr;
    return &cur.arr[idx];
  }
  return nullptr;
}

// json-logic-js var: walks the path; a missing step yields the default (or null).
template <typename Segments>
Value resolvePath(const Value& data, const Segments& segs, const Value& not_found, EvalState& st) {
  const Value* cur = &data;
  Value flagd;
  bool first = true;
  for (std::string_view seg : segs) {
    if (cur->isNull()) return not_found;
    const Value* next = step(*cur, seg);
    if (!next && first && &data == st.root && seg == "$flagd") {
      flagd = flagdObject(st);
      next = &flagd;
    }
    if (!next) return not_found;
    cur = next;
    first = false;
  }
  return *cur;
}

struct DynamicSegments {
  std::string_view s;
  struct It {
    std::string_view rest;
    bool done;
    std::string_view operator*() const { return rest.substr(0, rest.find('.')); }
    It& operator++() {
      auto dot = rest.find('.');
      if (dot == std::string_view::npos) done = true;
      else rest = rest.substr(dot + 1);
      return *this;
    }
    bool operator!=(const It& o) const { return done != o.done; }
  };
  It begin() const { return It{s, false}; }
  It end() const { return It{{}, true}; }
};

Value varDynamic(const Value& key, const Value& data, const Value& not_found, EvalState& st) {
  if (key.isNull() || (key.isString() && key.size == 0)) return data;
  std::string_view ks;
  std::string tmp;
  if (key.isString()) {
    ks = key.sv();
  } else {
    appendJsString(tmp, key);
    ks = st.arena->copy(tmp);
  }
  return resolvePath(data, DynamicSegments{ks}, not_found, st);
}

Value stringValue(std::string&& s, EvalState& st) { return Value::string(st.arena->copy(s)); }

// JavaScript's abstract relational comparison: `a < b` (strict) or `a <= b`.
bool jsLess(const Value& a, const Value& b, bool or_equal) {
  if (a.isNumber() && b.isNumber()) return or_equal ? a.num <= b.num : a.num < b.num;  // NaN: false
  if (a.isString() && b.isString()) return or_equal ? !(b.sv() < a.sv()) : a.sv() < b.sv();
  if ((a.isNumber() || a.isString() || a.isNull() || a.type == Type::kBool) &&
      (b.isNumber() || b.isString() || b.isNull() || b.type == Type::kBool)) {
    double x = toNumber(a), y = toNumber(b);
    if (std::isnan(x) || std::isnan(y)) return false;
    return or_equal ? x <= y : x < y;
  }
  auto prim = [](const Value& v, std::string& buf) -> Value {
    if (v.isArray() || v.isObject()) {
      appendJsString(buf, v);
      return Value::string(buf);
    }
    return v;
  };
  std::string ba, bb;
  Value pa = prim(a, ba), pb = prim(b, bb);
  if (pa.isString() && pb.isString()) return or_equal ? !(pb.sv() < pa.sv()) : pa.sv() < pb.sv();
  double x = toNumber(pa), y = toNumber(pb);
  if (std::isnan(x) || std::isnan(y)) return false;
  return or_equal ? x <= y : x < y;
}

double toInteger(double d) {
  if (std::isnan(d)) return 0;
  return std::trunc(d);
}

Value substrJs(const Value& src, const Value* start_v, const Value* len_v, EvalState& st) {
  std::string buf;
  std::string_view s;
  if (src.isString()) {
    s = src.sv();
  } else {
    appendJsString(buf, src);
    s = buf;
  }
  // JavaScript counts UTF-16 code units; map unit positions to UTF-8 byte offsets when the
  // string is not plain ASCII (a 4-byte sequence is two units, as a surrogate pair).
  auto sub = [](std::string_view str, double start, const double* length) {
    std::vector<std::size_t> offsets;
    bool ascii = std::all_of(str.begin(), str.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (!ascii) {
      for (std::size_t i = 0; i < str.size();) {
        unsigned char c = static_cast<unsigned char>(str[i]);
        std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        offsets.push_back(i);
        if (len == 4) offsets.push_back(i);
        i += len;
      }
      offsets.push_back(str.size());
    }
    double size = ascii ? static_cast<double>(str.size()) : static_cast<double>(offsets.size() - 1);
    double from = start < 0 ? std::max(size + start, 0.0) : std::min(start, size);
    double len = length ? std::clamp(*length, 0.0, size - from) : size - from;
    auto f = static_cast<std::size_t>(from), l = static_cast<std::size_t>(len);
    if (ascii) return str.substr(f, l);
    return str.substr(offsets[f], offsets[f + l] - offsets[f]);
  };
  double start = start_v ? toInteger(toNumber(*start_v)) : 0;
  std::string_view out;
  if (len_v && toNumber(*len_v) < 0) {
    // json-logic-js computes `temp.length + end`: with a string `end` that concatenates, and the
    // resulting non-number length selects nothing.
    if (len_v->isString()) return Value::string({});
    std::string_view tmp = sub(s, start, nullptr);
    double units = 0;  // UTF-16 length of tmp
    for (unsigned char c : tmp) units += (c & 0xC0) == 0x80 ? 0 : c >= 0xF0 ? 2 : 1;
    double keep = units + toInteger(toNumber(*len_v));
    out = sub(tmp, 0, &keep);
  } else if (len_v) {
    double l = toInteger(toNumber(*len_v));
    out = sub(s, start, &l);
  } else {
    out = sub(s, start, nullptr);
  }
  // Views into a string source stay valid; others were formatted into `buf`.
  return src.isString() ? Value::string(out) : Value::string(st.arena->copy(out));
}

// flagd's fractional: an optional leading string is the bucketing key, otherwise the key is
// flagKey + targetingKey; every other operand is a [variant, weight?] bucket.
Value fractionalEval(const Node& n, const Value& data, EvalState& st) {
  const bool first_is_bucket = n.args[0].op == Op::kLiteral && n.args[0].literal.isArray();
  Value first_val, key;
  std::size_t first_entry = 0;
  if (!first_is_bucket) {
    first_val = eval(n.args[0], data, st);
    if (first_val.isString()) {
      key = first_val;
      first_entry = 1;
    }
  }
  // The compiled plan covers operands from index (first_is_bucket ? 0 : 1).
  const FractionalPlan* plan = n.fractional.get();
  FractionalPlan dynamic;
  if (!plan || (!first_is_bucket && first_entry == 0)) {
    std::vector<Value> entries;
    for (std::size_t i = first_entry; i < n.args.size(); ++i)
      entries.push_back(i == 0 && !first_is_bucket ? first_val : eval(n.args[i], data, st));
    buildPlan(entries.data(), entries.size(), dynamic);
    plan = &dynamic;
  }
  if (!plan->valid || plan->variants.empty()) return Value();

  std::uint32_t h;
  if (first_entry == 1) {
    h = murmur3_x86_32(key.sv());
  } else {
    const Value* tk = st.root ? st.root->get("targetingKey") : nullptr;
    if (!tk || !truthy(*tk)) return Value();  // flagd: no targetingKey, no bucketing
    if (tk->isString()) {
      h = murmur3_x86_32(st.flag_key, tk->sv());
    } else {
      std::string s;
      appendJsString(s, *tk);
      h = murmur3_x86_32(st.flag_key, s);
    }
  }
  int idx = pickBucket(h, plan->weights.data(), plan->weights.size(), plan->total);
  return idx < 0 ? Value() : plan->variants[static_cast<std::size_t>(idx)];
}

Value evalArgsScalar(const Node& n, std::size_t i, const Value& data, EvalState& st) {
  return i < n.args.size() ? ev(n.args[i], data, st) : Value();
}

// The general evaluator: every operator, with whatever locals it needs. Kept out of line so the
// hot path below has a small frame.
[[gnu::noinline]] Value evalSlow(const Node& n, const Value& data, EvalState& st) {
  // if, and, or, !, !!, starts_with and ends_with are complete in eval() below.
  switch (n.op) {
    case Op::kLiteral: return n.literal;
    case Op::kArray: {
      Value* items = st.arena->allocArray<Value>(n.args.size());
      for (std::size_t i = 0; i < n.args.size(); ++i) items[i] = ev(n.args[i], data, st);
      return Value::array(items, n.args.size());
    }
    case Op::kFlagKey: return Value::string(st.flag_key);
    case Op::kTimestamp: return Value::number(static_cast<double>(st.timestamp));
    case Op::kVar: {
      Value not_found = n.args.size() > 1 ? ev(n.args[1], data, st) : Value();
      if (n.whole_data) return data;
      if (!n.path.empty()) return resolvePath(data, n.path, not_found, st);
      return varDynamic(ev(n.args[0], data, st), data, not_found, st);
    }
    case Op::kMissing:
    case Op::kMissingSome: {
      std::size_t need = 0;
      Value keys;
      if (n.op == Op::kMissingSome) {
        need = static_cast<std::size_t>(std::max(0.0, toNumber(ev(n.args[0], data, st))));
        keys = ev(n.args[1], data, st);
        if (!keys.isArray()) keys = Value::array(nullptr, 0);
      } else if (!n.args.empty()) {
        Value a0 = ev(n.args[0], data, st);
        if (a0.isArray()) {
          keys = a0;
        } else {
          Value* items = st.arena->allocArray<Value>(n.args.size());
          items[0] = a0;
          for (std::size_t i = 1; i < n.args.size(); ++i) items[i] = ev(n.args[i], data, st);
          keys = Value::array(items, n.args.size());
        }
      } else {
        keys = Value::array(nullptr, 0);
      }
      Value* out = st.arena->allocArray<Value>(keys.size);
      std::uint32_t m = 0;
      for (std::uint32_t i = 0; i < keys.size; ++i) {
        Value v = varDynamic(keys.arr[i], data, Value(), st);
        if (v.isNull() || (v.isString() && v.size == 0)) out[m++] = keys.arr[i];
      }
      if (n.op == Op::kMissingSome && keys.size - m >= need) return Value::array(nullptr, 0);
      return Value::array(out, m);
    }
    case Op::kEq:
    case Op::kNe:
    case Op::kStrictEq:
    case Op::kStrictNe: {
      // A missing operand is JavaScript's undefined: == treats it like null, === only matches
      // another undefined.
      Value a = evalArgsScalar(n, 0, data, st), b = evalArgsScalar(n, 1, data, st);
      bool eq;
      if (n.op == Op::kEq || n.op == Op::kNe) eq = looseEquals(a, b);
      else if (n.args.size() < 2) eq = n.args.empty();
      else eq = strictEquals(a, b);
      return Value::boolean((n.op == Op::kEq || n.op == Op::kStrictEq) ? eq : !eq);
    }
    case Op::kLt:
    case Op::kLe: {
      bool eq = n.op == Op::kLe;
      if (n.args.size() < 2) return Value::boolean(false);  // compared with undefined: NaN
      Value a = evalArgsScalar(n, 0, data, st), b = evalArgsScalar(n, 1, data, st);
      if (n.args.size() == 3) {
        Value c = ev(n.args[2], data, st);
        return Value::boolean(jsLess(a, b, eq) && jsLess(b, c, eq));
      }
      return Value::boolean(jsLess(a, b, eq));
    }
    case Op::kGt:
    case Op::kGe:
      if (n.args.size() < 2) return Value::boolean(false);
      return Value::boolean(jsLess(ev(n.args[1], data, st), ev(n.args[0], data, st), n.op == Op::kGe));
    case Op::kMax:
    case Op::kMin: {
      bool is_max = n.op == Op::kMax;
      double acc = is_max ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
      for (const auto& a : n.args) {
        double v = toNumber(eval(a, data, st));
        if (std::isnan(v)) return Value::number(v);
        acc = is_max ? std::max(acc, v) : std::min(acc, v);
      }
      return Value::number(acc);
    }
    case Op::kAdd: {
      double acc = 0;
      for (const auto& a : n.args) acc += parseFloatJs(eval(a, data, st));
      return Value::number(acc);
    }
    case Op::kMul: {
      if (n.args.empty()) return Value();  // [].reduce() throws in JavaScript
      Value first = ev(n.args[0], data, st);
      if (n.args.size() == 1) return first;  // reduce with one element returns it untouched
      double acc = parseFloatJs(first);
      for (std::size_t i = 1; i < n.args.size(); ++i) acc *= parseFloatJs(ev(n.args[i], data, st));
      return Value::number(acc);
    }
    case Op::kSub: {
      double a = toNumber(evalArgsScalar(n, 0, data, st));
      if (n.args.size() < 2) return Value::number(n.args.empty() ? std::numeric_limits<double>::quiet_NaN() : -a);
      return Value::number(a - toNumber(ev(n.args[1], data, st)));
    }
    case Op::kDiv:
    case Op::kMod: {
      // A missing operand is JavaScript's undefined, which converts to NaN (null would be 0).
      if (n.args.size() < 2) return Value::number(std::numeric_limits<double>::quiet_NaN());
      double a = toNumber(ev(n.args[0], data, st)), b = toNumber(ev(n.args[1], data, st));
      return Value::number(n.op == Op::kDiv ? a / b : std::fmod(a, b));
    }
    case Op::kMap:
    case Op::kFilter:
    case Op::kAll:
    case Op::kNone:
    case Op::kSome: {
      Value scoped = evalArgsScalar(n, 0, data, st);
      std::uint32_t len = scoped.isArray() ? scoped.size : 0;
      auto item = [&](std::uint32_t i) { return scoped.arr[i]; };
      auto test = [&](const Value& v) { return n.args.size() > 1 ? ev(n.args[1], v, st) : Value(); };
      if (n.op == Op::kAll) {
        if (len == 0) return Value::boolean(false);
        for (std::uint32_t i = 0; i < len; ++i)
          if (!truthy(test(item(i)))) return Value::boolean(false);
        return Value::boolean(true);
      }
      if (n.op == Op::kNone || n.op == Op::kSome) {
        std::uint32_t hits = 0;
        for (std::uint32_t i = 0; i < len; ++i) hits += truthy(test(item(i)));
        return Value::boolean(n.op == Op::kSome ? hits > 0 : hits == 0);
      }
      Value* out = st.arena->allocArray<Value>(len);
      std::uint32_t m = 0;
      for (std::uint32_t i = 0; i < len; ++i) {
        Value r = test(item(i));
        if (n.op == Op::kMap) out[m++] = r;
        else if (truthy(r)) out[m++] = item(i);
      }
      return Value::array(out, m);
    }
    case Op::kReduce: {
      Value scoped = evalArgsScalar(n, 0, data, st);
      Value acc = n.args.size() > 2 ? ev(n.args[2], data, st) : Value();
      if (!scoped.isArray()) return acc;
      for (std::uint32_t i = 0; i < scoped.size; ++i) {
        Member* m = st.arena->allocArray<Member>(2);
        m[0] = Member{"current", scoped.arr[i]};
        m[1] = Member{"accumulator", acc};
        Value scope = Value::object(m, 2);
        acc = n.args.size() > 1 ? ev(n.args[1], scope, st) : Value();
      }
      return acc;
    }
    case Op::kMerge: {
      std::size_t total = 0;
      Value* vals = st.arena->allocArray<Value>(n.args.size());
      for (std::size_t i = 0; i < n.args.size(); ++i) {
        vals[i] = ev(n.args[i], data, st);
        total += vals[i].isArray() ? vals[i].size : 1;
      }
      Value* out = st.arena->allocArray<Value>(total);
      std::size_t m = 0;
      for (std::size_t i = 0; i < n.args.size(); ++i) {
        if (vals[i].isArray())
          for (std::uint32_t j = 0; j < vals[i].size; ++j) out[m++] = vals[i].arr[j];
        else
          out[m++] = vals[i];
      }
      return Value::array(out, m);
    }
    case Op::kIn: {
      Value a = evalArgsScalar(n, 0, data, st), b = evalArgsScalar(n, 1, data, st);
      if (b.isArray()) {
        for (std::uint32_t i = 0; i < b.size; ++i)
          if (strictEquals(b.arr[i], a)) return Value::boolean(true);
        return Value::boolean(false);
      }
      if (!b.isString() || b.size == 0) return Value::boolean(false);
      if (a.isString()) return Value::boolean(b.sv().find(a.sv()) != std::string_view::npos);
      std::string s;
      appendJsString(s, a);
      return Value::boolean(b.sv().find(s) != std::string_view::npos);
    }
    case Op::kCat: {
      std::string s;
      for (const auto& a : n.args) {
        Value v = eval(a, data, st);
        if (!v.isNull()) appendJsString(s, v);
      }
      return stringValue(std::move(s), st);
    }
    case Op::kSubstr: {
      if (n.args.empty()) return Value::string("undefined");
      Value src = evalArgsScalar(n, 0, data, st);
      Value start = evalArgsScalar(n, 1, data, st);
      Value len = n.args.size() > 2 ? ev(n.args[2], data, st) : Value();
      return substrJs(src, n.args.size() > 1 ? &start : nullptr, n.args.size() > 2 ? &len : nullptr, st);
    }
    case Op::kFractional: return fractionalEval(n, data, st);
    case Op::kSemVer: {
      Value a = ev(n.args[0], data, st), op = ev(n.args[1], data, st), b = ev(n.args[2], data, st);
      std::string ops;
      appendJsString(ops, op);
      bool ok = false;
      bool r = semVerCompare(a, ops, b, ok);
      return ok ? Value::boolean(r) : Value();
    }
    default:  // handled by eval()
      break;
  }
  return Value();
}

// The operators targeting rules are made of, with no heap-owning locals; the rest go to evalSlow.
Value eval(const Node& n, const Value& data, EvalState& st) {
  switch (n.op) {
    case Op::kLiteral: return n.literal;
    case Op::kVar:
      if (!n.path.empty() && n.args.size() == 1) return resolvePath(data, n.path, kNull, st);
      break;
    case Op::kIf: {
      std::size_t i = 0;
      for (; i + 1 < n.args.size(); i += 2)
        if (truthy(ev(n.args[i], data, st))) return ev(n.args[i + 1], data, st);
      return i < n.args.size() ? ev(n.args[i], data, st) : Value();
    }
    case Op::kOr:
    case Op::kAnd: {
      Value cur;
      for (const auto& a : n.args) {
        cur = ev(a, data, st);
        if (truthy(cur) == (n.op == Op::kOr)) return cur;
      }
      return cur;
    }
    case Op::kNot: return Value::boolean(!truthy(evalArgsScalar(n, 0, data, st)));
    case Op::kNotNot: return Value::boolean(truthy(evalArgsScalar(n, 0, data, st)));
    case Op::kEq:
    case Op::kNe:
      if (n.args.size() == 2)
        return Value::boolean(looseEquals(ev(n.args[0], data, st), ev(n.args[1], data, st)) == (n.op == Op::kEq));
      break;
    case Op::kStrictEq:
    case Op::kStrictNe:
      if (n.args.size() == 2)
        return Value::boolean(strictEquals(ev(n.args[0], data, st), ev(n.args[1], data, st)) == (n.op == Op::kStrictEq));
      break;
    case Op::kLt:
    case Op::kLe:
      if (n.args.size() == 2) return Value::boolean(jsLess(ev(n.args[0], data, st), ev(n.args[1], data, st), n.op == Op::kLe));
      break;
    case Op::kGt:
    case Op::kGe:
      if (n.args.size() == 2) return Value::boolean(jsLess(ev(n.args[1], data, st), ev(n.args[0], data, st), n.op == Op::kGe));
      break;
    case Op::kIn:
      if (n.args.size() == 2 && n.args[1].op == Op::kLiteral && n.args[1].literal.isArray()) {
        Value a = ev(n.args[0], data, st);
        const Value& b = n.args[1].literal;
        for (std::uint32_t i = 0; i < b.size; ++i)
          if (strictEquals(b.arr[i], a)) return Value::boolean(true);
        return Value::boolean(false);
      }
      break;
    case Op::kStartsWith:
    case Op::kEndsWith: {
      Value a = ev(n.args[0], data, st), b = ev(n.args[1], data, st);
      if (!a.isString() || !b.isString()) return Value();
      std::string_view sv = a.sv(), p = b.sv();
      bool r = p.size() <= sv.size() &&
               shortEquals(n.op == Op::kStartsWith ? sv.substr(0, p.size()) : sv.substr(sv.size() - p.size()), p);
      return Value::boolean(r);
    }
    default:
      break;
  }
  return evalSlow(n, data, st);
}


// ---------------------------------------------------------------------------------------------
// Specialized evaluators for the shapes targeting rules are made of.

Value fnLiteral(const Node& n, const Value&, EvalState&) { return n.literal; }

// The general rules, out of line: the specialized evaluators below tail-call it on the rare
// shapes they do not handle, so their common path needs no stack frame of its own.
[[gnu::noinline, gnu::cold]] Value evalCold(const Node& n, const Value& data, EvalState& st) { return eval(n, data, st); }

// {"var": "plan"}: one path segment, no default.
inline const Value* var1(const Node& v, const Value& data) { return data.isObject() ? data.get(v.path[0]) : nullptr; }

Value fnVar1(const Node& n, const Value& data, EvalState& st) {
  if (const Value* v = var1(n, data)) return *v;
  return evalCold(n, data, st);  // absent, $flagd, or not an object: the general rules
}

Value fnIf(const Node& n, const Value& data, EvalState& st) {
  std::size_t i = 0;
  const std::size_t size = n.args.size();
  for (; i + 1 < size; i += 2)
    if (truthy(ev(n.args[i], data, st))) return ev(n.args[i + 1], data, st);
  return i < size ? ev(n.args[i], data, st) : Value();
}

Value fnAnd(const Node& n, const Value& data, EvalState& st) {
  Value cur;
  for (const auto& a : n.args) {
    cur = ev(a, data, st);
    if (!truthy(cur)) return cur;
  }
  return cur;
}

Value fnOr(const Node& n, const Value& data, EvalState& st) {
  Value cur;
  for (const auto& a : n.args) {
    cur = ev(a, data, st);
    if (truthy(cur)) return cur;
  }
  return cur;
}

// starts_with / ends_with of a var against a constant string.
template <bool kStarts>
Value fnAffixVarLit(const Node& n, const Value& data, EvalState& st) {
  const Value* a = var1(n.args[0], data);
  if (!a) [[unlikely]] return evalCold(n, data, st);
  if (!a->isString()) return Value();
  std::string_view s = a->sv(), p = n.args[1].literal.sv();
  return Value::boolean(p.size() <= s.size() && shortEquals(kStarts ? s.substr(0, p.size()) : s.substr(s.size() - p.size()), p));
}

// {"in": [{"var": x}, [constants]]}
Value fnInVarLitArray(const Node& n, const Value& data, EvalState& st) {
  const Value* a = var1(n.args[0], data);
  if (!a) [[unlikely]] return evalCold(n, data, st);
  const Value& b = n.args[1].literal;
  for (std::uint32_t i = 0; i < b.size; ++i)
    if (strictEquals(b.arr[i], *a)) return Value::boolean(true);
  return Value::boolean(false);
}

// Relational comparison of a var with a constant number (either side).
template <Op kOp, bool kVarFirst>
Value fnCmpVarNum(const Node& n, const Value& data, EvalState& st) {
  const Value* v = var1(n.args[kVarFirst ? 0 : 1], data);
  if (!v || !v->isNumber()) [[unlikely]] return evalCold(n, data, st);
  double a = kVarFirst ? v->num : n.args[0].literal.num;
  double b = kVarFirst ? n.args[1].literal.num : v->num;
  switch (kOp) {
    case Op::kLt: return Value::boolean(a < b);
    case Op::kLe: return Value::boolean(a <= b);
    case Op::kGt: return Value::boolean(a > b);
    default: return Value::boolean(a >= b);
  }
}

// == / === of a var with a constant string.
template <bool kStrict, bool kNegate>
Value fnEqVarStr(const Node& n, const Value& data, EvalState& st) {
  const Value* v = var1(n.args[0], data);
  if (!v || (!kStrict && !v->isString())) [[unlikely]] return evalCold(n, data, st);
  bool eq = v->isString() && shortEquals(v->sv(), n.args[1].literal.sv());
  return Value::boolean(eq != kNegate);
}

bool isVar1(const Node& c) { return c.op == Op::kVar && c.args.size() == 1 && c.path.size() == 1; }
bool isLit(const Node& c, Type t) { return c.op == Op::kLiteral && c.literal.type == t; }

template <Op kOp>
EvalFn cmpFn(bool var_first) {
  return var_first ? &fnCmpVarNum<kOp, true> : &fnCmpVarNum<kOp, false>;
}

void finalize(Node& n) {
  for (auto& c : n.args) finalize(c);
  const std::size_t argc = n.args.size();
  n.fn = &eval;
  switch (n.op) {
    case Op::kLiteral: n.fn = &fnLiteral; break;
    case Op::kVar:
      if (isVar1(n)) n.fn = &fnVar1;
      break;
    case Op::kIf: n.fn = &fnIf; break;
    case Op::kAnd: n.fn = &fnAnd; break;
    case Op::kOr: n.fn = &fnOr; break;
    case Op::kStartsWith:
    case Op::kEndsWith:
      if (isVar1(n.args[0]) && isLit(n.args[1], Type::kString))
        n.fn = n.op == Op::kStartsWith ? &fnAffixVarLit<true> : &fnAffixVarLit<false>;
      break;
    case Op::kIn:
      if (argc == 2 && isVar1(n.args[0]) && isLit(n.args[1], Type::kArray)) n.fn = &fnInVarLitArray;
      break;
    case Op::kLt:
    case Op::kLe:
    case Op::kGt:
    case Op::kGe: {
      if (argc != 2) break;
      bool vf = isVar1(n.args[0]) && isLit(n.args[1], Type::kNumber);
      bool vl = isVar1(n.args[1]) && isLit(n.args[0], Type::kNumber);
      if (!vf && !vl) break;
      n.fn = n.op == Op::kLt ? cmpFn<Op::kLt>(vf) : n.op == Op::kLe ? cmpFn<Op::kLe>(vf)
             : n.op == Op::kGt ? cmpFn<Op::kGt>(vf) : cmpFn<Op::kGe>(vf);
      break;
    }
    case Op::kEq:
    case Op::kNe:
    case Op::kStrictEq:
    case Op::kStrictNe:
      if (argc == 2 && isVar1(n.args[0]) && isLit(n.args[1], Type::kString)) {
        if (n.op == Op::kEq) n.fn = &fnEqVarStr<false, false>;
        else if (n.op == Op::kNe) n.fn = &fnEqVarStr<false, true>;
        else if (n.op == Op::kStrictEq) n.fn = &fnEqVarStr<true, false>;
        else n.fn = &fnEqVarStr<true, true>;
      }
      break;
    default: break;
  }
}

}  // namespace

bool compileLogic(const Value& logic, const Evaluators& evaluators, ConstPool& pool, const std::string& path,
                  Node& out, std::vector<LogicError>& errors) {
  std::size_t before = errors.size();
  compileNode(logic, evaluators, pool, path, out, errors, 0);
  finalize(out);
  return std::all_of(errors.begin() + static_cast<std::ptrdiff_t>(before), errors.end(),
                     [](const LogicError& e) { return e.yields_null; });
}

int pickBucket(std::uint32_t hash, const std::uint64_t* weights, std::size_t n, std::uint64_t total) {
  const std::uint64_t bucket = (static_cast<std::uint64_t>(hash) * total) >> 32;
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sum += weights[i];
    if (sum > bucket) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace fledge::flags
