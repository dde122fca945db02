#include "ctl/view.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <vector>

namespace fledge::ctl {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Each column padded to its widest cell, two spaces apart, `indent` spaces before each row.
std::string table(const Rows& rows, std::size_t indent = 2) {
  std::vector<std::size_t> width;
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  std::string out;
  for (const auto& r : rows) {
    std::string line(indent, ' ');
    for (std::size_t i = 0; i < r.size(); ++i) line += r[i] + std::string(i + 1 < r.size() ? width[i] - r[i].size() + 2 : 0, ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string str(const json::value& v, std::string_view ptr, std::string_view fallback = "") {
  return findString(v, ptr).value_or(std::string(fallback));
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Milliseconds: two decimals below 10, one below 100, none above.
std::string millis(std::optional<double> v) { return v ? fixed(*v, *v < 10 ? 2 : *v < 100 ? 1 : 0) : "-"; }

std::string percent(const json::value* w) { return w ? numberText(*w) + "%" : "?%"; }

// "42s", "3m05s", "2h07m"; rounded up, so "1s left" lasts until the second is over.
std::string duration(std::int64_t ms) {
  const std::int64_t s = (std::max<std::int64_t>(ms, 0) + 999) / 1000;
  const auto two = [](std::int64_t n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  if (s < 60) return std::to_string(s) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m" + two(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + two(s / 60 % 60) + "m";
}

std::string matchText(const json::value& route) {
  const std::string host = str(route, "/match/host"), prefix = str(route, "/match/path_prefix");
  if (host.empty() && prefix.empty()) return "*";
  return host + (prefix.empty() ? "/" : prefix);
}

struct Progress {
  std::string phase;
  std::size_t step = 0, steps = 0;
  std::int64_t canary = 0;
  std::optional<std::int64_t> left_ms;  // of the step's hold, while progressing
};

Progress progressOf(const json::value& view, std::int64_t now_ms) {
  Progress p;
  p.phase = str(view, "/status/phase", "?");
  p.step = std::size_t(std::max<std::int64_t>(findInt(view, "/status/step").value_or(0), 0));
  p.canary = findInt(view, "/status/canary_weight").value_or(0);
  if (const auto* steps = find(view, "/spec/steps"); steps && steps->is_array()) p.steps = steps->get_array().size();
  const auto hold_s = findInt(view, "/spec/steps/" + std::to_string(p.step) + "/hold_s");
  const auto since = findInt(view, "/status/step_started_ms");
  if (p.phase == "progressing" && since) p.left_ms = hold_s.value_or(0) * 1000 - (now_ms - *since);
  return p;
}

std::string stepText(const Progress& p) { return "step " + std::to_string(p.step + 1) + "/" + std::to_string(p.steps); }

std::string weightsText(const Progress& p, std::string_view gap) {
  return "canary " + std::to_string(p.canary) + "%" + std::string(gap) + "baseline " + std::to_string(100 - p.canary) + "%";
}

// "42s left", "hold over", "took 1m05s"; empty when nothing applies.
std::string timeText(const json::value& view, const Progress& p) {
  if (p.left_ms) return *p.left_ms > 0 ? duration(*p.left_ms) + " left" : "hold over";
  const auto started = findInt(view, "/status/started_ms"), ended = findInt(view, "/status/finished_ms");
  if (finishedPhase(p.phase) && started && ended && *ended >= *started) return "took " + duration(*ended - *started);
  return {};
}

// A string's content; any other value as compact JSON.
std::string plain(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : toJson(v); }

// status.waiting as text (empty when absent).
std::string waitingText(const json::value& view) {
  const auto* w = find(view, "/status/waiting");
  return !w || w->is_null() ? std::string() : plain(*w);
}

std::string rate(std::optional<double> r) { return r ? fixed(*r, 1) : "-"; }

// One arm's counts: requests, errors, p50 and p99 ms ("-" without requests).
struct ArmCounts {
  std::string requests, errors, p50, p99;
};

ArmCounts armCounts(const json::value& view, std::string_view arm) {
  const std::string base = "/analysis/" + std::string(arm);
  const std::int64_t n = findInt(view, base + "/requests").value_or(0);
  const auto latency = [&](const char* q) { return millis(n > 0 ? findNumber(view, base + q) : std::nullopt); };
  return {std::to_string(n), std::to_string(findInt(view, base + "/errors").value_or(0)), latency("/p50_ms"), latency("/p99_ms")};
}

std::string armCountsLine(const json::value& view, std::string_view arm, std::optional<double> r) {
  const ArmCounts c = armCounts(view, arm);
  return std::string(arm) + " " + rate(r) + " req/s " + c.requests + " req " + c.errors + " err p50 " + c.p50 + " p99 " + c.p99 + " ms";
}

}  // namespace

std::string secondsText(std::chrono::milliseconds d) {
  char buf[32];
  return std::string(buf, std::to_chars(buf, buf + sizeof buf, d.count() / 1e3).ptr) + " s";
}

std::string rolloutTargetText(const json::value& view) {
  if (auto flag = findString(view, "/spec/flag")) {
    // The baseline of a flag rollout is the default variant the flag had when it started.
    const auto baseline = findString(view, "/status/flag_before/defaultVariant");
    return "flag " + *flag + ", variant " + str(view, "/spec/variant", "?") + (baseline ? " against " + *baseline : "");
  }
  return "route " + str(view, "/spec/route", "?") + ", arm " + str(view, "/spec/canary_arm", "?") + " against " +
         str(view, "/spec/baseline_arm", "?");
}

bool finishedPhase(std::string_view phase) { return phase == "succeeded" || phase == "rolled_back" || phase == "aborted"; }

std::string progressBar(std::size_t step, std::size_t steps, bool succeeded, std::size_t width) {
  const std::size_t filled = steps == 0 ? 0 : succeeded ? width : std::min(width, width * std::min(step + 1, steps) / steps);
  std::string bar = "[";
  bar.append(filled, '#').append(width - filled, '-');
  return bar + "]";
}

std::string routeTargetText(const json::value& route) {
  std::string out;
  if (const auto* arms = find(route, "/split/arms"); arms && arms->is_array()) {
    for (const auto& a : arms->get_array()) {
      if (!out.empty()) out += ", ";
      out += str(a, "/name", "?") + " " + percent(find(a, "/weight")) + " (" + str(a, "/cluster", "?") + ")";
    }
  } else {
    out = "cluster " + str(route, "/cluster", "?");
  }
  if (auto mirror = findString(route, "/mirror/cluster")) out += ", mirror " + *mirror + " " + percent(find(route, "/mirror/percent"));
  return out;
}

std::string statusText(const json::value& config, const json::value& rollouts) {
  const auto version = findInt(config, "/version");
  std::string out = "config version " + (version ? std::to_string(*version) : std::string("?")) + "\n";
  // Which route each unfinished rollout is moving, to mark it in the route list.
  std::map<std::string, std::string> moving;
  Rows rollout_rows;
  if (const auto* list = find(rollouts, "/rollouts"); list && list->is_array())
    for (const auto& r : list->get_array()) {
      const Progress p = progressOf(r, 0);
      if (auto route = findString(r, "/spec/route"); route && !finishedPhase(p.phase))
        moving[*route] = "rollout " + str(r, "/name") + " " + p.phase;
      rollout_rows.push_back({str(r, "/name"), rolloutTargetText(r), p.phase, stepText(p), "canary " + std::to_string(p.canary) + "%"});
    }

  Rows rows;
  if (const auto* routes = find(config, "/routes"); routes && routes->is_array())
    for (const auto& r : routes->get_array()) {
      const std::string name = str(r, "/name");
      rows.push_back({name, matchText(r), routeTargetText(r), moving.count(name) ? "[" + moving[name] + "]" : ""});
    }
  out += "routes" + std::string(rows.empty() ? "    none\n" : "\n") + table(rows);

  rows.clear();
  if (const auto* clusters = find(config, "/clusters"); clusters && clusters->is_object())
    for (const auto& [name, c] : clusters->get_object()) {
      std::string endpoints;
      if (const auto* e = find(c, "/endpoints"); e && e->is_array())
        for (const auto& ep : e->get_array()) endpoints += (endpoints.empty() ? "" : ", ") + plain(ep);
      rows.push_back({std::string(name), endpoints});
    }
  out += "clusters" + std::string(rows.empty() ? "  none\n" : "\n") + table(rows);

  std::size_t flags = 0, enabled = 0;
  if (const auto* f = find(config, "/flags/flags"); f && f->is_object())
    for (const auto& [key, flag] : f->get_object()) {
      ++flags;
      enabled += str(flag, "/state") == "ENABLED";
    }
  out += "flags     " + std::to_string(flags) + " (" + std::to_string(enabled) + " enabled, " + std::to_string(flags - enabled) +
         " disabled)\n";
  out += "rollouts" + std::string(rollout_rows.empty() ? "  none\n" : "\n") + table(rollout_rows);
  return out;
}

std::string flagText(std::string_view key, const json::value& flag) {
  std::string variants;
  if (const auto* v = find(flag, "/variants"); v && v->is_object())
    for (const auto& [name, value] : v->get_object())
      variants += (variants.empty() ? "" : ", ") + std::string(name) + " = " + toJson(value);
  const auto* def = find(flag, "/defaultVariant");
  const auto* targeting = find(flag, "/targeting");
  return table({{"flag", std::string(key)},
                {"state", str(flag, "/state", "?")},
                {"default", !def || def->is_null() ? "none (the caller's default)" : plain(*def)},
                {"variants", variants.empty() ? "none" : variants},
                {"targeting", targeting && !(targeting->is_object() && targeting->get_object().empty()) ? toJson(*targeting) : "none"}},
               0);
}

std::string rolloutListText(const json::value& rollouts) {
  Rows rows;
  if (const auto* list = find(rollouts, "/rollouts"); list && list->is_array())
    for (const auto& r : list->get_array()) {
      const Progress p = progressOf(r, 0);
      rows.push_back({str(r, "/name"), rolloutTargetText(r), p.phase, stepText(p), "canary " + std::to_string(p.canary) + "%",
                      str(r, "/status/reason")});
    }
  if (rows.empty()) return "no rollouts\n";
  rows.insert(rows.begin(), {"NAME", "TARGET", "PHASE", "STEP", "WEIGHT", "REASON"});
  return table(rows, 0);
}

ArmRates RateMeter::update(const json::value& view, std::chrono::steady_clock::time_point now) {
  ArmRates out;
  const auto canary = findNumber(view, "/analysis/canary/requests"), baseline = findNumber(view, "/analysis/baseline/requests");
  if (last_at_) {
    const double seconds = std::chrono::duration<double>(now - *last_at_).count();
    // A count that went backwards means the analysis started afresh (Fledge restarted): no rate.
    const auto perSecond = [seconds](std::optional<double> now_n, std::optional<double> then_n) -> std::optional<double> {
      if (!now_n || !then_n || *now_n < *then_n || seconds <= 0) return std::nullopt;
      return (*now_n - *then_n) / seconds;
    };
    out.canary = perSecond(canary, last_canary_);
    out.baseline = perSecond(baseline, last_baseline_);
  }
  last_at_ = now;
  last_canary_ = canary;
  last_baseline_ = baseline;
  return out;
}

std::string rolloutText(const json::value& view, std::int64_t now_ms, const ArmRates& rates) {
  const Progress p = progressOf(view, now_ms);
  std::string step = std::to_string(p.step + 1) + "/" + std::to_string(p.steps) + "  " +
                     progressBar(p.step, p.steps, p.phase == "succeeded") + "  " + weightsText(p, "  ");
  if (std::string t = timeText(view, p); !t.empty()) step += "  " + t;
  Rows head{{"rollout", str(view, "/name")}, {"target", rolloutTargetText(view)}, {"phase", p.phase}, {"step", step}};
  if (std::string w = waitingText(view); !w.empty()) head.push_back({"waiting", w});
  if (std::string r = str(view, "/status/reason"); !r.empty()) head.push_back({"reason", r});
  std::string out = table(head, 0) + "\n";

  if (!find(view, "/analysis")) return out + "analysis  none yet (it starts with the controller's first tick)\n";
  Rows arms{{"", "req/s", "requests", "errors", "p50 ms", "p99 ms"}};
  for (auto [arm, r] : {std::pair{"canary", rates.canary}, {"baseline", rates.baseline}}) {
    const ArmCounts c = armCounts(view, arm);
    arms.push_back({arm, rate(r), c.requests, c.errors, c.p50, c.p99});
  }
  out += table(arms, 0) + "\n";
  Rows checks;
  if (const auto* list = find(view, "/analysis/checks"); list && list->is_array())
    for (const auto& c : list->get_array()) {
      const std::string name = str(c, "/name");
      std::string summary = str(c, "/summary");
      if (summary.rfind(name + ": ", 0) == 0) summary.erase(0, name.size() + 2);  // the name is in the first column
      checks.push_back({name, str(c, "/verdict"), summary});
    }
  return out + "checks" + (checks.empty() ? "  none\n" : "\n" + table(checks));
}

std::string rolloutLine(const json::value& view, std::int64_t now_ms, const ArmRates& rates) {
  const Progress p = progressOf(view, now_ms);
  std::string out = str(view, "/name") + " " + p.phase + " " + stepText(p) + " " + weightsText(p, " ");
  if (std::string t = timeText(view, p); !t.empty()) out += " " + t;
  if (find(view, "/analysis")) {
    out += " | " + armCountsLine(view, "canary", rates.canary) + " | " + armCountsLine(view, "baseline", rates.baseline);
    std::string checks;
    if (const auto* list = find(view, "/analysis/checks"); list && list->is_array())
      for (const auto& c : list->get_array()) checks += (checks.empty() ? "" : ", ") + str(c, "/name") + " " + str(c, "/verdict");
    if (!checks.empty()) out += " | " + checks;
  }
  if (std::string w = waitingText(view); !w.empty()) out += " | waiting: " + w;
  if (std::string r = str(view, "/status/reason"); !r.empty()) out += " | " + r;
  return out;
}

std::string rolloutStepLine(const json::value& view) {
  const Progress p = progressOf(view, 0);
  std::string out = str(view, "/name") + ": " + p.phase + ", " + stepText(p) + ", canary " + std::to_string(p.canary) + "%";
  if (std::string r = str(view, "/status/reason"); !r.empty() && finishedPhase(p.phase)) out += ": " + r;
  return out;
}

}  // namespace fledge::ctl
