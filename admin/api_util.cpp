#include "admin/api_util.hpp"

#include <simdjson.h>

#include <chrono>
#include <ctime>

#include "admin/json_edit.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;

std::string unquote(std::string_view json) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  std::string_view s;
  if (p.parse(json.data(), json.size()).get(e) || e.get_string().get(s)) return {};
  return std::string(s);
}

// `text` is known to be valid JSON: its minified form.
std::string minified(std::string_view text) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  if (p.parse(text.data(), text.size()).get(e)) return std::string(text);
  return simdjson::minify(e);
}

std::string objectOf(const std::vector<std::pair<std::string, std::string>>& m) {
  std::string out = "{";
  for (std::size_t i = 0; i < m.size(); ++i) out += (i ? "," : "") + jsonQuote(m[i].first) + ":" + m[i].second;
  return out + "}";
}

std::string arrayOf(const std::vector<std::pair<std::string, std::string>>& m) {
  std::string out = "[";
  for (std::size_t i = 0; i < m.size(); ++i) out += (i ? "," : "") + m[i].second;
  return out + "]";
}

std::string nowIso() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000));
  return buf;
}

Response jsonResponse(const Request& req, http::status status, std::string body, std::uint64_t version) {
  auto res = HttpServer::json(req, status, std::move(body));
  if (version) res.set(http::field::etag, "\"" + std::to_string(version) + "\"");
  return res;
}

Response errorResponse(const Request& req, const AdminApi::Error& e) {
  std::string body = "{\"error\":" + jsonQuote(e.message);
  if (!e.field.empty()) body += ",\"field\":" + jsonQuote(e.field);
  body += "}";
  return HttpServer::json(req, static_cast<http::status>(e.status), std::move(body));
}

AdminApi::Error err(unsigned status, std::string message, std::string field) {
  return AdminApi::Error{status, std::move(message), std::move(field)};
}

std::pair<std::string_view, std::string_view> splitTarget(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

AdminApi::Error numericParams(std::string_view query, std::initializer_list<std::pair<std::string_view, std::uint64_t*>> params) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    const auto eq = kv.find('=');
    const std::string_view k = kv.substr(0, eq);
    const std::string v(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || *end || v[0] == '-') return err(400, "must be a number", std::string(k));
    auto slot = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == k; });
    if (slot == params.end()) return err(400, "unknown parameter", std::string(k));
    *slot->second = n;
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return {};
}

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path = path.substr(slash + 1);
  }
  return out;
}

std::optional<std::string> activeRolloutOf(const State& s, RolloutTarget kind, std::string_view target, bool progressing_only) {
  const char* member = kind == RolloutTarget::kRoute ? "route" : "flag";
  for (const auto& [name, json] : s.rollouts) {
    auto st = RolloutStatus::fromJson(getMember(json, "status").value_or("{}"));
    if (!st || finished(st->phase) || (progressing_only && st->phase != RolloutPhase::kProgressing)) continue;
    if (unquote(getMember(getMember(json, "spec").value_or("{}"), member).value_or("\"\"")) == target) return name;
  }
  return std::nullopt;
}

bool metricsEnabled(std::string_view config) {
  auto m = getMember(config, "metrics");
  return !m || getMember(*m, "enabled").value_or("true") != "false";
}

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace fledge::admin
