// Rollouts: the resource (PUT/DELETE/POST actions under /api/v1/rollouts) and the controller that
// advances them every second (see admin/rollouts.hpp for the model).
#include <simdjson.h>

#include <chrono>
#include <cstdio>

#include "admin/api.hpp"
#include "admin/api_util.hpp"
#include "admin/json_edit.hpp"
#include "proxy/log.hpp"
#include "rollout/histogram.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;

namespace {


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
