#include "admin/api.hpp"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "admin/json_edit.hpp"
#include "admin/ofrep.hpp"
#include "flags/flag_set.hpp"
#include "proxy/config.hpp"
#include "proxy/log.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kPrefix = "/api/v1/";

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

Response jsonResponse(const Request& req, http::status status, std::string body, std::uint64_t version = 0) {
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

AdminApi::Error err(unsigned status, std::string message, std::string field = {}) {
  return AdminApi::Error{status, std::move(message), std::move(field)};
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

auto findByName(std::vector<std::pair<std::string, std::string>>& v, std::string_view name) {
  return std::find_if(v.begin(), v.end(), [&](const auto& kv) { return kv.first == name; });
}

// Does this route object send traffic (or copies) to `cluster`?
bool routeUses(std::string_view route, std::string_view cluster) {
  simdjson::dom::parser p;
  simdjson::dom::element r;
  if (p.parse(route.data(), route.size()).get(r)) return false;
  std::string_view s;
  if (!r["cluster"].get_string().get(s) && s == cluster) return true;
  if (!r["mirror"]["cluster"].get_string().get(s) && s == cluster) return true;
  simdjson::dom::array arms;
  if (!r["split"]["arms"].get_array().get(arms))
    for (auto a : arms)
      if (!a["cluster"].get_string().get(s) && s == cluster) return true;
  return false;
}

// The rollout under way on `route` (progressing, or also paused), if any.
std::optional<std::string> activeRolloutOn(const State& s, std::string_view route, bool progressing_only = false) {
  for (const auto& [name, json] : s.rollouts) {
    auto st = RolloutStatus::fromJson(getMember(json, "status").value_or("{}"));
    if (!st || finished(st->phase) || (progressing_only && st->phase != RolloutPhase::kProgressing)) continue;
    if (unquote(getMember(getMember(json, "spec").value_or("{}"), "route").value_or("\"\"")) == route) return name;
  }
  return std::nullopt;
}

bool metricsEnabled(std::string_view config) {
  auto m = getMember(config, "metrics");
  return !m || getMember(*m, "enabled").value_or("true") != "false";
}

}  // namespace

std::string State::toJson(std::uint64_t version) const {
  return "{\"version\":" + std::to_string(version) + ",\"clusters\":" + objectOf(clusters) + ",\"routes\":" + arrayOf(routes) +
         ",\"flags\":" + flags + ",\"rollouts\":" + objectOf(rollouts) + "}";
}

bool State::fromJson(std::string_view json, State& out) {
  auto c = getMember(json, "clusters");
  auto r = getMember(json, "routes");
  auto f = getMember(json, "flags");
  if (!c || !r || !f) return false;
  auto cm = members(*c);
  auto re = elements(*r);
  if (!cm || !re) return false;
  out.clusters = std::move(*cm);
  out.routes.clear();
  for (auto& route : *re) {
    auto name = getMember(route, "name");
    if (!name) return false;
    out.routes.emplace_back(unquote(*name), std::move(route));
  }
  out.flags = std::move(*f);
  out.rollouts.clear();
  if (auto ro = getMember(json, "rollouts")) {  // absent in stores written before rollouts existed
    auto rm = members(*ro);
    if (!rm) return false;
    out.rollouts = std::move(*rm);
  }
  return true;
}

bool loadApiTokens(const std::string& file, const char* env_var, std::vector<ApiToken>& out, std::string& error) {
  auto add = [&](std::string line, const std::string& where) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty() || line[0] == '#') return true;
    auto a = line.find(':'), b = line.find(':', a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) {
      error = where + ": token lines are name:role:token";
      return false;
    }
    std::string role = line.substr(a + 1, b - a - 1);
    if (role != "read" && role != "write") {
      error = where + ": role must be read or write";
      return false;
    }
    out.push_back(ApiToken{line.substr(0, a), role == "write", line.substr(b + 1)});
    return !out.back().token.empty();
  };
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      error = "cannot read admin tokens file \"" + file + "\"";
      return false;
    }
    for (std::string line; std::getline(in, line);)
      if (!add(line, file)) return false;
  }
  if (const char* env = env_var ? std::getenv(env_var) : nullptr) {
    std::stringstream ss(env);
    for (std::string item; std::getline(ss, item, ',');)
      if (!add(item, env_var)) return false;
  }
  return true;
}

AdminApi::AdminApi(std::unique_ptr<Store> store, std::string config_json, std::string base_dir,
                   std::vector<ApiToken> tokens, Publish publish)
    : store_(std::move(store)),
      config_json_(std::move(config_json)),
      base_dir_(std::move(base_dir)),
      tokens_(std::move(tokens)),
      publish_(std::move(publish)) {
  std::string base = config_json_;
  for (const char* k : {"clusters", "routes", "flags", "flag_files"})
    if (auto b = removeMember(base, k)) base = *b;
  base_json_ = base;
}

std::string AdminApi::assemble(const State& state) const {
  std::string full = base_json_;
  full = setMember(full, "clusters", objectOf(state.clusters)).value_or(full);
  full = setMember(full, "routes", arrayOf(state.routes)).value_or(full);
  full = setMember(full, "flags", state.flags).value_or(full);
  return full;
}

State AdminApi::seedFromFile(std::string& error) const {
  State s;
  if (auto c = getMember(config_json_, "clusters"); c)
    if (auto m = members(*c)) s.clusters = std::move(*m);
  if (auto r = getMember(config_json_, "routes"); r)
    if (auto e = elements(*r))
      for (auto& route : *e) s.routes.emplace_back(unquote(getMember(route, "name").value_or("\"\"")), route);
  // Flags: the inline document and every flag file merged into one flagd document.
  std::vector<std::string> docs;
  if (auto f = getMember(config_json_, "flags")) docs.push_back(*f);
  if (auto files = getMember(config_json_, "flag_files"); files)
    if (auto list = elements(*files))
      for (const auto& q : *list) {
        std::string file = unquote(q);
        std::string full = !file.empty() && file[0] == '/' ? file : base_dir_ + "/" + file;
        std::ifstream in(full, std::ios::binary);
        if (!in) {
          error = "cannot read flag file \"" + full + "\"";
          return s;
        }
        std::stringstream ss;
        ss << in.rdbuf();
        docs.push_back(ss.str());
      }
  std::vector<std::pair<std::string, std::string>> all_flags, evaluators;
  std::optional<std::string> metadata;
  for (const auto& d : docs) {
    if (auto f = getMember(d, "flags"))
      if (auto m = members(*f)) all_flags.insert(all_flags.end(), m->begin(), m->end());
    if (auto e = getMember(d, "$evaluators"))
      if (auto m = members(*e)) evaluators.insert(evaluators.end(), m->begin(), m->end());
    if (!metadata) metadata = getMember(d, "metadata");
  }
  s.flags = "{\"flags\":" + objectOf(all_flags);
  if (!evaluators.empty()) s.flags += ",\"$evaluators\":" + objectOf(evaluators);
  if (metadata) s.flags += ",\"metadata\":" + *metadata;
  s.flags += "}";
  return s;
}

std::shared_ptr<const proxy::Snapshot> AdminApi::validate(const State& state, Error& e) const {
  auto r = proxy::parseConfig(assemble(state), base_dir_);
  if (!r.ok()) {
    const auto& first = r.errors.front();
    std::string field = first.path;
    // Name resources the way the API does: routes.<name>..., flags.<key>...
    if (field.rfind("routes[", 0) == 0) {
      auto close = field.find(']');
      std::size_t i = std::strtoul(field.c_str() + 7, nullptr, 10);
      if (close != std::string::npos && i < state.routes.size()) field = "routes." + state.routes[i].first + field.substr(close + 1);
    } else if (field.rfind("flags.flags.", 0) == 0) {
      field = field.substr(6);
    }
    e = err(400, first.message, field);
    return nullptr;
  }
  std::string resolve_error;
  auto snap = proxy::Snapshot::create(std::move(*r.config), resolve_error);
  if (!snap) e = err(400, resolve_error);
  return snap;
}

std::shared_ptr<const proxy::Snapshot> AdminApi::start(bool reseed, std::string& error) {
  auto stored = store_->load(error);
  if (!error.empty()) return nullptr;
  if (stored && !reseed) {
    if (!State::fromJson(stored->second, state_)) {
      error = "stored state is unreadable (corrupt store?)";
      return nullptr;
    }
    version_ = stored->first;
    Error e;
    auto snap = validate(state_, e);
    if (!snap) error = "stored state is invalid: " + (e.field.empty() ? "" : e.field + ": ") + e.message;
    return snap;
  }
  State seeded = seedFromFile(error);
  if (!error.empty()) return nullptr;
  Error e;
  auto snap = validate(seeded, e);
  if (!snap) {
    error = (e.field.empty() ? "" : e.field + ": ") + e.message;
    return nullptr;
  }
  std::uint64_t v = (stored ? stored->first : 0) + 1;
  std::string audit = "{\"seq\":" + std::to_string(v) + ",\"time\":" + jsonQuote(nowIso()) + ",\"actor\":" +
                      jsonQuote(reseed ? "reseed" : "seed") + ",\"action\":" + jsonQuote(reseed ? "reseed" : "seed") +
                      ",\"resource\":\"config\",\"before\":" + (stored ? stored->second : std::string("null")) +
                      ",\"after\":" + seeded.toJson(v) + "}";
  if (!store_->commit(v, seeded.toJson(v), audit, error)) return nullptr;
  state_ = std::move(seeded);
  version_ = v;
  return snap;
}

const ApiToken* AdminApi::authenticate(const Request& req) const {
  static const ApiToken kLocal{"local", true, ""};
  if (tokens_.empty()) return &kLocal;  // loopback-only admin without tokens (enforced at startup)
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || auth->value().size() <= 7 || !boost::beast::iequals(auth->value().substr(0, 7), "Bearer "))
    return nullptr;
  std::string_view presented = auth->value().substr(7);
  const ApiToken* found = nullptr;
  for (const auto& t : tokens_)  // every token is compared, in constant time
    if (constantTimeEquals(presented, t.token)) found = &t;
  return found;
}

void AdminApi::install(HttpServer& server) {
  for (auto verb : {http::verb::get, http::verb::put, http::verb::delete_, http::verb::post})
    // Writes sync the store and resolve names: off the thread that answers health and metrics.
    server.handlePrefix(verb, std::string(kPrefix), [this](const Request& req) { return handle(req); },
                        HttpServer::Runs::kWorkThread);
}

AdminApi::Error AdminApi::apply(State& s, std::string_view method, std::string_view path, std::string_view body,
                                std::string& resource, std::string& before, std::string& after) const {
  auto parts = splitPath(path);
  if (parts.size() < 2 || parts[1].empty()) return err(404, "not found");
  const std::string_view kind = parts[0];
  const std::string name(parts[1]);
  const std::string_view sub = parts.size() > 2 ? parts[2] : std::string_view{};
  if (parts.size() > 3) return err(404, "not found");
  resource = std::string(kind) + "/" + name;
  const bool put = method == "PUT", del = method == "DELETE";
  if (!put && !del) return err(405, "method not allowed");
  if (put) {
    if (std::string e = checkJson(body, "object"); !e.empty()) return err(400, e, "body");
  }

  if (kind == "clusters" && sub.empty()) {
    auto it = findByName(s.clusters, name);
    before = it != s.clusters.end() ? it->second : "null";
    if (del) {
      if (it == s.clusters.end()) return err(404, "no cluster \"" + name + "\"");
      for (const auto& [rname, route] : s.routes)
        if (routeUses(route, name)) return err(409, "cluster \"" + name + "\" is used by route \"" + rname + "\"", "clusters." + name);
      s.clusters.erase(it);
      after = "null";
      return {};
    }
    after = minified(body);
    if (it != s.clusters.end()) it->second = after;
    else {
      s.clusters.emplace_back(name, after);
      std::sort(s.clusters.begin(), s.clusters.end());
    }
    return {};
  }
  if (kind == "routes") {
    if (auto r = activeRolloutOn(s, name, true))
      return err(409, "route \"" + name + "\" is under rollout \"" + *r + "\"; pause or abort it before changing the route",
                 "routes." + name);
    auto it = findByName(s.routes, name);
    before = it != s.routes.end() ? it->second : "null";
    if (sub.empty()) {
      if (del) {
        if (it == s.routes.end()) return err(404, "no route \"" + name + "\"");
        s.routes.erase(it);
        after = "null";
        return {};
      }
      if (auto n = getMember(body, "name"); n && unquote(*n) != name)
        return err(400, "must match the route name in the path", "routes." + name + ".name");
      after = setMember(body, "name", jsonQuote(name)).value_or("");
      if (it != s.routes.end()) it->second = after;
      else s.routes.emplace_back(name, after);
      return {};
    }
    if (sub != "split" || !put) return sub == "split" ? err(405, "method not allowed") : err(404, "not found");
    if (it == s.routes.end()) return err(404, "no route \"" + name + "\"");
    auto split = getMember(it->second, "split");
    if (!split) return err(400, "route has no split", "routes." + name + ".split");
    auto body_members = members(body).value_or(std::vector<std::pair<std::string, std::string>>{});
    for (const auto& [k, v] : body_members)
      if (k != "arms") return err(400, "unknown field", "routes." + name + ".split." + k);
    auto given = getMember(body, "arms");
    auto given_arms = given ? elements(*given) : std::nullopt;
    if (!given_arms) return err(400, "must be an array of {name, weight}", "routes." + name + ".split.arms");
    auto arms = elements(getMember(*split, "arms").value_or("[]")).value_or(std::vector<std::string>{});
    for (std::size_t i = 0; i < given_arms->size(); ++i) {
      const std::string field = "routes." + name + ".split.arms[" + std::to_string(i) + "]";
      auto gm = members((*given_arms)[i]);
      if (!gm) return err(400, "must be an object {name, weight}", field);
      std::string arm_name;
      std::optional<std::string> weight;
      for (const auto& [k, v] : *gm) {
        if (k == "name") arm_name = unquote(v);
        else if (k == "weight") weight = v;
        else return err(400, "unknown field", field + "." + k);
      }
      if (!weight) return err(400, "is required", field + ".weight");
      if (std::string e = checkJson(*weight, "any"); !e.empty() || (*weight)[0] == '"' || (*weight)[0] == '{' || (*weight)[0] == '[')
        return err(400, "must be a number", field + ".weight");
      bool found = false;
      for (auto& arm : arms)
        if (unquote(getMember(arm, "name").value_or("\"\"")) == arm_name) {
          arm = setMember(arm, "weight", *weight).value_or(arm);
          found = true;
        }
      if (!found) return err(400, "unknown arm \"" + arm_name + "\"", field + ".name");
    }
    std::string arms_json = "[";
    for (std::size_t i = 0; i < arms.size(); ++i) arms_json += (i ? "," : "") + arms[i];
    arms_json += "]";
    std::string new_split = setMember(*split, "arms", arms_json).value_or(*split);
    it->second = setMember(it->second, "split", new_split).value_or(it->second);
    after = it->second;
    resource += "/split";
    return {};
  }
  if (kind == "flags") {
    std::string flag_map = getMember(s.flags, "flags").value_or("{}");
    auto current = getMember(flag_map, name);
    before = current.value_or("null");
    std::string updated;
    if (sub.empty()) {
      if (del) {
        if (!current) return err(404, "no flag \"" + name + "\"");
        flag_map = removeMember(flag_map, name).value_or(flag_map);
        after = "null";
      } else {
        after = minified(body);
        flag_map = setMember(flag_map, name, after).value_or(flag_map);
      }
    } else if ((sub == "state" || sub == "default-variant") && put) {
      if (!current) return err(404, "no flag \"" + name + "\"");
      const std::string field_name = sub == "state" ? "state" : "defaultVariant";
      auto bm = members(body).value_or(std::vector<std::pair<std::string, std::string>>{});
      if (bm.size() != 1 || bm[0].first != field_name)
        return err(400, "body must be {\"" + field_name + "\": ...}", "flags." + name + "." + field_name);
      after = setMember(*current, field_name, bm[0].second).value_or(*current);
      flag_map = setMember(flag_map, name, after).value_or(flag_map);
      resource += "/" + std::string(sub);
    } else {
      return sub == "state" || sub == "default-variant" ? err(405, "method not allowed") : err(404, "not found");
    }
    s.flags = setMember(s.flags, "flags", flag_map).value_or(s.flags);
    return {};
  }
  return err(404, "not found");
}

bool AdminApi::commitInternal(State next, std::shared_ptr<const proxy::Snapshot> snap, const std::string& actor,
                              const std::string& action, const std::string& resource, const std::string& before,
                              const std::string& after, Error& error) {
  const std::uint64_t v = version_ + 1;
  std::string audit = "{\"seq\":" + std::to_string(v) + ",\"time\":" + jsonQuote(nowIso()) + ",\"actor\":" + jsonQuote(actor) +
                      ",\"action\":" + jsonQuote(action) + ",\"resource\":" + jsonQuote(resource) + ",\"before\":" + before +
                      ",\"after\":" + after + "}";
  std::string store_error;
  if (!store_->commit(v, next.toJson(v), audit, store_error)) {
    log::error("admin write not stored", {{"error", store_error}});
    error = err(500, "the change could not be stored; nothing was applied");
    return false;
  }
  state_ = std::move(next);
  version_ = v;
  publish_(std::move(snap));
  log::info("config changed", {{"version", std::to_string(v)}, {"actor", actor}, {"action", action}});
  return true;
}

Response AdminApi::commitAndPublish(const Request& req, State next, std::shared_ptr<const proxy::Snapshot> snap,
                                    const std::string& actor, const std::string& action, const std::string& resource,
                                    const std::string& before, const std::string& after, const std::string& answer) {
  Error e;
  if (!commitInternal(std::move(next), std::move(snap), actor, action, resource, before, after, e)) return errorResponse(req, e);
  return jsonResponse(req, http::status::ok, answer, version_);
}

Response AdminApi::handle(const Request& req) {
  const ApiToken* who = authenticate(req);
  if (!who) return errorResponse(req, err(401, "missing or unknown token"));
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = target.size() > path.size() ? target.substr(path.size() + 1) : std::string_view{};
  path.remove_prefix(kPrefix.size());
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  const bool write = req.method() != http::verb::get && req.method() != http::verb::head;
  if (write && !who->write) return errorResponse(req, err(403, "token \"" + who->name + "\" may only read"));

  if (!write) {
    auto parts = splitPath(path);
    if (path == "config") return jsonResponse(req, http::status::ok, state_.toJson(version_), version_);
    if (path == "clusters") return jsonResponse(req, http::status::ok, "{\"clusters\":" + objectOf(state_.clusters) + "}", version_);
    if (path == "routes") return jsonResponse(req, http::status::ok, "{\"routes\":" + arrayOf(state_.routes) + "}", version_);
    if (path == "flags") return jsonResponse(req, http::status::ok, getMember(state_.flags, "flags").value_or("{}").insert(0, "{\"flags\":") + "}", version_);
    if (path == "audit") {
      std::uint64_t since = 0, limit = 100;
      std::string_view q = query;
      while (!q.empty()) {
        auto amp = q.find('&');
        std::string_view kv = q.substr(0, amp);
        auto eq = kv.find('=');
        std::string k(kv.substr(0, eq)), v(eq == std::string_view::npos ? "" : kv.substr(eq + 1));
        char* end = nullptr;
        unsigned long long n = std::strtoull(v.c_str(), &end, 10);
        if (v.empty() || *end) return errorResponse(req, err(400, "must be a number", k));
        if (k == "since") since = n;
        else if (k == "limit") limit = std::min<unsigned long long>(n, 1000);
        else return errorResponse(req, err(400, "unknown parameter", k));
        if (amp == std::string_view::npos) break;
        q = q.substr(amp + 1);
      }
      std::string store_error;
      auto entries = store_->audit(since, limit, store_error);
      if (!store_error.empty()) return errorResponse(req, err(500, store_error));
      std::string body = "{\"entries\":[";
      for (std::size_t i = 0; i < entries.size(); ++i) body += (i ? "," : "") + entries[i];
      return jsonResponse(req, http::status::ok, body + "]}", version_);
    }
    if (path == "rollouts") {
      std::string body = "{\"rollouts\":[";
      for (std::size_t i = 0; i < state_.rollouts.size(); ++i)
        body += (i ? "," : "") + rolloutView(state_.rollouts[i].first, state_.rollouts[i].second);
      return jsonResponse(req, http::status::ok, body + "]}", version_);
    }
    if (parts.size() == 2 && parts[0] == "rollouts") {
      auto it = findByName(state_.rollouts, parts[1]);
      if (it == state_.rollouts.end()) return errorResponse(req, err(404, "no rollout \"" + std::string(parts[1]) + "\""));
      return jsonResponse(req, http::status::ok, rolloutView(it->first, it->second), version_);
    }
    if (parts.size() == 2) {
      std::optional<std::string> found;
      if (parts[0] == "clusters") {
        auto it = findByName(state_.clusters, parts[1]);
        if (it != state_.clusters.end()) found = it->second;
      } else if (parts[0] == "routes") {
        auto it = findByName(state_.routes, parts[1]);
        if (it != state_.routes.end()) found = it->second;
      } else if (parts[0] == "flags") {
        found = getMember(getMember(state_.flags, "flags").value_or("{}"), parts[1]);
      }
      if (found) return jsonResponse(req, http::status::ok, *found, version_);
      return errorResponse(req, err(404, "not found"));
    }
    return errorResponse(req, err(404, "not found"));
  }

  // Optimistic concurrency: If-Match must name the current version.
  if (auto im = req.find(http::field::if_match); im != req.end() && im->value() != "*" &&
                                                 im->value() != "\"" + std::to_string(version_) + "\"")
    return errorResponse(req, err(412, "the configuration changed (now version " + std::to_string(version_) + ")"));

  if (path.rfind("rollouts/", 0) == 0) return handleRolloutWrite(req, who->name, path);
  const std::string action = std::string(req.method_string()) + " " + std::string(path.empty() ? "" : "/api/v1/") + std::string(path);
  Write w = prepareWrite(req.method_string(), path, req.body());
  if (w.error.status) return errorResponse(req, w.error);
  std::string answer = path == "batch" ? "{\"version\":" + std::to_string(version_ + 1) + "}" : (w.after == "null" ? "{}" : w.after);
  return commitAndPublish(req, std::move(w.next), std::move(w.snap), who->name, action, w.resource, w.before, w.after,
                          answer);
}

AdminApi::Write AdminApi::prepareWrite(std::string_view method, std::string_view path, std::string_view body) const {
  Write w;
  w.next = state_;
  auto fail = [&w](Error e) {
    w.error = std::move(e);
    return std::move(w);
  };
  if (path == "batch") {
    if (method != "POST") return fail(err(405, "method not allowed"));
    if (std::string e = checkJson(body, "object"); !e.empty()) return fail(err(400, e, "body"));
    auto bm = members(body).value_or(std::vector<std::pair<std::string, std::string>>{});
    for (const auto& [k, v] : bm)
      if (k != "operations") return fail(err(400, "unknown field", k));
    auto ops = elements(getMember(body, "operations").value_or(""));
    if (!ops || ops->empty()) return fail(err(400, "must be a non-empty array", "operations"));
    std::string befores = "[", afters = "[", resources;
    for (std::size_t i = 0; i < ops->size(); ++i) {
      const std::string field = "operations[" + std::to_string(i) + "]";
      auto om = members((*ops)[i]);
      if (!om) return fail(err(400, "must be an object {method, path, body}", field));
      std::string op_method, op_path, op_body = "{}";
      for (const auto& [k, v] : *om) {
        if (k == "method") op_method = unquote(v);
        else if (k == "path") op_path = unquote(v);
        else if (k == "body") op_body = v;
        else return fail(err(400, "unknown field", field + "." + k));
      }
      if (op_path.rfind(std::string(kPrefix), 0) != 0) return fail(err(400, "must start with /api/v1/", field + ".path"));
      if (op_method != "PUT" && op_method != "DELETE") return fail(err(400, "must be PUT or DELETE", field + ".method"));
      std::string r, b, a;
      Error e = apply(w.next, op_method, std::string_view(op_path).substr(kPrefix.size()), op_body, r, b, a);
      if (e.status) {
        e.message = field + ": " + e.message;
        return fail(std::move(e));
      }
      befores += (i ? "," : "") + b;
      afters += (i ? "," : "") + a;
      resources += (i ? "," : "") + r;
    }
    w.resource = resources;
    w.before = befores + "]";
    w.after = afters + "]";
  } else {
    Error e = apply(w.next, method, path, body, w.resource, w.before, w.after);
    if (e.status) return fail(std::move(e));
  }
  Error e;
  w.snap = validate(w.next, e);
  if (!w.snap) return fail(std::move(e));
  return w;
}

}  // namespace fledge::admin

// ---------------------------------------------------------------------------------------------
// Rollouts: the resource and the controller (see admin/rollouts.hpp).

namespace fledge::admin {
namespace {

std::int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Sets the canary and baseline arms' weights on the route (and swaps their clusters).
bool setArmWeights(State& s, const RolloutSpec& spec, unsigned canary_weight, bool swap_clusters, std::string& error) {
  auto it = findByName(s.routes, spec.route);
  if (it == s.routes.end()) return (error = "route \"" + spec.route + "\" no longer exists", false);
  auto split = getMember(it->second, "split");
  auto arms = elements(split ? getMember(*split, "arms").value_or("") : "");
  if (!arms) return (error = "route \"" + spec.route + "\" no longer has a split", false);
  std::string* canary = nullptr;
  std::string* baseline = nullptr;
  for (auto& a : *arms) {
    const std::string n = unquote(getMember(a, "name").value_or("\"\""));
    if (n == spec.canary_arm) canary = &a;
    if (n == spec.baseline_arm) baseline = &a;
  }
  if (!canary || !baseline) return (error = "the route's split no longer has arms \"" + spec.canary_arm + "\" and \"" + spec.baseline_arm + "\"", false);
  if (swap_clusters) {
    auto cc = getMember(*canary, "cluster").value_or("\"\"");
    auto bc = getMember(*baseline, "cluster").value_or("\"\"");
    *canary = setMember(*canary, "cluster", bc).value_or(*canary);
    *baseline = setMember(*baseline, "cluster", cc).value_or(*baseline);
  }
  *canary = setMember(*canary, "weight", std::to_string(canary_weight)).value_or(*canary);
  *baseline = setMember(*baseline, "weight", std::to_string(100 - canary_weight)).value_or(*baseline);
  std::string arr = "[";
  for (std::size_t i = 0; i < arms->size(); ++i) arr += (i ? "," : "") + (*arms)[i];
  arr += "]";
  it->second = setMember(it->second, "split", setMember(*split, "arms", arr).value_or(*split)).value_or(it->second);
  return true;
}

std::string countsJson(const ArmCounts& c, const std::vector<unsigned>& error_classes) {
  const std::uint64_t errors = c.inClasses(error_classes);
  const std::vector<std::uint64_t> hist(c.latency.begin(), c.latency.end());
  auto ms = [&](double q) { return 1e3 * rollout::histogramQuantile(hist, rollout::kLatencyBoundsUs, q); };
  char buf[160];
  std::snprintf(buf, sizeof buf, ",\"p50_ms\":%.4g,\"p90_ms\":%.4g,\"p99_ms\":%.4g}", ms(0.5), ms(0.9), ms(0.99));
  return "{\"requests\":" + std::to_string(c.requests()) + ",\"errors\":" + std::to_string(errors) + buf;
}

ArmCounts minus(const ArmCounts& a, const ArmCounts& b) {
  ArmCounts d;
  // A counter that went backwards means the arm was removed and added again: count from zero.
  if (a.requests() < b.requests()) return a;
  for (std::size_t i = 0; i < 5; ++i) d.by_class[i] = a.by_class[i] >= b.by_class[i] ? a.by_class[i] - b.by_class[i] : 0;
  for (std::size_t i = 0; i < d.latency.size(); ++i) d.latency[i] = a.latency[i] >= b.latency[i] ? a.latency[i] - b.latency[i] : 0;
  return d;
}

void add(ArmCounts& a, const ArmCounts& b) {
  for (std::size_t i = 0; i < 5; ++i) a.by_class[i] += b.by_class[i];
  for (std::size_t i = 0; i < a.latency.size(); ++i) a.latency[i] += b.latency[i];
}

rollout::ArmInterval interval(const ArmCounts& d, const std::vector<unsigned>& error_classes) {
  rollout::ArmInterval out;
  out.requests = d.requests();
  out.errors = d.inClasses(error_classes);
  out.latency.assign(d.latency.begin(), d.latency.end());
  return out;
}

}  // namespace

std::string AdminApi::rolloutView(const std::string& name, const std::string& stored) const {
  std::string out = "{\"name\":" + jsonQuote(name) + ",\"spec\":" + getMember(stored, "spec").value_or("null") +
                    ",\"status\":" + getMember(stored, "status").value_or("null");
  auto rt = runtime_.find(name);
  if (rt != runtime_.end()) {
    out += ",\"analysis\":{\"canary\":" + countsJson(rt->second.total_canary, rt->second.spec.error_classes) +
           ",\"baseline\":" + countsJson(rt->second.total_baseline, rt->second.spec.error_classes) + ",\"checks\":[";
    for (std::size_t i = 0; i < rt->second.checks.size(); ++i) {
      const auto& c = rt->second.checks[i];
      char buf[200];
      std::snprintf(buf, sizeof buf, ",\"alpha\":%.6g,\"evidence\":%.4g,\"threshold\":%.4g,\"bound_ms\":%.4g", c.alpha, c.evidence,
                    c.threshold, c.bound_ms);
      out += std::string(i ? "," : "") + "{\"name\":" + jsonQuote(c.name) + buf + ",\"verdict\":" + (c.failed ? "\"fail\"" : "\"pass\"") +
             ",\"canary\":[" + std::to_string(c.canary_x) + "," + std::to_string(c.canary_n) + "],\"baseline\":[" +
             std::to_string(c.baseline_x) + "," + std::to_string(c.baseline_n) + "],\"summary\":" + jsonQuote(c.summary()) + "}";
    }
    out += "]}";
  }
  return out + "}";
}

bool AdminApi::transition(const std::string& name, const RolloutSpec& spec, RolloutStatus status, const std::string& actor,
                          const std::string& why, bool swap_clusters, Error& error) {
  State next = state_;
  auto it = findByName(next.rollouts, name);
  std::string before = it != next.rollouts.end() ? it->second : "null";
  std::string werr;
  if (!setArmWeights(next, spec, status.canary_weight, swap_clusters, werr)) {
    error = err(409, werr, "rollouts." + name);
    return false;
  }
  status.record(nowMs(), actor, why);
  const std::string spec_json = it != next.rollouts.end() ? getMember(it->second, "spec").value_or("null") : "null";
  std::string after = "{\"spec\":" + spec_json + ",\"status\":" + status.toJson() + "}";
  if (it != next.rollouts.end()) it->second = after;
  auto snap = validate(next, error);
  if (!snap) return false;
  return commitInternal(std::move(next), std::move(snap), actor, "rollout " + std::string(phaseName(status.phase)), "rollouts/" + name,
                        before, after, error);
}

Response AdminApi::handleRolloutWrite(const Request& req, const std::string& actor, std::string_view path) {
  auto parts = splitPath(path);
  if (parts.size() < 2 || parts.size() > 3 || parts[1].empty()) return errorResponse(req, err(404, "not found"));
  const std::string name(parts[1]);
  if (!flags::isValidName(name)) return errorResponse(req, err(400, "rollout names are 1-128 of [A-Za-z0-9._-]", "name"));
  const auto method = req.method();
  auto it = findByName(state_.rollouts, name);
  std::optional<RolloutStatus> status;
  if (it != state_.rollouts.end()) status = RolloutStatus::fromJson(getMember(it->second, "status").value_or("{}"));

  if (parts.size() == 2 && method == http::verb::put) {
    if (status && !finished(status->phase))
      return errorResponse(req, err(409, "rollout \"" + name + "\" is " + phaseName(status->phase) + "; abort it first"));
    std::string perr, pfield;
    auto spec = parseRolloutSpec(req.body(), perr, pfield);
    if (!spec) return errorResponse(req, err(400, perr, pfield));
    if (!metricsEnabled(base_json_)) return errorResponse(req, err(409, "rollouts judge canaries by their metrics: metrics.enabled is false"));
    auto rit = findByName(state_.routes, spec->route);
    if (rit == state_.routes.end()) return errorResponse(req, err(400, "no route \"" + spec->route + "\"", "route"));
    if (auto other = activeRolloutOn(state_, spec->route))
      return errorResponse(req, err(409, "route \"" + spec->route + "\" is already under rollout \"" + *other + "\"", "route"));
    State next = state_;
    std::string werr;
    if (!setArmWeights(next, *spec, spec->steps[0].weight, false, werr)) return errorResponse(req, err(400, werr, "route"));
    RolloutStatus st;
    st.started_ms = st.step_started_ms = nowMs();
    st.canary_weight = spec->steps[0].weight;
    st.record(st.started_ms, actor, "started");
    const std::string before = it != state_.rollouts.end() ? it->second : "null";
    const std::string after = "{\"spec\":" + minified(req.body()) + ",\"status\":" + st.toJson() + "}";
    auto nit = findByName(next.rollouts, name);
    if (nit != next.rollouts.end()) nit->second = after;
    else next.rollouts.emplace_back(name, after);
    Error e;
    auto snap = validate(next, e);
    if (!snap) return errorResponse(req, e);
    if (!commitInternal(std::move(next), std::move(snap), actor, "PUT /api/v1/rollouts/" + name, "rollouts/" + name, before, after, e))
      return errorResponse(req, e);
    RolloutRuntime rt;
    rt.spec = std::move(*spec);
    runtime_[name] = std::move(rt);
    return jsonResponse(req, http::status::ok, rolloutView(name, findByName(state_.rollouts, name)->second), version_);
  }
  if (!status) return errorResponse(req, err(404, "no rollout \"" + name + "\""));
  if (parts.size() == 2 && method == http::verb::delete_) {
    if (!finished(status->phase))
      return errorResponse(req, err(409, "rollout \"" + name + "\" is " + phaseName(status->phase) + "; only a finished rollout can be deleted"));
    State next = state_;
    const std::string before = it->second;
    next.rollouts.erase(findByName(next.rollouts, name));
    Error e;
    auto snap = validate(next, e);
    if (!snap || !commitInternal(std::move(next), std::move(snap), actor, "DELETE /api/v1/rollouts/" + name, "rollouts/" + name, before,
                                 "null", e))
      return errorResponse(req, e);
    runtime_.erase(name);
    return jsonResponse(req, http::status::ok, "{}", version_);
  }
  if (parts.size() != 3 || method != http::verb::post) return errorResponse(req, err(405, "method not allowed"));
  const std::string action(parts[2]);
  std::string serr, sfield;
  auto spec = parseRolloutSpec(getMember(it->second, "spec").value_or("{}"), serr, sfield);
  if (!spec) return errorResponse(req, err(500, "stored rollout is unreadable: " + serr));
  if (finished(status->phase)) return errorResponse(req, err(409, "rollout \"" + name + "\" is " + phaseName(status->phase)));
  RolloutStatus st = *status;
  bool swap = false;
  std::string why = action + " by " + actor;
  if (action == "pause") {
    if (st.phase == RolloutPhase::kPaused) return errorResponse(req, err(409, "already paused"));
    st.phase = RolloutPhase::kPaused;
  } else if (action == "resume") {
    if (st.phase != RolloutPhase::kPaused) return errorResponse(req, err(409, "not paused"));
    st.phase = RolloutPhase::kProgressing;
  } else if (action == "promote") {
    st.phase = RolloutPhase::kProgressing;
    if (st.step + 1 < spec->steps.size()) {
      ++st.step;
      st.canary_weight = spec->steps[st.step].weight;
      st.step_started_ms = nowMs();
    } else {
      st.phase = RolloutPhase::kSucceeded;
      st.canary_weight = 0;
      st.finished_ms = nowMs();
      swap = true;
    }
  } else if (action == "abort") {
    st.phase = RolloutPhase::kAborted;
    st.canary_weight = 0;
    st.finished_ms = nowMs();
    st.reason = why;
  } else {
    return errorResponse(req, err(404, "unknown action \"" + action + "\" (pause, resume, promote, abort)"));
  }
  Error e;
  if (!transition(name, *spec, st, actor, why, swap, e)) return errorResponse(req, e);
  if (auto r = runtime_.find(name); r != runtime_.end() && action == "promote") r->second.step_canary_requests = 0;
  return jsonResponse(req, http::status::ok, rolloutView(name, findByName(state_.rollouts, name)->second), version_);
}

void AdminApi::tickRollouts() {
  if (!arm_counts_) return;
  const std::int64_t now = nowMs();
  const auto rollouts = state_.rollouts;  // transitions below replace state_
  for (const auto& [name, json] : rollouts) {
    auto status = RolloutStatus::fromJson(getMember(json, "status").value_or("{}"));
    if (!status || finished(status->phase)) continue;
    auto& rt = runtime_[name];
    if (!rt.analyzer) {  // first tick, or the first since a restart: the analysis starts afresh
      std::string e, f;
      auto spec = parseRolloutSpec(getMember(json, "spec").value_or("{}"), e, f);
      if (!spec) continue;
      rt.spec = std::move(*spec);
      rt.analyzer = std::make_unique<rollout::Analyzer>(rt.spec.analysis, rollout::latencyBoundsMs());
    }
    const ArmCounts c = arm_counts_(rt.spec.route, rt.spec.canary_arm);
    const ArmCounts b = arm_counts_(rt.spec.route, rt.spec.baseline_arm);
    if (!rt.primed) {
      rt.last_canary = c;
      rt.last_baseline = b;
      rt.primed = true;
      continue;
    }
    const ArmCounts dc = minus(c, rt.last_canary), db = minus(b, rt.last_baseline);
    rt.last_canary = c;
    rt.last_baseline = b;
    add(rt.total_canary, dc);
    add(rt.total_baseline, db);
    rt.step_canary_requests += dc.requests();
    auto failed = rt.analyzer->observe(interval(dc, rt.spec.error_classes), interval(db, rt.spec.error_classes));
    rt.checks = rt.analyzer->status();
    RolloutStatus st = *status;
    Error e;
    if (failed) {
      st.phase = RolloutPhase::kRolledBack;
      st.canary_weight = 0;
      st.finished_ms = now;
      st.reason = rt.checks[*failed].summary();
      if (!transition(name, rt.spec, st, "rollout:" + name, st.reason, false, e))
        log::error("rollback not applied", {{"rollout", name}, {"error", e.message}});
      else
        log::warn("canary rolled back", {{"rollout", name}, {"why", st.reason}});
      continue;
    }
    if (st.phase != RolloutPhase::kProgressing) continue;
    const auto& step = rt.spec.steps[st.step];
    if (now - st.step_started_ms < std::int64_t(step.hold_s) * 1000 || rt.step_canary_requests < step.min_requests) continue;
    std::string why;
    bool swap = false;
    if (st.step + 1 < rt.spec.steps.size()) {
      ++st.step;
      st.canary_weight = rt.spec.steps[st.step].weight;
      st.step_started_ms = now;
      why = "step " + std::to_string(st.step - 1) + " held";
    } else {
      st.phase = RolloutPhase::kSucceeded;
      st.canary_weight = 0;
      st.finished_ms = now;
      swap = true;
      why = "every step held; the baseline arm now serves the canary's cluster";
    }
    if (!transition(name, rt.spec, st, "rollout:" + name, why, swap, e)) {
      log::error("rollout step not applied", {{"rollout", name}, {"error", e.message}});
      continue;
    }
    rt.step_canary_requests = 0;
  }
}

}  // namespace fledge::admin
