#include "proxy/flag_context.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

#include <cstring>

namespace fledge::proxy {
namespace http = boost::beast::http;

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding ('+' is a space); copies only when needed.
std::string_view decodeQuery(std::string_view s, flags::Arena& arena) {
  if (s.find_first_of("%+") == std::string_view::npos) return s;
  char* out = arena.allocArray<char>(s.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out[n++] = ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out[n++] = static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out[n++] = s[i];
    }
  }
  return {out, n};
}

// One pass over "a=1; b=2" per Cookie field, without library calls: this runs per request.
bool findCookie(const Head& head, std::string_view name, std::string_view& out) {
  auto space = [](char c) { return c == ' ' || c == '\t'; };
  for (std::size_t i = 0; i < head.size(); ++i) {
    if (head.id(i) != http::field::cookie) continue;
    std::string_view v = head.value(i);
    const char* p = v.data();
    const char* end = p + v.size();
    while (p < end) {
      while (p < end && space(*p)) ++p;
      const char* k0 = p;
      while (p < end && *p != '=' && *p != ';') ++p;
      const char* k1 = p;
      while (k1 > k0 && space(k1[-1])) --k1;
      if (p < end && *p == '=') {
        const char* v0 = ++p;
        while (p < end && *p != ';') ++p;
        if (static_cast<std::size_t>(k1 - k0) == name.size() && std::memcmp(k0, name.data(), name.size()) == 0) {
          const char* v1 = p;
          while (v0 < v1 && space(*v0)) ++v0;
          while (v1 > v0 && space(v1[-1])) --v1;
          if (v1 - v0 >= 2 && *v0 == '"' && v1[-1] == '"') ++v0, --v1;
          out = std::string_view(v0, static_cast<std::size_t>(v1 - v0));
          return true;
        }
      }
      if (p < end) ++p;  // ';'
    }
  }
  return false;
}

bool findQuery(std::string_view target, std::string_view name, std::string_view& out, flags::Arena& arena) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return false;
  std::string_view rest = target.substr(q + 1);
  auto hash = rest.find('#');
  if (hash != std::string_view::npos) rest = rest.substr(0, hash);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    auto eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (decodeQuery(key, arena) == name) {
      out = eq == std::string_view::npos ? std::string_view{} : decodeQuery(pair.substr(eq + 1), arena);
      return true;
    }
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return false;
}

}  // namespace

namespace {

// `name` is a request field name, `lower` a configured (lowercased) one. Field names are tokens,
// where OR-ing 0x20 lowercases letters and leaves the other token characters alone (except that
// '^' and '~' become alike), so 8 bytes are compared at a time.
inline bool equalsLower(std::string_view name, std::string_view lower) {
  const std::size_t n = name.size();
  if (n != lower.size()) return false;
  const char* a = name.data();
  const char* b = lower.data();
  auto eq8 = [](const char* x, const char* y) {
    std::uint64_t u, v;
    std::memcpy(&u, x, 8);
    std::memcpy(&v, y, 8);
    return (u | 0x2020202020202020ull) == (v | 0x2020202020202020ull);
  };
  auto eq4 = [](const char* x, const char* y) {
    std::uint32_t u, v;
    std::memcpy(&u, x, 4);
    std::memcpy(&v, y, 4);
    return (u | 0x20202020u) == (v | 0x20202020u);
  };
  if (n >= 8) {  // 8-byte windows; the last one may overlap the previous
    for (std::size_t i = 0; i + 8 < n; i += 8)
      if (!eq8(a + i, b + i)) return false;
    return eq8(a + n - 8, b + n - 8);
  }
  if (n >= 4) return eq4(a, b) && eq4(a + n - 4, b + n - 4);
  for (std::size_t i = 0; i < n; ++i)
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  return true;
}

}  // namespace

std::string_view findSource(const ValueSource& src, const RequestView& req, flags::Arena& arena, bool& found) {
  std::string_view out;
  found = false;
  switch (src.kind) {
    case ValueSource::Kind::kHeader: {
      const std::uint32_t key = fieldKey(src.name);
      for (std::size_t i = 0; i < req.head.size(); ++i) {
        if (req.head.key(i) == key && equalsLower(req.head.name(i), src.name)) {
          found = true;
          return req.head.value(i);
        }
      }
      return out;
    }
    case ValueSource::Kind::kCookie: found = findCookie(req.head, src.name, out); return out;
    case ValueSource::Kind::kQuery: found = findQuery(req.target, src.name, out, arena); return out;
    case ValueSource::Kind::kClientIp: found = !req.client_ip.empty(); return req.client_ip;
  }
  return out;
}

flags::Value buildContext(const ContextSpec& spec, const RequestView& req, flags::Arena& arena) {
  using flags::Member;
  using flags::Value;
  // Slots: targeting-key sources first, then attributes. One pass over the header fields fills
  // every header source; cookies and query parameters are looked up only if configured.
  const std::size_t nt = spec.targeting_key.size(), total = nt + spec.attributes.size();
  auto* vals = arena.allocArray<std::string_view>(total);  // read only where found[] is set
  bool* found = arena.allocArray<bool>(total);
  std::memset(found, 0, total * sizeof(bool));
  auto source = [&](std::size_t slot) -> const ValueSource& {
    return slot < nt ? spec.targeting_key[slot] : spec.attributes[slot - nt].second;
  };
  const Head& head = req.head;
  const std::size_t fields = head.size();
  const std::size_t nm = spec.header_matches.size();
  const ContextSpec::HeaderMatch* matches = spec.header_matches.data();
  const bool indexed = nm <= ContextSpec::kTableSize / 2;
  std::size_t remaining = nm;
  auto take = [&](std::size_t m, std::size_t i) {
    const std::uint32_t slot = matches[m].slot;
    if (found[slot] || !equalsLower(head.name(i), source(slot).name)) return;
    vals[slot] = head.value(i);  // the first occurrence wins
    found[slot] = true;
    --remaining;
  };
  for (std::size_t i = 0; i < fields && remaining != 0; ++i) {
    const std::uint32_t key = head.key(i);
    if (indexed) {
      // Probe until an empty bucket; several sources may share a key.
      for (std::size_t b = ContextSpec::bucketOf(key); spec.table[b] >= 0; b = (b + 1) % ContextSpec::kTableSize)
        if (matches[spec.table[b]].key == key) take(static_cast<std::size_t>(spec.table[b]), i);
    } else {
      for (std::size_t m = 0; m < nm; ++m)
        if (matches[m].key == key) take(m, i);
    }
  }
  if (spec.has_non_header) {
    bool have_key = false;
    for (std::size_t slot = 0; slot < total; ++slot) {
      if (slot < nt && have_key) continue;  // an earlier targeting-key source already answered
      if (source(slot).kind != ValueSource::Kind::kHeader && !found[slot])
        vals[slot] = findSource(source(slot), req, arena, found[slot]);
      if (slot < nt) have_key = found[slot] && !vals[slot].empty();
    }
  }

  Member* members = arena.allocArray<Member>(spec.attributes.size() + 2);
  std::size_t n = 0;
  for (std::size_t slot = 0; slot < nt; ++slot) {
    if (found[slot] && !vals[slot].empty()) {
      members[n++] = Member{"targetingKey", Value::string(vals[slot])};
      break;
    }
  }
  for (std::size_t a = 0; a < spec.attributes.size(); ++a)
    if (found[nt + a]) members[n++] = Member{spec.attributes[a].first, Value::string(vals[nt + a])};
  Member* r = arena.allocArray<Member>(4);
  std::string_view path = req.target.substr(0, req.target.find('?'));
  r[0] = Member{"ip", Value::string(req.client_ip)};
  r[1] = Member{"method", Value::string(req.method)};
  r[2] = Member{"path", Value::string(path)};
  r[3] = Member{"host", Value::string(req.host)};
  members[n++] = Member{"request", Value::object(r, 4)};
  return Value::object(members, n);
}

}  // namespace fledge::proxy
