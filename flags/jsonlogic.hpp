#pragma once
// JsonLogic compiled once into an immutable tree of operator nodes (json-logic-js semantics),
// plus flagd's custom operations: fractional, sem_ver, starts_with, ends_with.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flags/value.hpp"

namespace fledge::flags {

enum class Op : std::uint8_t {
  kLiteral, kArray, kVar, kFlagKey, kTimestamp, kMissing, kMissingSome, kIf, kEq, kStrictEq, kNe, kStrictNe,
  kNot, kNotNot, kOr, kAnd, kLt, kLe, kGt, kGe, kMax, kMin, kAdd, kSub, kMul, kDiv, kMod, kMap, kFilter,
  kReduce, kAll, kNone, kSome, kMerge, kIn, kCat, kSubstr, kFractional, kSemVer, kStartsWith, kEndsWith,
};

struct FractionalPlan {
  bool valid = true;
  std::vector<Value> variants;
  std::vector<std::uint64_t> weights;
  std::uint64_t total = 0;
};
struct Node;
struct EvalState;
// Each node carries the evaluator chosen for its operator and operand shapes at compile time
// (e.g. "var compared with a constant number"), so evaluation is one direct call per node.
using EvalFn = Value (*)(const Node&, const Value&, EvalState&);

struct Node {
  EvalFn fn = nullptr;
  Op op = Op::kLiteral;
  Value literal;                       // kLiteral
  std::vector<Node> args;              // operands (kArray: elements)
  std::vector<std::string_view> path;  // kVar with a constant path (pre-split on '.')
  bool whole_data = false;             // kVar of "" / null: the current data itself
  std::shared_ptr<const FractionalPlan> fractional;  // constant bucket list, when known at compile time
};

// Per-evaluation inputs and scratch.
struct EvalState {
  const Value* root = nullptr;  // the evaluation context (an object)
  std::string_view flag_key;
  std::int64_t timestamp = 0;  // seconds since the epoch, for $flagd.timestamp
  Arena* arena = nullptr;
};

// Owns constants (strings, arrays) referenced by compiled nodes.
class ConstPool {
 public:
  Arena& arena() { return *arena_; }

 private:
  std::unique_ptr<Arena> arena_ = std::make_unique<Arena>();
};

struct LogicError {
  std::string path;
  std::string message;
  // flagd evaluates this mistake to null (starts_with, ends_with or sem_ver with the wrong number
  // of arguments), and so does the compiled node; a strict caller still refuses it.
  bool yields_null = false;
};

// Compiles a JsonLogic expression given as a parsed JSON value (constants live in `pool`).
// `evaluators` resolves {"$ref": name}. Errors (unknown operators, bad arity, missing $ref) are
// appended with their path; returns false if any error other than a `yields_null` one.
struct Evaluators {
  std::vector<std::pair<std::string, Value>> items;
  const Value* find(std::string_view name) const {
    for (const auto& [k, v] : items)
      if (k == name) return &v;
    return nullptr;
  }
};
bool compileLogic(const Value& logic, const Evaluators& evaluators, ConstPool& pool, const std::string& path,
                  Node& out, std::vector<LogicError>& errors);

// The context used when none is given: an empty object.
inline const Value kEmptyObject = Value::object(nullptr, 0);

inline Value evaluate(const Node& node, EvalState& state) {
  if (node.op == Op::kLiteral) return node.literal;
  return node.fn(node, state.root ? *state.root : kEmptyObject, state);
}

// flagd's bucketing: murmur3_x86_32(key) scaled onto [0, total) and walked through the weights.
// Returns the index of the chosen bucket, or -1 when every weight is zero.
int pickBucket(std::uint32_t hash, const std::uint64_t* weights, std::size_t n, std::uint64_t total);

// Semantic version comparison as flagd's sem_ver does it; nullopt-like false in `ok` on bad input.
bool semVerCompare(const Value& a, std::string_view op, const Value& b, bool& ok);

}  // namespace fledge::flags
