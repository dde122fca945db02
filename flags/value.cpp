#include "flags/value.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace fledge::flags {

void* Arena::grow(std::size_t n, std::size_t align) {
  std::size_t cap = std::max<std::size_t>(cap_ * 2, n + align + 64);
  blocks_.push_back(std::make_unique<char[]>(cap));
  block_caps_.push_back(cap);
  base_ = blocks_.back().get();
  cap_ = cap;
  used_ = 0;
  return allocate(n, align);
}

namespace {

bool isJsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isJsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isJsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Length of the longest prefix of `s` that is a StrDecimalLiteral (sign, digits, fraction,
// exponent, or Infinity), 0 if none.
std::size_t decimalPrefix(std::string_view s, bool& infinity) {
  infinity = false;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (s.substr(i, 8) == "Infinity") {
    infinity = true;
    return i + 8;
  }
  std::size_t digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    std::size_t j = i + 1, frac = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++frac;
    if (digits + frac == 0) return 0;
    i = j;
    digits += frac;
  }
  if (digits == 0) return 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    std::size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    std::size_t e = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j, ++e;
    if (e) i = j;
  }
  return i;
}

// `s` is a validated decimalPrefix(); from_chars parses it without allocating.
double parseDecimal(std::string_view s, bool infinity) {
  bool neg = !s.empty() && s.front() == '-';
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  double v = std::numeric_limits<double>::infinity();
  if (!infinity) std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  return neg ? -v : v;
}

double stringToNumber(std::string_view raw) {
  std::string_view s = trim(raw);
  if (s.empty()) return 0;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' || s[1] == 'B')) {
    int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
    double v = 0;
    for (char c : s.substr(2)) {
      int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : 99;
      if (d >= base) return std::numeric_limits<double>::quiet_NaN();
      v = v * base + d;
    }
    return v;
  }
  bool inf;
  std::size_t n = decimalPrefix(s, inf);
  if (n != s.size()) return std::numeric_limits<double>::quiet_NaN();
  return parseDecimal(s, inf);
}

}  // namespace

double toNumber(const Value& v) {
  switch (v.type) {
    case Type::kNull: return 0;
    case Type::kBool: return v.b ? 1 : 0;
    case Type::kNumber: return v.num;
    case Type::kString: return stringToNumber(v.sv());
    case Type::kArray: {
      std::string s;
      appendJsString(s, v);
      return stringToNumber(s);
    }
    case Type::kObject: return std::numeric_limits<double>::quiet_NaN();
  }
  return 0;
}

void appendJsNumber(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "NaN";
    return;
  }
  if (d == 0) {
    out += '0';
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-Infinity" : "Infinity";
    return;
  }
  if (d < 0) {
    out += '-';
    d = -d;
  }
  // Shortest round-trip digits, then laid out by ECMAScript's Number::toString rules.
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
  auto epos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, epos))
    if (c != '.') digits += c;
  int exp10 = 0;
  std::from_chars(sci.data() + epos + 1 + (sci[epos + 1] == '+'), sci.data() + sci.size(), exp10);
  const int k = static_cast<int>(digits.size());
  const int n = exp10 + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out.append(digits, 0, static_cast<std::size_t>(n));
    out += '.';
    out.append(digits, static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out += digits[0];
    if (k > 1) {
      out += '.';
      out.append(digits, 1);
    }
    out += 'e';
    out += n - 1 >= 0 ? '+' : '-';
    out += std::to_string(std::abs(n - 1));
  }
}

void appendJsString(std::string& out, const Value& v) {
  switch (v.type) {
    case Type::kNull: out += "null"; return;
    case Type::kBool: out += v.b ? "true" : "false"; return;
    case Type::kNumber: appendJsNumber(out, v.num); return;
    case Type::kString: out.append(v.str, v.size); return;
    case Type::kObject: out += "[object Object]"; return;
    case Type::kArray:
      for (std::uint32_t i = 0; i < v.size; ++i) {
        if (i) out += ',';
        if (!v.arr[i].isNull()) appendJsString(out, v.arr[i]);  // join() prints null as ""
      }
      return;
  }
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong forms, surrogates or
// code points above U+10FFFF), or 0.
std::size_t utf8Length(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = at(0);
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size() || at(1) < lo || at(1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (at(k) < 0x80 || at(k) > 0xBF) return 0;
  return n;
}

}  // namespace

void appendJson(std::string& out, const Value& v) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (v.type) {
    case Type::kNull: out += "null"; return;
    case Type::kBool: out += v.b ? "true" : "false"; return;
    case Type::kNumber:
      if (std::isnan(v.num) || std::isinf(v.num)) out += "null";
      else appendJsNumber(out, v.num);
      return;
    case Type::kString:
      out += '"';
      for (std::size_t i = 0; i < v.size; ++i) {
        const auto c = static_cast<unsigned char>(v.str[i]);
        if (c >= 0x80) {
          // JSON text is UTF-8 (RFC 8259 §8.1): bytes that are not (a percent-decoded OFREP
          // key, a request target in the access log) become U+FFFD, as decoders show them.
          if (const std::size_t n = utf8Length(v.sv(), i)) {
            out.append(v.str + i, n);
            i += n - 1;
          } else {
            out += "\\ufffd";
          }
          continue;
        }
        switch (c) {
          case '"': out += "\\\""; break;
          case '\\': out += "\\\\"; break;
          case '\n': out += "\\n"; break;
          case '\r': out += "\\r"; break;
          case '\t': out += "\\t"; break;
          case '\b': out += "\\b"; break;
          case '\f': out += "\\f"; break;
          default:
            if (c < 0x20) {
              out += "\\u00";
              out += kHex[c >> 4];
              out += kHex[c & 15];
            } else {
              out += static_cast<char>(c);
            }
        }
      }
      out += '"';
      return;
    case Type::kArray:
      out += '[';
      for (std::uint32_t i = 0; i < v.size; ++i) {
        if (i) out += ',';
        appendJson(out, v.arr[i]);
      }
      out += ']';
      return;
    case Type::kObject:
      out += '{';
      for (std::uint32_t i = 0; i < v.size; ++i) {
        if (i) out += ',';
        appendJson(out, Value::string(v.obj[i].key));
        out += ':';
        appendJson(out, v.obj[i].value);
      }
      out += '}';
      return;
  }
}

bool looseEquals(const Value& a, const Value& b) {
  if (a.type == b.type) return strictEquals(a, b);
  if (a.isNull() || b.isNull()) return false;  // null == undefined only
  if (a.type == Type::kBool) return looseEquals(Value::number(a.b ? 1 : 0), b);
  if (b.type == Type::kBool) return looseEquals(a, Value::number(b.b ? 1 : 0));
  if (a.isNumber() && b.isString()) return a.num == stringToNumber(b.sv());
  if (a.isString() && b.isNumber()) return stringToNumber(a.sv()) == b.num;
  // Objects and arrays against primitives compare through their string form.
  auto prim = [](const Value& v, std::string& s) {
    appendJsString(s, v);
    return Value::string(s);
  };
  std::string sa, sb;
  if ((a.isArray() || a.isObject()) && (b.isNumber() || b.isString())) return looseEquals(prim(a, sa), b);
  if ((b.isArray() || b.isObject()) && (a.isNumber() || a.isString())) return looseEquals(a, prim(b, sb));
  return false;  // array vs object: different references
}

bool deepEquals(const Value& a, const Value& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case Type::kArray:
      if (a.size != b.size) return false;
      for (std::uint32_t i = 0; i < a.size; ++i)
        if (!deepEquals(a.arr[i], b.arr[i])) return false;
      return true;
    case Type::kObject:
      if (a.size != b.size) return false;
      for (std::uint32_t i = 0; i < a.size; ++i) {
        const Value* o = b.get(a.obj[i].key);
        if (!o || !deepEquals(a.obj[i].value, *o)) return false;
      }
      return true;
    case Type::kNumber:
      return a.num == b.num || (std::isnan(a.num) && std::isnan(b.num));
    default:
      return strictEquals(a, b);
  }
}

double parseFloatJs(const Value& v) {
  if (v.isNumber()) return v.num;  // parseFloat(String(n)) === n
  std::string s;
  if (!v.isString()) appendJsString(s, v);
  std::string_view t = v.isString() ? v.sv() : std::string_view(s);
  while (!t.empty() && isJsSpace(t.front())) t.remove_prefix(1);
  bool inf;
  std::size_t n = decimalPrefix(t, inf);
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  return parseDecimal(t.substr(0, n), inf);
}

}  // namespace fledge::flags
