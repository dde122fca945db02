#include "admin/api.hpp"

#include <boost/json.hpp>
#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>

#include "admin/api_util.hpp"
#include "admin/json_edit.hpp"
#include "admin/ofrep.hpp"
#include "flags/flag_set.hpp"
#include "proxy/config.hpp"
#include "proxy/log.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;

namespace {

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
  // Flags under rollout have their responses counted per variant: the rollout judges by them.
  std::vector<std::string> observed;
  for (const auto& [name, json] : state.rollouts) {
    auto st = RolloutStatus::fromJson(getMember(json, "status").value_or("{}"));
    auto flag = getMember(getMember(json, "spec").value_or("{}"), "flag");
    if (st && !finished(st->phase) && flag) observed.push_back(*flag);
  }
  if (!observed.empty()) {
    std::string metrics = getMember(full, "metrics").value_or("{}");
    std::string list = getMember(metrics, "flag_outcomes").value_or("[]");
    list.pop_back();
    for (const auto& f : observed) list += (list.size() > 1 ? "," : "") + f;
    metrics = setMember(metrics, "flag_outcomes", list + "]").value_or(metrics);
    full = setMember(full, "metrics", metrics).value_or(full);
  }
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
  // A shared store may be seeded by another instance at the same moment: the loser loads what
  // the winner stored.
  for (int attempt = 0;; ++attempt) {
    auto stored = store_->load(error);
    if (!error.empty()) return nullptr;
    if (stored && !reseed) {
      if (!State::fromJson(stored->second, state_)) {
        error = "stored state is unreadable (corrupt store?)";
        return nullptr;
      }
      version_ = stored->first;
      refreshRolloutGauges();
      Error e;
      auto snap = validate(state_, e);
      if (!snap) error = "stored state is invalid: " + (e.field.empty() ? "" : e.field + ": ") + e.message;
      else store_->adopt(store_->loadedRevision());
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
    store_->adopt(store_->loadedRevision());  // (re)seeding replaces what was just loaded, nothing newer
    const CommitResult r = store_->commit(v, seeded.toJson(v), audit, error);
    if (r == CommitResult::kConflict && attempt < 3) {
      error.clear();
      reseed = false;  // another instance seeded (or reseeded) first: take its state
      continue;
    }
    if (r != CommitResult::kOk) return nullptr;
    state_ = std::move(seeded);
    version_ = v;
    return snap;
  }
}

bool AdminApi::applyStored(std::int64_t revision, const std::string& state_json, std::string& error) {
  if (revision != 0 && revision <= store_->revision()) return true;  // applied already (our own write, or seen)
  State next;
  if (!State::fromJson(state_json, next)) {
    error = "stored state is unreadable";
    return false;
  }
  const auto version = getMember(state_json, "version");
  Error e;
  auto snap = validate(next, e);
  if (!snap) {
    // Another instance validated it; a difference (e.g. a flag file only this one lacks) is
    // reported, and this instance keeps serving what it has.
    error = "stored state is invalid here: " + (e.field.empty() ? "" : e.field + ": ") + e.message;
    return false;
  }
  store_->adopt(revision);
  // A rollout changed elsewhere (paused, promoted, aborted on another instance) is judged
  // afresh from its stored status; the others keep their analysis.
  for (auto it = runtime_.begin(); it != runtime_.end();) {
    auto was = findByName(state_.rollouts, it->first);
    auto now = findByName(next.rollouts, it->first);
    const bool same = was != state_.rollouts.end() && now != next.rollouts.end() && was->second == now->second;
    it = same ? std::next(it) : runtime_.erase(it);
  }
  state_ = std::move(next);
  version_ = version ? std::strtoull(version->c_str(), nullptr, 10) : version_ + 1;
  refreshRolloutGauges();
  publish_(std::move(snap));
  log::info("config applied from the store", {{"version", std::to_string(version_)}, {"revision", std::to_string(revision)}});
  return true;
}

bool AdminApi::resync(std::string& error) {
  auto stored = store_->load(error);
  if (!error.empty() || !stored) return false;
  // Adopted only if it applies: a write is never made on a revision this instance does not serve.
  return applyStored(store_->loadedRevision(), stored->second, error);
}

namespace {

// `host[:port]` (a Host header, or an Origin without its scheme) without the port and brackets.
std::string_view hostName(std::string_view host_port) {
  if (!host_port.empty() && host_port.front() == '[') {
    const auto close = host_port.find(']');
    return close == std::string_view::npos ? host_port : host_port.substr(1, close - 1);
  }
  return host_port.substr(0, host_port.find(':'));
}

// Why a request to the tokenless admin API looks like a web page's forgery, or "".
std::string forgedByBrowser(const Request& req) {
  if (auto host = req.find(http::field::host); host != req.end() && !proxy::isLoopbackName(hostName(host->value())))
    return "without tokens the admin API answers only requests to a loopback name (Host: localhost or 127.0.0.1), "
           "not \"" + std::string(host->value()) + "\"";
  if (req.method() == http::verb::get || req.method() == http::verb::head) return "";  // a page cannot read the answer
  if (auto site = req.find("Sec-Fetch-Site"); site != req.end() && site->value() != "same-origin" && site->value() != "none")
    return "without tokens the admin API refuses writes from other sites (Sec-Fetch-Site: " + std::string(site->value()) + ")";
  if (auto origin = req.find(http::field::origin); origin != req.end()) {
    std::string_view o = origin->value();
    const auto scheme = o.find("://");
    auto host = req.find(http::field::host);
    if (scheme == std::string_view::npos || host == req.end() || !boost::beast::iequals(o.substr(scheme + 3), host->value()))
      return "without tokens the admin API refuses writes from another origin (" + std::string(o) + ")";
  }
  return "";
}

}  // namespace

Caller authenticateToken(const Request& req, const std::vector<ApiToken>& tokens) {
  static const ApiToken kLocal{"local", true, ""};
  if (tokens.empty()) {  // a loopback-only admin listener (enforced at startup)
    if (std::string why = forgedByBrowser(req); !why.empty()) return {nullptr, 403, std::move(why)};
    return {&kLocal, 0, {}};
  }
  Caller refused{nullptr, 401, "missing or unknown token"};
  auto auth = req.find(http::field::authorization);
  if (auth == req.end() || auth->value().size() <= 7 || !boost::beast::iequals(auth->value().substr(0, 7), "Bearer "))
    return refused;
  std::string_view presented = auth->value().substr(7);
  const ApiToken* found = nullptr;
  for (const auto& t : tokens)  // every token is compared, in constant time
    if (constantTimeEquals(presented, t.token)) found = &t;
  return found ? Caller{found, 0, {}} : refused;
}

Response logLevelEndpoint(const Request& req, const std::vector<ApiToken>& tokens) {
  const Caller caller = authenticateToken(req, tokens);
  if (!caller.token) return errorResponse(req, err(caller.status, caller.error));
  const ApiToken* who = caller.token;
  auto current = [&] { return "{\"level\":" + jsonQuote(std::string(log::levelName())) + "}"; };
  if (req.method() == http::verb::get) return jsonResponse(req, http::status::ok, current());
  if (req.method() != http::verb::put) return errorResponse(req, err(405, "method not allowed"));
  if (!who->write) return errorResponse(req, err(403, "token \"" + who->name + "\" may only read"));
  boost::system::error_code ec;
  auto body = boost::json::parse(req.body(), ec);
  const auto* obj = ec ? nullptr : body.if_object();
  const auto* level = obj && obj->size() == 1 ? obj->if_contains("level") : nullptr;
  if (!level || !level->is_string())
    return errorResponse(req, err(400, "body must be {\"level\": \"debug\" | \"info\" | \"warn\" | \"error\"}", "level"));
  const std::string before(log::levelName());
  if (!log::setLevel(std::string_view(level->get_string())))
    return errorResponse(req, err(400, "must be one of \"debug\", \"info\", \"warn\", \"error\"", "level"));
  log::warn("log level changed", {{"actor", who->name}, {"from", before}, {"to", std::string(log::levelName())}});
  return jsonResponse(req, http::status::ok, current());
}

void AdminApi::install(HttpServer& server) {
  for (auto verb : {http::verb::get, http::verb::put, http::verb::delete_, http::verb::post})
    // Writes sync the store and resolve names: off the thread that answers health and metrics.
    server.handlePrefix(verb, std::string(kPrefix), [this](const Request& req) { return handle(req); },
                        HttpServer::Runs::kWorkThread);
}

namespace {

// Flag files load the flagd way (a flag with bad targeting is kept and answers PARSE_ERROR); a
// flag written through the API must compile, against the state's $evaluators.
AdminApi::Error checkFlagStrictly(const std::string& flags_doc, const std::string& key, const std::string& def) {
  std::string doc = "{\"flags\":{" + jsonQuote(key) + ":" + def + "}";
  if (auto e = getMember(flags_doc, "$evaluators")) doc += ",\"$evaluators\":" + *e;
  doc += "}";
  std::vector<flags::FlagSetError> errors;
  if (flags::FlagSet::load({{"", doc}}, errors, flags::FlagSet::Strictness::kStrict) || errors.empty()) return {};
  return err(400, errors.front().message, errors.front().path);
}

}  // namespace

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
    if (auto r = activeRolloutOf(s, RolloutTarget::kRoute, name, true))
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
    if (auto r = activeRolloutOf(s, RolloutTarget::kFlag, name, true))
      return err(409, "flag \"" + name + "\" is under rollout \"" + *r + "\"; pause or abort it before changing the flag",
                 "flags." + name);
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
    if (after != "null") return checkFlagStrictly(s.flags, name, after);
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
  switch (store_->commit(v, next.toJson(v), audit, store_error)) {
    case CommitResult::kOk: break;
    case CommitResult::kConflict: {
      // Another instance of the fleet wrote first: take its state; handle() retries the write
      // against it unless the client sent If-Match.
      std::string e;
      if (!resync(e)) {
        // Its state does not apply here (e.g. a name that does not resolve on this host): no
        // write may be built on the older state this instance still serves.
        log::error("cannot take the fleet's newest state after a conflict", {{"error", e}});
        error = err(503, "the fleet's newest configuration does not apply on this instance (" + e + "); nothing was applied");
        return false;
      }
      conflict_ = true;
      error = err(412, "the configuration was changed by another instance (now version " + std::to_string(version_) + ")");
      return false;
    }
    case CommitResult::kUnavailable:
      log::error("admin write not stored: the store is unreachable", {{"error", store_error}});
      error = err(503, "the configuration store is unreachable (" + store_error + "); nothing was applied");
      return false;
    case CommitResult::kFailed:
      log::error("admin write not stored", {{"error", store_error}});
      error = err(500, "the change could not be stored; nothing was applied");
      return false;
  }
  state_ = std::move(next);
  version_ = v;
  refreshRolloutGauges();
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
  // A write that lost a race with another instance of the fleet (the store said kConflict) is
  // made again on the state that won, unless the client pinned the version with If-Match.
  const bool pinned = req.find(http::field::if_match) != req.end();
  for (int attempt = 0;; ++attempt) {
    conflict_ = false;
    Response res = handleOnce(req);
    if (!conflict_ || pinned || attempt == 4) return res;
  }
}

Response AdminApi::handleOnce(const Request& req) {
  const Caller caller = authenticateToken(req, tokens_);
  if (!caller.token) return errorResponse(req, err(caller.status, caller.error));
  const ApiToken* who = caller.token;
  std::string_view target = req.target();
  auto [path, query] = splitTarget(target);
  path.remove_prefix(kPrefix.size());
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  if (path == "log-level") return logLevelEndpoint(req, tokens_);
  if (path == "whoami") {
    // Who the console is signed in as, and whether this listener asks for tokens at all.
    if (req.method() != http::verb::get) return errorResponse(req, err(405, "method not allowed"));
    return jsonResponse(req, http::status::ok,
                        "{\"name\":" + jsonQuote(who->name) + ",\"write\":" + (who->write ? "true" : "false") +
                            ",\"tokens\":" + (tokens_.empty() ? "false" : "true") + "}");
  }
  const bool write = req.method() != http::verb::get && req.method() != http::verb::head;
  if (write && !who->write) return errorResponse(req, err(403, "token \"" + who->name + "\" may only read"));

  if (!write) {
    auto parts = splitPath(path);
    if (path == "config") return jsonResponse(req, http::status::ok, state_.toJson(version_), version_);
    if (path == "fleet") {
      if (!fleet_view_) return errorResponse(req, err(404, "not a fleet: this instance has no admin.store.etcd"));
      return jsonResponse(req, http::status::ok, fleet_view_(), version_);
    }
    if (path == "clusters") return jsonResponse(req, http::status::ok, "{\"clusters\":" + objectOf(state_.clusters) + "}", version_);
    if (path == "routes") return jsonResponse(req, http::status::ok, "{\"routes\":" + arrayOf(state_.routes) + "}", version_);
    if (path == "flags") return jsonResponse(req, http::status::ok, getMember(state_.flags, "flags").value_or("{}").insert(0, "{\"flags\":") + "}", version_);
    if (path == "audit") {
      std::uint64_t since = 0, limit = 100;
      if (Error e = numericParams(query, {{"since", &since}, {"limit", &limit}}); e.status) return errorResponse(req, e);
      limit = std::min<std::uint64_t>(limit, 1000);
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
