// Rollouts: the resource (PUT/DELETE/POST actions under /api/v1/rollouts) and the controller that
// advances them every second (see admin/rollouts.hpp for the model).
#include <boost/json.hpp>
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "admin/api.hpp"
#include "admin/api_util.hpp"
#include "admin/json_edit.hpp"
#include "admin/webhook.hpp"
#include "proxy/log.hpp"
#include "rollout/histogram.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;
namespace json = boost::json;

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
  // The steps' weights are the canary's share of all traffic, the baseline takes the rest: any
  // other arm must be idle, or the weights could not sum to 100.
  for (const auto& a : *arms)
    if (&a != canary && &a != baseline && std::strtod(getMember(a, "weight").value_or("0").c_str(), nullptr) != 0)
      return (error = "arm \"" + unquote(getMember(a, "name").value_or("\"\"")) + "\" of route \"" + spec.route +
                      "\" has traffic: a rollout moves traffic between its canary and baseline arms only; set the other arms' weight to 0 first",
              false);
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


// The flag's JSON in `s`, if it has it.
std::optional<std::string> flagOf(const State& s, const std::string& key) {
  return getMember(getMember(s.flags, "flags").value_or("{}"), key);
}

bool setFlag(State& s, const std::string& key, const std::string& flag_json, std::string& error) {
  auto map = getMember(s.flags, "flags");
  if (!map || !getMember(*map, key)) return (error = "flag \"" + key + "\" no longer exists", false);
  auto updated = setMember(*map, key, flag_json);
  auto flags = updated ? setMember(s.flags, "flags", *updated) : std::nullopt;
  if (!flags) return (error = "flags document is unreadable", false);
  s.flags = std::move(*flags);
  return true;
}

enum class Decision { kStart, kStep, kRollback, kSuccess, kPause, kResume, kPromote, kAbort };
const char* decisionName(Decision d) {
  switch (d) {
    case Decision::kStart: return "start";
    case Decision::kStep: return "step";
    case Decision::kRollback: return "rollback";
    case Decision::kSuccess: return "success";
    case Decision::kPause: return "pause";
    case Decision::kResume: return "resume";
    case Decision::kPromote: return "promote";
    case Decision::kAbort: return "abort";
  }
  return "?";
}

// Applies what `st` says to the rollout's target in `s`: the step's weight while it runs; once it
// succeeded the route's baseline arm serves the canary's cluster (the flag's default variant is
// the rollout's variant, promotedFlag); once rolled back or aborted the canary gets nothing (the flag is as it
// was when the rollout started).
bool applyTarget(State& s, const RolloutSpec& spec, const RolloutStatus& st, std::string& error) {
  const bool succeeded = st.phase == RolloutPhase::kSucceeded;
  const bool reverted = st.phase == RolloutPhase::kRolledBack || st.phase == RolloutPhase::kAborted;
  if (!spec.isFlag()) return setArmWeights(s, spec, succeeded || reverted ? 0 : st.canary_weight, succeeded, error);
  if (reverted) return setFlag(s, spec.flag, st.flag_before, error);
  auto flag = succeeded ? promotedFlag(st.flag_before, spec.variant) : flagAtWeight(st.flag_before, spec.variant, st.canary_weight);
  if (!flag) return (error = "the flag's original state is unreadable", false);
  return setFlag(s, spec.flag, *flag, error);
}

// What a flag rollout compares its variant with: the flag's default variant when it started.
std::string baselineVariant(const RolloutStatus& st) {
  auto before = parseObject(st.flag_before);
  return before ? stringMember(*before, "defaultVariant") : std::string();
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : "; ") + s;
  return out;
}

}  // namespace

std::string AdminApi::rolloutView(const std::string& name, const std::string& stored) const {
  json::object view;
  view["name"] = name;
  auto rec = parseObject(stored);
  view["spec"] = rec && rec->contains("spec") ? rec->at("spec") : json::value();
  view["status"] = rec && rec->contains("status") ? rec->at("status") : json::value();
  auto rt = runtime_.find(name);
  if (rt != runtime_.end()) {
    if (view["status"].is_object()) view["status"].as_object()["waiting"] = rt->second.waiting;
    json::object analysis;
    analysis["canary"] = json::parse(countsJson(rt->second.total_canary, rt->second.spec.error_classes));
    analysis["baseline"] = json::parse(countsJson(rt->second.total_baseline, rt->second.spec.error_classes));
    json::array checks;
    for (const auto& c : rt->second.checks) {
      checks.push_back({{"name", c.name},
                        {"verdict", c.failed ? "fail" : "pass"},
                        {"alpha", c.alpha},
                        {"evidence", c.evidence},
                        {"threshold", c.threshold},
                        {"bound_ms", c.bound_ms},
                        {"canary", json::array{c.canary_x, c.canary_n}},
                        {"baseline", json::array{c.baseline_x, c.baseline_n}},
                        {"summary", c.summary()}});
    }
    analysis["checks"] = std::move(checks);
    view["analysis"] = std::move(analysis);
  }
  return json::serialize(view);
}

bool AdminApi::transition(const std::string& name, const RolloutSpec& spec, RolloutStatus status, const std::string& actor,
                          const std::string& why, const char* decision, Error& error) {
  State next = state_;
  auto it = findByName(next.rollouts, name);
  if (it == next.rollouts.end()) return (error = err(404, "no rollout \"" + name + "\""), false);
  const std::string before = it->second;
  std::string werr;
  if (!applyTarget(next, spec, status, werr)) {
    error = err(409, werr, "rollouts." + name);
    return false;
  }
  status.record(nowMs(), actor, why);
  const std::string after = "{\"spec\":" + getMember(it->second, "spec").value_or("null") + ",\"status\":" + status.toJson() + "}";
  it->second = after;
  auto snap = validate(next, error);
  if (!snap) return false;
  if (!commitInternal(std::move(next), std::move(snap), actor, "rollout " + std::string(decision), "rollouts/" + name, before, after,
                      error))
    return false;
  countDecision(name, decision);
  return true;
}

void AdminApi::countDecision(const std::string& rollout, const std::string& decision) {
  std::lock_guard lock(gauges_mu_);
  ++decisions_[{rollout, decision}];
}

void AdminApi::refreshRolloutGauges() {
  std::vector<RolloutGauge> gauges;
  for (const auto& [name, json] : state_.rollouts)
    if (auto st = RolloutStatus::fromJson(getMember(json, "status").value_or("{}")))
      gauges.push_back({name, st->phase, st->step, st->canary_weight});
  std::lock_guard lock(gauges_mu_);
  gauges_ = std::move(gauges);
}

std::vector<prometheus::MetricFamily> AdminApi::rolloutMetrics() const {
  using prometheus::MetricType;
  auto family = [](const char* name, const char* help, MetricType type) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
  };
  auto metric = [](std::initializer_list<std::pair<const char*, std::string>> labels, double value, bool counter) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : labels) m.label.push_back({k, v});
    (counter ? m.counter.value : m.gauge.value) = value;
    return m;
  };
  auto phase = family("fledge_rollout_phase", "1 for the phase each rollout is in, 0 for the others.", MetricType::Gauge);
  auto step = family("fledge_rollout_step", "The step each rollout is at (from 0).", MetricType::Gauge);
  auto weight = family("fledge_rollout_canary_weight", "The canary's weight (route arm or flag variant) in percent.", MetricType::Gauge);
  auto decisions = family("fledge_rollout_decisions_total", "Rollout transitions by rollout and decision.", MetricType::Counter);
  std::lock_guard lock(gauges_mu_);
  for (const auto& g : gauges_) {
    for (auto p : {RolloutPhase::kProgressing, RolloutPhase::kPaused, RolloutPhase::kSucceeded, RolloutPhase::kRolledBack, RolloutPhase::kAborted})
      phase.metric.push_back(metric({{"rollout", g.name}, {"phase", phaseName(p)}}, p == g.phase ? 1 : 0, false));
    step.metric.push_back(metric({{"rollout", g.name}}, double(g.step), false));
    weight.metric.push_back(metric({{"rollout", g.name}}, double(g.weight), false));
  }
  for (const auto& [key, n] : decisions_)
    decisions.metric.push_back(metric({{"rollout", key.first}, {"decision", key.second}}, double(n), true));
  return {std::move(phase), std::move(step), std::move(weight), std::move(decisions)};
}

std::optional<bool> AdminApi::runHooks(const std::string& name, RolloutRuntime& rt, RolloutWebhook::Type type, const std::string& key,
                                       const RolloutStatus& st, std::int64_t now) {
  if (!rt.spec.hasWebhooks(type)) return true;
  HookRound& round = rt.hooks;
  if (round.key == key && round.id != 0) {
    if (round.pending) return std::nullopt;
    if (round.failures.empty()) return true;
    if (type == RolloutWebhook::Type::kPreStep || now - round.finished_ms < 1000) return false;
  }
  round = HookRound{key, ++hook_rounds_, 0, {}, 0};
  if (!webhook_executor_) {
    round.failures.push_back("webhooks cannot run here (no executor)");
    round.finished_ms = now;
    return false;
  }
  const std::size_t target_step = st.step;
  json::object body{{"rollout", name},
                    {"type", type == RolloutWebhook::Type::kPreStep ? "pre-step" : "confirm"},
                    {"step", target_step},
                    {"weight", rt.spec.steps[target_step].weight},
                    {"phase", phaseName(st.phase)}};
  if (rt.spec.isFlag()) {
    body["flag"] = rt.spec.flag;
    body["variant"] = rt.spec.variant;
  } else {
    body["route"] = rt.spec.route;
    body["canary_arm"] = rt.spec.canary_arm;
    body["baseline_arm"] = rt.spec.baseline_arm;
  }
  body["canary"] = {{"requests", rt.total_canary.requests()}, {"errors", rt.total_canary.inClasses(rt.spec.error_classes)}};
  body["baseline"] = {{"requests", rt.total_baseline.requests()}, {"errors", rt.total_baseline.inClasses(rt.spec.error_classes)}};
  const std::string text = json::serialize(body);
  for (const auto& hook : rt.spec.webhooks) {
    if (hook.type != type) continue;
    ++round.pending;
    callWebhook(webhook_executor_, hook, text, [this, name, id = round.id, hook_name = hook.name](WebhookResult r) {
      auto it = runtime_.find(name);
      if (it == runtime_.end() || it->second.hooks.id != id) return;  // the rollout moved on
      HookRound& cur = it->second.hooks;
      if (!r.passed()) cur.failures.push_back(hook_name + ": " + r.describe());
      log::info("rollout webhook", {{"rollout", name}, {"webhook", hook_name}, {"result", r.describe()}});
      if (--cur.pending == 0) cur.finished_ms = nowMs();
    });
  }
  return std::nullopt;
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
    RolloutStatus st;
    if (spec->isFlag()) {
      auto flag = flagOf(state_, spec->flag);
      if (!flag) return errorResponse(req, err(400, "no flag \"" + spec->flag + "\"", "flag"));
      auto obj = parseObject(*flag);
      if (!obj) return errorResponse(req, err(500, "stored flag is unreadable"));
      if (stringMember(*obj, "state") != "ENABLED")
        return errorResponse(req, err(400, "flag \"" + spec->flag + "\" is not ENABLED: enable it before rolling out a variant", "flag"));
      auto variants = obj->find("variants");
      if (variants == obj->end() || !variants->value().is_object() || !variants->value().as_object().contains(spec->variant))
        return errorResponse(req, err(400, "flag \"" + spec->flag + "\" has no variant \"" + spec->variant + "\"", "variant"));
      const std::string def = stringMember(*obj, "defaultVariant");
      if (def.empty()) return errorResponse(req, err(400, "flag \"" + spec->flag + "\" has no defaultVariant to compare with", "flag"));
      if (def == spec->variant)
        return errorResponse(req, err(400, "\"" + spec->variant + "\" is already the flag's default variant", "variant"));
      if (auto other = activeRolloutOf(state_, RolloutTarget::kFlag, spec->flag))
        return errorResponse(req, err(409, "flag \"" + spec->flag + "\" is already under rollout \"" + *other + "\"", "flag"));
      st.flag_before = json::serialize(*obj);
    } else {
      if (findByName(state_.routes, spec->route) == state_.routes.end())
        return errorResponse(req, err(400, "no route \"" + spec->route + "\"", "route"));
      if (auto other = activeRolloutOf(state_, RolloutTarget::kRoute, spec->route))
        return errorResponse(req, err(409, "route \"" + spec->route + "\" is already under rollout \"" + *other + "\"", "route"));
    }
    // With pre-step webhooks the first step's weight waits for them; the canary starts at 0.
    st.entered = !spec->hasWebhooks(RolloutWebhook::Type::kPreStep);
    st.started_ms = st.step_started_ms = nowMs();
    st.canary_weight = st.entered ? spec->steps[0].weight : 0;
    State next = state_;
    std::string werr;
    if (!applyTarget(next, *spec, st, werr)) return errorResponse(req, err(400, werr, spec->isFlag() ? "flag" : "route"));
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
    countDecision(name, decisionName(Decision::kStart));
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
  Decision decision;
  std::string why = action + " by " + actor;
  if (action == "pause") {
    if (st.phase == RolloutPhase::kPaused) return errorResponse(req, err(409, "already paused"));
    st.phase = RolloutPhase::kPaused;
    decision = Decision::kPause;
  } else if (action == "resume") {
    if (st.phase != RolloutPhase::kPaused) return errorResponse(req, err(409, "not paused"));
    st.phase = RolloutPhase::kProgressing;
    decision = Decision::kResume;
  } else if (action == "promote") {  // a person's decision: the next step now, webhooks or not
    st.phase = RolloutPhase::kProgressing;
    decision = Decision::kPromote;
    if (!st.entered) {
      st.entered = true;
      st.canary_weight = spec->steps[st.step].weight;
      st.step_started_ms = nowMs();
    } else if (st.step + 1 < spec->steps.size()) {
      ++st.step;
      st.canary_weight = spec->steps[st.step].weight;
      st.step_started_ms = nowMs();
    } else {
      st.phase = RolloutPhase::kSucceeded;
      st.canary_weight = 0;
      st.finished_ms = nowMs();
    }
  } else if (action == "abort") {
    st.phase = RolloutPhase::kAborted;
    st.canary_weight = 0;
    st.finished_ms = nowMs();
    st.reason = why;
    decision = Decision::kAbort;
  } else {
    return errorResponse(req, err(404, "unknown action \"" + action + "\" (pause, resume, promote, abort)"));
  }
  Error e;
  if (!transition(name, *spec, st, actor, why, decisionName(decision), e)) return errorResponse(req, e);
  if (auto r = runtime_.find(name); r != runtime_.end() && decision == Decision::kPromote) r->second.step_canary_requests = 0;
  return jsonResponse(req, http::status::ok, rolloutView(name, findByName(state_.rollouts, name)->second), version_);
}

void AdminApi::tickRollouts() {
  // In a fleet only the leader judges and moves rollouts; one that becomes leader starts each
  // analysis afresh from the stored status.
  const bool driver = !is_driver_ || is_driver_();
  if (driver != was_driver_) runtime_.clear();
  was_driver_ = driver;
  if (!driver) return;
  const std::int64_t now = nowMs();
  const auto rollouts = state_.rollouts;  // transitions below replace state_
  for (const auto& [name, json_text] : rollouts) {
    auto status = RolloutStatus::fromJson(getMember(json_text, "status").value_or("{}"));
    if (!status || finished(status->phase)) continue;
    auto& rt = runtime_[name];
    if (!rt.analyzer) {  // first tick, or the first since a restart: the analysis starts afresh
      std::string e, f;
      auto spec = parseRolloutSpec(getMember(json_text, "spec").value_or("{}"), e, f);
      if (!spec) continue;
      rt.spec = std::move(*spec);
      rt.analyzer = std::make_unique<rollout::Analyzer>(rt.spec.analysis, rollout::latencyBoundsMs());
    }
    const CountsSource& source = rt.spec.isFlag() ? variant_counts_ : arm_counts_;
    if (!source) continue;
    const ArmCounts c = rt.spec.isFlag() ? source(rt.spec.flag, rt.spec.variant) : source(rt.spec.route, rt.spec.canary_arm);
    const ArmCounts b = rt.spec.isFlag() ? source(rt.spec.flag, baselineVariant(*status)) : source(rt.spec.route, rt.spec.baseline_arm);
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
    const std::string self = "rollout:" + name;
    auto rollBack = [&](std::string reason) {
      st.phase = RolloutPhase::kRolledBack;
      st.canary_weight = 0;
      st.finished_ms = now;
      st.reason = std::move(reason);
      rt.waiting.clear();
      if (!transition(name, rt.spec, st, self, st.reason, decisionName(Decision::kRollback), e))
        log::error("rollback not applied", {{"rollout", name}, {"error", e.message}});
      else
        log::warn("canary rolled back", {{"rollout", name}, {"why", st.reason}});
    };
    if (failed) {
      rollBack(rt.checks[*failed].summary());
      continue;
    }
    if (st.phase != RolloutPhase::kProgressing) {
      rt.waiting.clear();
      continue;
    }
    const std::string step_no = std::to_string(st.step);
    if (!st.entered) {  // the step's weight waits for its pre-step webhooks
      auto passed = runHooks(name, rt, RolloutWebhook::Type::kPreStep, "pre-step " + step_no, st, now);
      if (!passed) {
        rt.waiting = "pre-step webhooks of step " + step_no;
        continue;
      }
      if (!*passed) {
        rollBack("pre-step webhook failed before step " + step_no + ": " + joined(rt.hooks.failures));
        continue;
      }
      rt.waiting.clear();
      st.entered = true;
      st.canary_weight = rt.spec.steps[st.step].weight;
      st.step_started_ms = now;
      if (!transition(name, rt.spec, st, self, "step " + step_no + ": pre-step webhooks passed", decisionName(Decision::kStep), e))
        log::error("rollout step not applied", {{"rollout", name}, {"error", e.message}});
      else
        rt.step_canary_requests = 0;
      continue;
    }
    const auto& step = rt.spec.steps[st.step];
    if (now - st.step_started_ms < std::int64_t(step.hold_s) * 1000 || rt.step_canary_requests < step.min_requests) {
      rt.waiting.clear();
      continue;
    }
    auto confirmed = runHooks(name, rt, RolloutWebhook::Type::kConfirm, "confirm " + step_no, st, now);
    if (!confirmed || !*confirmed) {
      const std::string what = "confirm webhooks of step " + step_no;
      if (confirmed) rt.waiting = what + ": " + joined(rt.hooks.failures);
      else if (rt.waiting.rfind(what, 0) != 0) rt.waiting = what;  // while asking again, the last answer stays shown
      continue;
    }
    rt.waiting.clear();
    std::string why;
    Decision decision = Decision::kStep;
    if (st.step + 1 < rt.spec.steps.size()) {
      ++st.step;
      st.entered = !rt.spec.hasWebhooks(RolloutWebhook::Type::kPreStep);
      if (st.entered) st.canary_weight = rt.spec.steps[st.step].weight;
      st.step_started_ms = now;
      why = "step " + step_no + " held" + (st.entered ? "" : "; pre-step webhooks next");
    } else {
      st.phase = RolloutPhase::kSucceeded;
      st.canary_weight = 0;
      st.finished_ms = now;
      decision = Decision::kSuccess;
      why = rt.spec.isFlag() ? "every step held; the flag's default variant is now \"" + rt.spec.variant + "\""
                             : "every step held; the baseline arm now serves the canary's cluster";
    }
    if (!transition(name, rt.spec, st, self, why, decisionName(decision), e)) {
      log::error("rollout step not applied", {{"rollout", name}, {"error", e.message}});
      continue;
    }
    rt.step_canary_requests = 0;
  }
}

}  // namespace fledge::admin
