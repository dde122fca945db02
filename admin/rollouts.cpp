#include "admin/rollouts.hpp"

#include <boost/json.hpp>
#include <simdjson.h>

#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>

#include "admin/api.hpp"
#include "admin/json_edit.hpp"
#include "admin/metrics.hpp"
#include "flags/flag_set.hpp"
#include "proxy/log.hpp"
#include "rollout/histogram.hpp"

namespace fledge::admin {

const char* phaseName(RolloutPhase p) {
  switch (p) {
    case RolloutPhase::kProgressing: return "progressing";
    case RolloutPhase::kPaused: return "paused";
    case RolloutPhase::kSucceeded: return "succeeded";
    case RolloutPhase::kRolledBack: return "rolled_back";
    case RolloutPhase::kAborted: return "aborted";
  }
  return "?";
}

std::optional<RolloutPhase> phaseFromName(std::string_view s) {
  for (auto p : {RolloutPhase::kProgressing, RolloutPhase::kPaused, RolloutPhase::kSucceeded, RolloutPhase::kRolledBack,
                 RolloutPhase::kAborted})
    if (s == phaseName(p)) return p;
  return std::nullopt;
}

namespace {

using simdjson::dom::element;

bool fail(std::string& error, std::string& field, std::string e, std::string f) {
  error = std::move(e);
  field = std::move(f);
  return false;
}

bool number(element e, double& out) {
  if (e.is_double()) return !e.get_double().get(out);
  std::int64_t i;
  if (!e.get_int64().get(i)) {
    out = double(i);
    return true;
  }
  std::uint64_t u;
  if (!e.get_uint64().get(u)) {
    out = double(u);
    return true;
  }
  return false;
}

bool parseAnalysis(element a, RolloutSpec& spec, std::string& error, std::string& field) {
  simdjson::dom::object obj;
  if (a.get_object().get(obj)) return fail(error, field, "must be an object", "analysis");
  auto& cfg = spec.analysis;
  for (auto [k, v] : obj) {
    const std::string f = "analysis." + std::string(k);
    double d;
    if (k == "false_rollback") {
      if (!number(v, d) || !(d > 0 && d <= 0.5)) return fail(error, field, "must be a probability in (0, 0.5]", f);
      cfg.false_rollback = d;
    } else if (k == "errors") {
      simdjson::dom::object eo;
      if (v.get_object().get(eo)) return fail(error, field, "must be an object", f);
      for (auto [ek, ev] : eo) {
        const std::string ef = f + "." + std::string(ek);
        if (ek == "compare") {
          bool b;
          if (ev.get_bool().get(b)) return fail(error, field, "must be true or false", ef);
          cfg.errors_compare = b;
        } else if (ek == "max_ratio") {
          if (!number(ev, d) || !(d >= 1 && d <= 100)) return fail(error, field, "must be a number from 1 to 100", ef);
          cfg.errors_max_ratio = d;
        } else if (ek == "max_rate") {
          if (!number(ev, d) || !(d >= 0 && d < 1)) return fail(error, field, "must be a rate in [0, 1) (0: off)", ef);
          cfg.errors_max_rate = d;
        } else if (ek == "statuses") {
          simdjson::dom::array arr;
          if (ev.get_array().get(arr) || arr.size() == 0) return fail(error, field, "must be a non-empty array of \"4xx\" or \"5xx\"", ef);
          spec.error_classes.clear();
          for (auto s : arr) {
            std::string_view sv;
            if (s.get_string().get(sv) || (sv != "4xx" && sv != "5xx")) return fail(error, field, "must be \"4xx\" or \"5xx\"", ef);
            spec.error_classes.push_back(sv == "4xx" ? 4 : 5);
          }
        } else {
          return fail(error, field, "unknown field", ef);
        }
      }
    } else if (k == "latency") {
      simdjson::dom::object lo;
      if (v.get_object().get(lo)) return fail(error, field, "must be an object", f);
      for (auto [lk, lv] : lo) {
        const std::string lf = f + "." + std::string(lk);
        if (lk == "quantiles") {
          simdjson::dom::array arr;
          if (lv.get_array().get(arr) || arr.size() > 4) return fail(error, field, "must be an array of at most 4 quantiles", lf);
          cfg.latency_quantiles.clear();
          for (auto q : arr) {
            if (!number(q, d) || !(d > 0 && d < 1)) return fail(error, field, "quantiles must be in (0, 1)", lf);
            cfg.latency_quantiles.push_back(d);
          }
        } else if (lk == "min_shift_ms") {
          if (!number(lv, d) || !(d >= 0 && d <= 60000)) return fail(error, field, "must be milliseconds from 0 to 60000", lf);
          cfg.latency_min_shift_ms = d;
        } else if (lk == "max_ratio") {
          if (!number(lv, d) || !(d >= 1 && d <= 100)) return fail(error, field, "must be a number from 1 to 100", lf);
          cfg.latency_max_ratio = d;
        } else if (lk == "p50_max_ms" || lk == "p99_max_ms") {
          const double top = rollout::kLatencyBoundsUs.back() / 1000.0;
          if (!number(lv, d) || !(d >= 0 && d <= top))
            return fail(error, field, "must be milliseconds from 0 (off) to " + std::to_string(int(top)), lf);
          (lk == "p50_max_ms" ? cfg.p50_max_ms : cfg.p99_max_ms) = d;
        } else {
          return fail(error, field, "unknown field", lf);
        }
      }
    } else {
      return fail(error, field, "unknown field", f);
    }
  }
  return true;
}

bool parseSteps(element v, RolloutSpec& spec, std::string& error, std::string& field) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) || arr.size() == 0 || arr.size() > 100) return fail(error, field, "must be an array of 1 to 100 steps", "steps");
  std::size_t i = 0;
  for (auto st : arr) {
    const std::string sf = "steps[" + std::to_string(i++) + "]";
    simdjson::dom::object so;
    if (st.get_object().get(so)) return fail(error, field, "must be an object {weight, hold_s, min_requests}", sf);
    RolloutStep step;
    bool have_weight = false;
    for (auto [sk, sv] : so) {
      std::uint64_t u;
      const std::string skf = sf + "." + std::string(sk);
      if (sv.get_uint64().get(u)) return fail(error, field, "must be a whole number", skf);
      if (sk == "weight") {
        if (u > 100) return fail(error, field, "must be a percentage from 0 to 100", skf);
        step.weight = unsigned(u);
        have_weight = true;
      } else if (sk == "hold_s") {
        if (u > 30 * 86400) return fail(error, field, "must be at most 30 days", skf);
        step.hold_s = u;
      } else if (sk == "min_requests") {
        step.min_requests = u;
      } else {
        return fail(error, field, "unknown field", skf);
      }
    }
    if (!have_weight) return fail(error, field, "is required", sf + ".weight");
    if (!spec.steps.empty() && step.weight < spec.steps.back().weight)
      return fail(error, field, "weights must not decrease from step to step", sf + ".weight");
    spec.steps.push_back(step);
  }
  return true;
}

// "http://HOST[:PORT][/PATH]" (HTTPS once Fledge speaks TLS).
bool parseUrl(std::string_view url, RolloutWebhook& w) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  url.remove_prefix(kScheme.size());
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  w.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  for (char c : w.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#') return false;
  std::string_view host = authority, port = "80";
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return false;
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return false;
      port = authority.substr(close + 2);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  unsigned n = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || n == 0 || n > 65535) return false;
  for (char c : host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' || c == '_')) return false;
  w.host = std::string(host);
  w.port = std::string(port);
  return true;
}

bool parseWebhooks(element v, RolloutSpec& spec, std::string& error, std::string& field) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) || arr.size() > RolloutSpec::kMaxWebhooks)
    return fail(error, field, "must be an array of at most " + std::to_string(RolloutSpec::kMaxWebhooks) + " webhooks", "webhooks");
  std::size_t i = 0;
  for (auto item : arr) {
    const std::string wf = "webhooks[" + std::to_string(i++) + "]";
    simdjson::dom::object wo;
    if (item.get_object().get(wo)) return fail(error, field, "must be an object {name, type, url, timeout_ms}", wf);
    RolloutWebhook w;
    bool have_type = false, have_url = false;
    for (auto [k, val] : wo) {
      const std::string kf = wf + "." + std::string(k);
      std::string_view s;
      if (k == "name") {
        if (val.get_string().get(s) || !flags::isValidName(s)) return fail(error, field, "must be 1-128 of [A-Za-z0-9._-]", kf);
        w.name = std::string(s);
      } else if (k == "type") {
        if (val.get_string().get(s) || (s != "pre-step" && s != "confirm")) return fail(error, field, "must be \"pre-step\" or \"confirm\"", kf);
        w.type = s == "pre-step" ? RolloutWebhook::Type::kPreStep : RolloutWebhook::Type::kConfirm;
        have_type = true;
      } else if (k == "url") {
        if (val.get_string().get(s) || !parseUrl(s, w)) return fail(error, field, "must be http://HOST[:PORT][/PATH]", kf);
        have_url = true;
      } else if (k == "timeout_ms") {
        std::uint64_t u;
        if (val.get_uint64().get(u) || u < 1 || u > 60000) return fail(error, field, "must be milliseconds from 1 to 60000", kf);
        w.timeout = std::chrono::milliseconds(u);
      } else {
        return fail(error, field, "unknown field", kf);
      }
    }
    if (w.name.empty()) return fail(error, field, "is required", wf + ".name");
    if (!have_type) return fail(error, field, "is required", wf + ".type");
    if (!have_url) return fail(error, field, "is required", wf + ".url");
    for (const auto& other : spec.webhooks)
      if (other.name == w.name) return fail(error, field, "another webhook has this name", wf + ".name");
    spec.webhooks.push_back(std::move(w));
  }
  return true;
}

bool parseSpec(std::string_view json, RolloutSpec& spec, std::string& error, std::string& field) {
  simdjson::dom::parser p;
  element root;
  if (p.parse(json.data(), json.size()).get(root)) return fail(error, field, "is not valid JSON", "body");
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return fail(error, field, "must be an object", "body");
  for (auto [k, v] : obj) {
    std::string_view s;
    if (k == "route" || k == "canary_arm" || k == "baseline_arm" || k == "flag" || k == "variant") {
      if (v.get_string().get(s) || s.empty()) return fail(error, field, "must be a non-empty string", std::string(k));
      (k == "route" ? spec.route : k == "canary_arm" ? spec.canary_arm : k == "baseline_arm" ? spec.baseline_arm
       : k == "flag" ? spec.flag : spec.variant) = std::string(s);
    } else if (k == "webhooks") {
      if (!parseWebhooks(v, spec, error, field)) return false;
    } else if (k == "steps") {
      if (!parseSteps(v, spec, error, field)) return false;
    } else if (k == "analysis") {
      if (!parseAnalysis(v, spec, error, field)) return false;
    } else {
      return fail(error, field, "unknown field", k.empty() ? std::string("\"\"") : std::string(k));  // an empty key is named as ""
    }
  }
  if (!spec.flag.empty() || !spec.variant.empty()) {  // a flag rollout
    for (auto [name, value] : {std::pair{"route", &spec.route}, {"canary_arm", &spec.canary_arm}, {"baseline_arm", &spec.baseline_arm}})
      if (!value->empty()) return fail(error, field, "a rollout names a route or a flag, not both", name);
    for (auto [name, value] : {std::pair{"flag", &spec.flag}, {"variant", &spec.variant}})
      if (value->empty()) return fail(error, field, "is required", name);
  } else {
    for (auto [name, value] : {std::pair{"route", &spec.route}, {"canary_arm", &spec.canary_arm}, {"baseline_arm", &spec.baseline_arm}})
      if (value->empty()) return fail(error, field, "is required (or flag and variant, for a flag rollout)", name);
    if (spec.canary_arm == spec.baseline_arm) return fail(error, field, "must differ from canary_arm", "baseline_arm");
  }
  if (spec.steps.empty()) return fail(error, field, "is required", "steps");
  return true;
}


namespace json = boost::json;

// The flag's own targeting, if any, and the rule that keeps its decision: the request got a
// variant other than the default from it (a targeted user, e.g. staff on "on").
std::optional<json::value> ownRules(const json::object& before) {
  auto t = before.find("targeting");
  if (t == before.end() || !t->value().is_object() || t->value().as_object().empty()) return std::nullopt;
  json::array others;
  const std::string def = stringMember(before, "defaultVariant");
  if (auto v = before.find("variants"); v != before.end() && v->value().is_object())
    for (const auto& kv : v->value().as_object())
      if (kv.key() != def) others.emplace_back(kv.key());
  return json::value{{"in", json::array{t->value(), others}}};
}

// The flag as it is during a flag rollout at `weight` percent: requests that the flag's own
// targeting sends to a variant other than the default keep it; the others are split by flagd's
// fractional bucketing (flag key + targetingKey) with the rollout's variant first, so raising the
// weight only ever moves users from the default to the variant. Requests without a targeting
// key are not bucketed: they keep the default.
std::string atWeight(const json::object& before, const std::string& variant, unsigned weight) {
  json::object flag = before;
  const std::string def = stringMember(before, "defaultVariant");
  json::value fractional = {{"fractional", json::array{json::array{json::value(variant), weight}, json::array{json::value(def), 100 - weight}}}};
  if (auto keep = ownRules(before)) flag["targeting"] = {{"if", json::array{*keep, before.at("targeting"), fractional}}};
  else flag["targeting"] = fractional;
  return json::serialize(flag);
}

// The flag once its rollout succeeded: the variant is the default, and the flag's own rules still
// send their targeted users where they did.
std::string promoted(const json::object& before, const std::string& variant) {
  json::object flag = before;
  flag["defaultVariant"] = variant;
  if (auto keep = ownRules(before)) flag["targeting"] = {{"if", json::array{*keep, before.at("targeting"), json::value(variant)}}};
  return json::serialize(flag);
}

}  // namespace

std::optional<std::string> flagAtWeight(std::string_view before, const std::string& variant, unsigned weight) {
  auto obj = parseObject(before);
  if (!obj) return std::nullopt;
  return atWeight(*obj, variant, weight);
}

std::optional<std::string> promotedFlag(std::string_view before, const std::string& variant) {
  auto obj = parseObject(before);
  if (!obj) return std::nullopt;
  return promoted(*obj, variant);
}

std::optional<RolloutSpec> parseRolloutSpec(std::string_view json, std::string& error, std::string& field) {
  RolloutSpec spec;
  if (!parseSpec(json, spec, error, field)) return std::nullopt;
  return spec;
}

void RolloutStatus::record(std::int64_t at_ms, const std::string& actor, const std::string& why) {
  history.push_back("{\"at_ms\":" + std::to_string(at_ms) + ",\"phase\":" + jsonQuote(phaseName(phase)) + ",\"step\":" +
                    std::to_string(step) + ",\"canary_weight\":" + std::to_string(canary_weight) + ",\"actor\":" + jsonQuote(actor) +
                    ",\"why\":" + jsonQuote(why) + "}");
  if (history.size() > 200) history.erase(history.begin() + 1);  // keep the start
}

std::string RolloutStatus::toJson() const {
  std::string h = "[";
  for (std::size_t i = 0; i < history.size(); ++i) h += (i ? "," : "") + history[i];
  h += "]";
  return "{\"phase\":" + jsonQuote(phaseName(phase)) + ",\"step\":" + std::to_string(step) +
         ",\"canary_weight\":" + std::to_string(canary_weight) + ",\"started_ms\":" + std::to_string(started_ms) +
         ",\"step_started_ms\":" + std::to_string(step_started_ms) + ",\"finished_ms\":" + std::to_string(finished_ms) +
         ",\"reason\":" + jsonQuote(reason) + ",\"entered\":" + (entered ? "true" : "false") +
         (flag_before.empty() ? "" : ",\"flag_before\":" + flag_before) + ",\"history\":" + h + "}";
}

std::optional<RolloutStatus> RolloutStatus::fromJson(std::string_view json) {
  simdjson::dom::parser p;
  element root;
  if (p.parse(json.data(), json.size()).get(root)) return std::nullopt;
  RolloutStatus s;
  std::string_view phase, reason;
  std::uint64_t step, weight;
  std::int64_t a, b, c;
  if (root["phase"].get_string().get(phase) || root["step"].get_uint64().get(step) ||
      root["canary_weight"].get_uint64().get(weight) || root["started_ms"].get_int64().get(a) ||
      root["step_started_ms"].get_int64().get(b) || root["finished_ms"].get_int64().get(c) ||
      root["reason"].get_string().get(reason))
    return std::nullopt;
  auto ph = phaseFromName(phase);
  if (!ph) return std::nullopt;
  s.phase = *ph;
  s.step = step;
  s.canary_weight = unsigned(weight);
  s.started_ms = a;
  s.step_started_ms = b;
  s.finished_ms = c;
  s.reason = std::string(reason);
  bool entered;
  if (!root["entered"].get_bool().get(entered)) s.entered = entered;  // absent before webhooks existed
  simdjson::dom::element before;
  if (!root["flag_before"].get(before)) s.flag_before = simdjson::minify(before);
  simdjson::dom::array hist;
  if (!root["history"].get_array().get(hist))
    for (auto e : hist) s.history.push_back(simdjson::minify(e));
  return s;
}

}  // namespace fledge::admin
