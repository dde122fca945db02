#pragma once
// The dynamic JSON value JsonLogic evaluates over, and the arena its temporaries live in.
// Values are trivially copyable views: strings, arrays and objects point into the compiled
// flag set (constants), the evaluation context, or an Arena, never owning memory.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fledge::flags {

enum class Type : std::uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };

struct Member;

// Equality for the short keys and names flags deal in: word-sized loads instead of a libc
// memcmp call per compare.
inline bool shortEquals(std::string_view a, std::string_view b) {
  const std::size_t n = a.size();
  if (n != b.size()) return false;
  const char* p = a.data();
  const char* q = b.data();
  auto load8 = [](const char* x) {
    std::uint64_t v;
    std::memcpy(&v, x, 8);
    return v;
  };
  if (n >= 8) {
    if (n > 16) return std::memcmp(p, q, n) == 0;
    // Two possibly overlapping 8-byte windows cover 8..16 bytes.
    return load8(p) == load8(q) && load8(p + n - 8) == load8(q + n - 8);
  }
  if (n >= 4) {
    std::uint32_t x1, y1, x2, y2;
    std::memcpy(&x1, p, 4);
    std::memcpy(&y1, q, 4);
    std::memcpy(&x2, p + n - 4, 4);
    std::memcpy(&y2, q + n - 4, 4);
    return x1 == y1 && x2 == y2;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (p[i] != q[i]) return false;
  return true;
}

struct Member;

struct Value {
  Type type = Type::kNull;
  bool b = false;
  std::uint32_t size = 0;  // string length, array length or member count
  union {
    double num;
    const char* str;
    const Value* arr;
    const Member* obj;
  };

  Value() : num(0) {}
  static Value null() { return Value(); }
  static Value boolean(bool v) {
    Value x;
    x.type = Type::kBool;
    x.b = v;
    return x;
  }
  static Value number(double v) {
    Value x;
    x.type = Type::kNumber;
    x.num = v;
    return x;
  }
  static Value string(std::string_view s) {
    Value x;
    x.type = Type::kString;
    x.str = s.data();
    x.size = static_cast<std::uint32_t>(s.size());
    return x;
  }
  static Value array(const Value* items, std::size_t n) {
    Value x;
    x.type = Type::kArray;
    x.arr = items;
    x.size = static_cast<std::uint32_t>(n);
    return x;
  }
  static Value object(const Member* members, std::size_t n) {
    Value x;
    x.type = Type::kObject;
    x.obj = members;
    x.size = static_cast<std::uint32_t>(n);
    return x;
  }

  bool isNull() const { return type == Type::kNull; }
  bool isString() const { return type == Type::kString; }
  bool isNumber() const { return type == Type::kNumber; }
  bool isArray() const { return type == Type::kArray; }
  bool isObject() const { return type == Type::kObject; }
  std::string_view sv() const { return {str, size}; }
  // Object member by key, or nullptr.
  inline const Value* get(std::string_view key) const;
};

struct Member {
  std::string_view key;
  Value value;
};

inline const Value* Value::get(std::string_view key) const {
  if (type != Type::kObject) return nullptr;
  for (std::uint32_t i = 0; i < size; ++i)
    if (shortEquals(obj[i].key, key)) return &obj[i].value;
  return nullptr;
}

// Bump allocator for evaluation temporaries. Starts in an inline buffer; only logic that builds
// arrays or strings (map, merge, cat, ...) or large contexts ever reaches the heap.
class Arena {
 public:
  Arena() = default;
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  void* allocate(std::size_t n, std::size_t align = alignof(std::max_align_t)) {
    std::size_t p = (used_ + align - 1) & ~(align - 1);
    if (p + n <= cap_) {
      used_ = p + n;
      return base_ + p;
    }
    return grow(n, align);
  }
  template <typename T>
  T* allocArray(std::size_t n) {
    return static_cast<T*>(allocate(sizeof(T) * (n ? n : 1), alignof(T)));
  }
  std::string_view copy(std::string_view s) {
    char* p = allocArray<char>(s.size());
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
  }
  // Forget everything allocated; keeps the largest block for reuse.
  void reset() {
    used_ = 0;
    if (!blocks_.empty()) {
      base_ = blocks_.back().get();
      cap_ = block_caps_.back();
      blocks_.erase(blocks_.begin(), blocks_.end() - 1);
      block_caps_.erase(block_caps_.begin(), block_caps_.end() - 1);
    }
  }
  bool onHeap() const { return !blocks_.empty(); }
  bool used() const { return used_ != 0 || !blocks_.empty(); }

 private:
  void* grow(std::size_t n, std::size_t align);

  alignas(std::max_align_t) char inline_[2048];
  char* base_ = inline_;
  std::size_t cap_ = sizeof(inline_);
  std::size_t used_ = 0;
  std::vector<std::unique_ptr<char[]>> blocks_;
  std::vector<std::size_t> block_caps_;
};

// JavaScript conversions JsonLogic (json-logic-js) relies on.
inline bool truthy(const Value& v) {
  switch (v.type) {
    case Type::kNull: return false;
    case Type::kBool: return v.b;
    case Type::kNumber: return v.num != 0 && v.num == v.num;  // NaN is falsy
    case Type::kString: return v.size != 0;
    case Type::kArray: return v.size != 0;  // JsonLogic: [] is falsy, unlike JavaScript
    case Type::kObject: return true;
  }
  return false;
}
double toNumber(const Value& v);
// parseFloat(String(v)): the longest numeric prefix, NaN when there is none.
double parseFloatJs(const Value& v);
// Appends String(v) as JavaScript would print it.
void appendJsString(std::string& out, const Value& v);
void appendJsNumber(std::string& out, double d);
// JSON text of v (NaN/Infinity become null, as JSON.stringify does).
void appendJson(std::string& out, const Value& v);
bool looseEquals(const Value& a, const Value& b);
inline bool strictEquals(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::kNull: return true;
    case Type::kBool: return a.b == b.b;
    case Type::kNumber: return a.num == b.num;
    case Type::kString: return shortEquals(a.sv(), b.sv());
    case Type::kArray: return a.arr == b.arr && a.size == b.size;  // identity, as in JavaScript
    case Type::kObject: return a.obj == b.obj && a.size == b.size;
  }
  return false;
}
// Deep structural equality (for tests and ETags), not a JavaScript operator.
bool deepEquals(const Value& a, const Value& b);

}  // namespace fledge::flags
