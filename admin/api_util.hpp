#pragma once
// Helpers shared by the admin API's handlers (admin/api.cpp) and the rollout controller
// (admin/rollout_controller.cpp): answers, errors, paths and the JSON texts of the State.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/api.hpp"

namespace fledge::admin {

inline constexpr std::string_view kPrefix = "/api/v1/";

// The string a JSON string literal holds ("" when `json` is not one).
std::string unquote(std::string_view json);
// `text` is known to be valid JSON: its minified form.
std::string minified(std::string_view text);
std::string objectOf(const std::vector<std::pair<std::string, std::string>>& m);  // {"name": value, ...}
std::string arrayOf(const std::vector<std::pair<std::string, std::string>>& m);   // [value, ...]
std::string nowIso();
std::int64_t nowMs();  // Unix time

// A JSON answer; with `version`, tagged with it as the ETag.
Response jsonResponse(const Request& req, boost::beast::http::status status, std::string body, std::uint64_t version = 0);
Response errorResponse(const Request& req, const AdminApi::Error& e);  // {"error": ..., "field": ...}
AdminApi::Error err(unsigned status, std::string message, std::string field = {});

std::vector<std::string_view> splitPath(std::string_view path);
// A request target's path and query (without the "?").
std::pair<std::string_view, std::string_view> splitTarget(std::string_view target);
// A query string of numeric parameters (`since=3&limit=50`) into the given slots; an unknown name
// or a value that is not a number is a 400 naming the parameter (status 0: all good).
AdminApi::Error numericParams(std::string_view query, std::initializer_list<std::pair<std::string_view, std::uint64_t*>> params);
inline auto findByName(std::vector<std::pair<std::string, std::string>>& v, std::string_view name) {
  return std::find_if(v.begin(), v.end(), [&](const auto& kv) { return kv.first == name; });
}

// The rollout under way on the route or flag named `target` (progressing, or also paused), if any.
enum class RolloutTarget { kRoute, kFlag };
std::optional<std::string> activeRolloutOf(const State& s, RolloutTarget kind, std::string_view target, bool progressing_only = false);
bool metricsEnabled(std::string_view config);

}  // namespace fledge::admin
