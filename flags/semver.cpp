// sem_ver for flagd targeting: node-semver's strict parsing and ordering (what flagd-core uses),
// after stripping one leading v/V; "1" and "1.2" are read as 1.0.0 and 1.2.0.
#include <charconv>
#include <string>
#include <vector>

#include "flags/jsonlogic.hpp"

namespace fledge::flags {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

struct Version {
  std::uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string_view> pre;
};

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isIdentChar(char c) { return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'; }

// A numeric identifier: "0" or no leading zero, within JavaScript's safe integers.
bool parseNumber(std::string_view s, std::uint64_t& out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  for (char c : s)
    if (!isDigit(c)) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && static_cast<double>(out) <= kMaxSafeInteger;
}

bool allDigits(std::string_view s) {
  for (char c : s)
    if (!isDigit(c)) return false;
  return !s.empty();
}

// Dot-separated, non-empty identifiers of [0-9A-Za-z-]; `check` sees each one.
template <typename Check>
bool forEachIdentifier(std::string_view list, Check&& check) {
  if (list.empty()) return false;
  std::size_t start = 0;
  for (;;) {
    auto dot = list.find('.', start);
    std::string_view id = list.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (id.empty()) return false;
    for (char c : id)
      if (!isIdentChar(c)) return false;
    if (!check(id)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool parseStrict(std::string_view s, Version& v) {
  if (s.size() > 256) return false;
  if (!s.empty() && s[0] == 'v') s.remove_prefix(1);
  auto plus = s.find('+');
  if (plus != std::string_view::npos) {
    if (!forEachIdentifier(s.substr(plus + 1), [](std::string_view) { return true; })) return false;
    s = s.substr(0, plus);
  }
  auto dash = s.find('-');
  std::string_view main = s.substr(0, dash);
  if (dash != std::string_view::npos) {
    bool ok = forEachIdentifier(s.substr(dash + 1), [&](std::string_view id) {
      std::uint64_t ignored;
      if (allDigits(id) && !parseNumber(id, ignored)) return false;  // numeric ids: no leading zeros
      v.pre.push_back(id);
      return true;
    });
    if (!ok) return false;
  }
  auto d1 = main.find('.');
  if (d1 == std::string_view::npos) return false;
  auto d2 = main.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return false;
  return parseNumber(main.substr(0, d1), v.major) && parseNumber(main.substr(d1 + 1, d2 - d1 - 1), v.minor) &&
         parseNumber(main.substr(d2 + 1), v.patch);
}

bool normalize(const Value& raw, std::string& storage, Version& v) {
  storage.clear();
  appendJsString(storage, raw);
  std::string_view s = storage;
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s.remove_prefix(1);
  // node-semver trims surrounding whitespace before matching.
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  if (parseStrict(s, v)) return true;
  // Partial versions "1" and "1.2" (digits only) are coerced.
  auto dot = s.find('.');
  std::string_view a = s.substr(0, dot);
  std::string_view b = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
  if (!allDigits(a) || (dot != std::string_view::npos && !allDigits(b))) return false;
  v = Version{};
  auto [p1, e1] = std::from_chars(a.data(), a.data() + a.size(), v.major);
  if (e1 != std::errc{}) return false;
  if (!b.empty()) {
    auto [p2, e2] = std::from_chars(b.data(), b.data() + b.size(), v.minor);
    if (e2 != std::errc{}) return false;
  }
  return true;
}

int cmp(std::uint64_t a, std::uint64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

int comparePre(const Version& a, const Version& b) {
  if (a.pre.empty() || b.pre.empty()) return a.pre.empty() == b.pre.empty() ? 0 : (a.pre.empty() ? 1 : -1);
  for (std::size_t i = 0;; ++i) {
    if (i == a.pre.size() && i == b.pre.size()) return 0;
    if (i == a.pre.size()) return -1;
    if (i == b.pre.size()) return 1;
    std::string_view x = a.pre[i], y = b.pre[i];
    bool nx = allDigits(x), ny = allDigits(y);
    if (nx && ny) {
      std::uint64_t vx = 0, vy = 0;
      std::from_chars(x.data(), x.data() + x.size(), vx);
      std::from_chars(y.data(), y.data() + y.size(), vy);
      if (int c = cmp(vx, vy)) return c;
    } else if (nx != ny) {
      return nx ? -1 : 1;  // numeric identifiers sort before alphanumeric ones
    } else if (x != y) {
      return x < y ? -1 : 1;
    }
  }
}

int compare(const Version& a, const Version& b) {
  if (int c = cmp(a.major, b.major)) return c;
  if (int c = cmp(a.minor, b.minor)) return c;
  if (int c = cmp(a.patch, b.patch)) return c;
  return comparePre(a, b);
}

}  // namespace

bool semVerCompare(const Value& a, std::string_view op, const Value& b, bool& ok) {
  ok = false;
  std::string sa, sb;
  Version va, vb;
  if (!normalize(a, sa, va) || !normalize(b, sb, vb)) return false;
  int c = compare(va, vb);
  ok = true;
  if (op == "=") return c == 0;
  if (op == "!=") return c != 0;
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  if (op == ">=") return c >= 0;
  if (op == "^") return va.major == vb.major;
  if (op == "~") return va.major == vb.major && va.minor == vb.minor;
  ok = false;
  return false;
}

}  // namespace fledge::flags
