#include "admin/stats.hpp"

#include <boost/json.hpp>

#include <algorithm>

#include "admin/api_util.hpp"
#include "flags/flag_set.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::string_view kStatsPrefix = "/api/v1/stats/";
constexpr std::uint64_t kDefaultSeconds = 120;
constexpr std::uint64_t kMaxSeconds = Metrics::kMaxSamples - 1;

json::value orNull(const std::optional<double>& v) { return v ? json::value(*v) : json::value(nullptr); }

json::array points(const std::vector<SeriesPoint>& series) {
  json::array out;
  out.reserve(series.size());
  for (const auto& p : series)
    out.push_back(json::object{{"t", p.t_ms}, {"rps", p.rps}, {"error_rate", orNull(p.error_rate)},
                               {"p50_ms", orNull(p.p50_ms)}, {"p99_ms", orNull(p.p99_ms)}});
  return out;
}

}  // namespace

Response statsEndpoint(const Request& req, const StatsSources& src, const std::vector<ApiToken>& tokens) {
  if (const Caller caller = authenticateToken(req, tokens); !caller.token) return errorResponse(req, err(caller.status, caller.error));
  std::string_view target = req.target();
  auto [path, query] = splitTarget(target);
  path.remove_prefix(std::min(path.size(), kStatsPrefix.size()));
  const auto parts = splitPath(path);
  const auto snap = src.snapshot();
  const auto& cfg = snap->config;

  if (parts.size() == 1 && parts[0] == "endpoints") {
    json::array endpoints;
    for (const auto& e : src.health())
      endpoints.push_back(json::object{{"cluster", e.cluster}, {"endpoint", e.endpoint}, {"healthy", e.healthy},
                                       {"passed", e.passed}, {"failed", e.failed}});
    return jsonResponse(req, http::status::ok, json::serialize(json::object{{"endpoints", std::move(endpoints)}}));
  }
  if (parts.size() == 1 && parts[0] == "flags") {
    json::object flags;
    for (const auto& [key, variants] : src.metrics->flagEvaluations()) {
      json::object counts;
      for (const auto& [variant, n] : variants) counts[variant] = n;
      flags[key] = std::move(counts);
    }
    return jsonResponse(req, http::status::ok, json::serialize(json::object{{"flags", std::move(flags)}}));
  }
  if (parts.size() == 2 && (parts[0] == "routes" || parts[0] == "flags")) {
    std::uint64_t seconds = kDefaultSeconds;
    if (AdminApi::Error e = numericParams(query, {{"seconds", &seconds}}); e.status) return errorResponse(req, e);
    if (seconds < 1 || seconds > kMaxSeconds)
      return errorResponse(req, err(400, "must be 1 to " + std::to_string(kMaxSeconds), "seconds"));
    const std::string name(parts[1]);
    const std::chrono::seconds span(seconds);
    json::array series;
    auto add = [&](Metrics::Of of, const std::string& arm) {
      series.push_back(json::object{{"name", arm}, {"points", points(src.metrics->series(of, name, arm, span))}});
    };
    if (parts[0] == "routes") {
      auto route = std::find_if(cfg.routes.begin(), cfg.routes.end(), [&](const auto& r) { return r.name == name; });
      if (route == cfg.routes.end()) return errorResponse(req, err(404, "no route \"" + name + "\""));
      if (route->split)
        for (const auto& arm : route->split->arms) add(Metrics::Of::kArm, arm.name);
      else
        add(Metrics::Of::kArm, "");
      return jsonResponse(req, http::status::ok,
                          json::serialize(json::object{{"route", name}, {"interval_s", 1}, {"series", std::move(series)}}));
    }
    const flags::Flag* flag = cfg.flag_set ? cfg.flag_set->find(name) : nullptr;
    if (!flag) return errorResponse(req, err(404, "no flag \"" + name + "\""));
    // Only observed flags have per-variant responses.
    if (std::find(cfg.metrics.flag_outcomes.begin(), cfg.metrics.flag_outcomes.end(), name) != cfg.metrics.flag_outcomes.end())
      for (const auto& v : flag->variants) add(Metrics::Of::kFlagVariant, v.name);
    return jsonResponse(req, http::status::ok,
                        json::serialize(json::object{{"flag", name}, {"interval_s", 1}, {"series", std::move(series)}}));
  }
  return errorResponse(req, err(404, "not found: GET /api/v1/stats/{routes/NAME, flags, flags/KEY, endpoints}"));
}

void installStats(HttpServer& server, StatsSources sources, std::vector<ApiToken> tokens) {
  server.handlePrefix(http::verb::get, std::string(kStatsPrefix),
                      [sources = std::move(sources), tokens = std::move(tokens)](const Request& req) {
                        return statsEndpoint(req, sources, tokens);
                      });
}

}  // namespace fledge::admin
