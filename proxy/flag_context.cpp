#include "proxy/flag_context.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>

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

std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool findCookie(const Head& head, std::string_view name, std::string_view& out) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    auto f = head[i];
    if (f.id != http::field::cookie) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = trimSpaces(rest.substr(0, semi));
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && trimSpaces(pair.substr(0, eq)) == name) {
        std::string_view v = trimSpaces(pair.substr(eq + 1));
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        out = v;
        return true;
      }
      if (semi == std::string_view::npos) break;
      rest = rest.substr(semi + 1);
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

std::string_view findSource(const ValueSource& src, const RequestView& req, flags::Arena& arena, bool& found) {
  std::string_view out;
  found = false;
  switch (src.kind) {
    case ValueSource::Kind::kHeader:
      for (std::size_t i = 0; i < req.head.size(); ++i) {
        auto f = req.head[i];
        if (f.name.size() == src.name.size() && boost::beast::iequals(f.name, src.name)) {
          found = true;
          return f.value;
        }
      }
      return out;
    case ValueSource::Kind::kCookie: found = findCookie(req.head, src.name, out); return out;
    case ValueSource::Kind::kQuery: found = findQuery(req.target, src.name, out, arena); return out;
  }
  return out;
}

flags::Value buildContext(const ContextSpec& spec, const RequestView& req, flags::Arena& arena) {
  using flags::Member;
  using flags::Value;
  Member* members = arena.allocArray<Member>(spec.attributes.size() + 2);
  std::size_t n = 0;
  for (const auto& src : spec.targeting_key) {
    bool found;
    std::string_view v = findSource(src, req, arena, found);
    if (found && !v.empty()) {
      members[n++] = Member{"targetingKey", Value::string(v)};
      break;
    }
  }
  for (const auto& [name, src] : spec.attributes) {
    bool found;
    std::string_view v = findSource(src, req, arena, found);
    if (found) members[n++] = Member{name, Value::string(v)};
  }
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
