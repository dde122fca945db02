#include "ctl/json_text.hpp"

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>

namespace fledge::ctl {

boost::system::result<json::value, std::string> parseJson(std::string_view text) {
  json::parser p;
  boost::system::error_code ec;
  const std::size_t used = p.write(text.data(), text.size(), ec);  // the whole text, one document
  if (ec) {
    const std::string_view before = text.substr(0, std::min(used, text.size()));
    const auto nl = before.rfind('\n');
    const auto line = 1 + std::count(before.begin(), before.end(), '\n');
    const auto column = 1 + (nl == std::string_view::npos ? before.size() : before.size() - nl - 1);
    return {boost::system::in_place_error, "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + ec.message()};
  }
  return p.release();
}

namespace {

void write(const json::value& v, bool pretty, int depth, std::string& out) {
  const auto newline = [&](int d) {
    if (!pretty) return;
    out += '\n';
    out.append(std::size_t(2 * d), ' ');
  };
  switch (v.kind()) {
    case json::kind::object: {
      const auto& o = v.get_object();
      out += '{';
      bool first = true;
      for (const auto& kv : o) {
        if (!first) out += ',';
        first = false;
        newline(depth + 1);
        out += json::serialize(kv.key());
        out += pretty ? ": " : ":";
        write(kv.value(), pretty, depth + 1, out);
      }
      if (!o.empty()) newline(depth);
      out += '}';
      break;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      out += '[';
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += ',';
        newline(depth + 1);
        write(a[i], pretty, depth + 1, out);
      }
      if (!a.empty()) newline(depth);
      out += ']';
      break;
    }
    case json::kind::double_: out += numberText(v); break;
    default: out += json::serialize(v); break;
  }
}

}  // namespace

std::string toJson(const json::value& v, bool pretty) {
  std::string out;
  write(v, pretty, 0, out);
  return out;
}

std::string numberText(const json::value& v) {
  if (!v.is_double()) return json::serialize(v);
  const double d = v.get_double();
  if (!std::isfinite(d)) return "null";
  // The shortest text that reads back the same; without an exponent where that stays short.
  char buf[64];
  const double a = std::fabs(d);
  const auto format = a == 0 || (a >= 1e-6 && a < 1e15) ? std::chars_format::fixed : std::chars_format::general;
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, format);
  return ec == std::errc() ? std::string(buf, end) : json::serialize(v);
}

const json::value* find(const json::value& v, std::string_view ptr) {
  boost::system::error_code ec;
  return v.find_pointer(ptr, ec);
}

std::optional<std::string> findString(const json::value& v, std::string_view ptr) {
  const auto* p = find(v, ptr);
  if (!p || !p->is_string()) return std::nullopt;
  return std::string(p->get_string());
}

std::optional<double> findNumber(const json::value& v, std::string_view ptr) {
  const auto* p = find(v, ptr);
  if (!p || !p->is_number()) return std::nullopt;
  return p->to_number<double>();
}

std::optional<std::int64_t> findInt(const json::value& v, std::string_view ptr) {
  const auto* p = find(v, ptr);
  if (!p) return std::nullopt;
  if (p->is_int64()) return p->get_int64();
  if (p->is_uint64() && p->get_uint64() <= std::uint64_t(INT64_MAX)) return std::int64_t(p->get_uint64());
  if (p->is_double() && p->get_double() == std::floor(p->get_double())) return std::int64_t(p->get_double());
  return std::nullopt;
}

}  // namespace fledge::ctl
