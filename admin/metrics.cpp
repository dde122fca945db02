#include "admin/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <sstream>

#include "admin/ofrep.hpp"
#include "flags/flag_set.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using proxy::kLatencyBoundsUs;
using proxy::kLatencyBuckets;

namespace {

constexpr const char* kCodes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
constexpr const char* kErrorKinds[3] = {"connect", "reset", "timeout"};
constexpr const char* kMirrorResults[3] = {"sent", "dropped", "failed"};

ClientMetric metric(std::initializer_list<std::pair<const char*, std::string>> labels) {
  ClientMetric m;
  for (const auto& [k, v] : labels) m.label.push_back({k, v});
  return m;
}

MetricFamily family(const char* name, const char* help, MetricType type) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

}  // namespace

double histogramQuantile(const std::vector<std::uint64_t>& buckets, double q) {
  std::uint64_t total = 0;
  for (auto c : buckets) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b] == 0) continue;
    if (static_cast<double>(seen + buckets[b]) >= rank) {
      const double lo = b == 0 ? 0.0 : kLatencyBoundsUs[b - 1] / 1e6;
      if (b >= kLatencyBoundsUs.size()) return lo;  // +Inf bucket: its lower bound is all we know
      const double hi = kLatencyBoundsUs[b] / 1e6;
      const double frac = (rank - static_cast<double>(seen)) / static_cast<double>(buckets[b]);
      return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
    }
    seen += buckets[b];
  }
  return kLatencyBoundsUs.back() / 1e6;
}

Metrics::Metrics(std::shared_ptr<const proxy::Snapshot> snap, std::vector<const proxy::WorkerMetrics*> workers)
    : source_([snap = std::move(snap), workers = std::move(workers)] { return std::make_pair(snap, workers); }) {}

Metrics::Metrics(Source source) : source_(std::move(source)) {}

Metrics::View Metrics::view() const {
  auto [snap, all] = source_();
  View v{snap, {}, proxy::MetricsLayout(*snap)};
  // Right after a config change some workers may still count for the previous layout.
  for (const auto* w : all) {
    const auto& l = w->layout();
    if (l.routes == v.layout.routes && l.arms == v.layout.arms && l.clusters == v.layout.clusters &&
        l.flag_slots == v.layout.flag_slots)
      v.workers.push_back(w);
  }
  return v;
}

void Metrics::adminResponse(unsigned status) {
  std::lock_guard lock(mu_);
  for (auto& [code, n] : admin_codes_)
    if (code == status) {
      ++n;
      return;
    }
  admin_codes_.emplace_back(status, 1);
}

std::vector<MetricFamily> Metrics::collect() const {
  const View view_now = view();
  const auto& cfg = view_now.snap->config;
  const auto& layout_ = view_now.layout;
  const auto& workers_ = view_now.workers;
  const std::size_t routes = layout_.routes;
  auto routeName = [&](std::size_t r) { return r < routes ? cfg.routes[r].name : std::string(); };
  auto armName = [&](std::size_t r, std::size_t a) {
    return r < routes && cfg.routes[r].split ? cfg.routes[r].split->arms[a].name : std::string();
  };
  auto clusterOf = [&](std::size_t r, std::size_t a) -> std::string {
    if (r >= routes) return {};
    const auto& route = cfg.routes[r];
    return route.split ? route.split->arms[a].cluster : route.cluster;
  };
  auto armsOf = [&](std::size_t r) { return r < routes && cfg.routes[r].split ? cfg.routes[r].split->arms.size() : 1; };
  auto sum = [&](auto get) {
    std::uint64_t t = 0;
    for (const auto* w : workers_) t += get(*w);
    return t;
  };
  auto isum = [&](auto get) {
    std::int64_t t = 0;
    for (const auto* w : workers_) t += get(*w);
    return t;
  };

  std::vector<MetricFamily> out;
  auto requests = family("fledge_requests_total", "Requests answered, by route, arm, cluster and status class.", MetricType::Counter);
  auto duration = family("fledge_request_duration_seconds", "Time from the end of the request header to the end of the response.", MetricType::Histogram);
  for (std::size_t r = 0; r <= routes; ++r) {
    for (std::size_t a = 0; a < armsOf(r); ++a) {
      const std::size_t slot = layout_.routeArm(r, a);
      std::uint64_t route_total = 0;
      for (std::size_t c = 0; c < 5; ++c) {
        std::uint64_t v = sum([&](const proxy::WorkerMetrics& w) { return w.requests(slot, c); });
        route_total += v;
        // Configured routes show every class from zero; "no route" only what happened.
        if (r == routes && v == 0) continue;
        auto m = metric({{"route", routeName(r)}, {"arm", armName(r, a)}, {"cluster", clusterOf(r, a)}, {"code", kCodes[c]}});
        m.counter.value = static_cast<double>(v);
        requests.metric.push_back(std::move(m));
      }
      if (r == routes && route_total == 0) continue;
      auto h = metric({{"route", routeName(r)}, {"arm", armName(r, a)}});
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b < kLatencyBuckets; ++b) {
        cumulative += sum([&](const proxy::WorkerMetrics& w) { return w.latencyBucket(slot, b); });
        ClientMetric::Bucket bucket;
        bucket.cumulative_count = cumulative;
        bucket.upper_bound = b < kLatencyBoundsUs.size() ? kLatencyBoundsUs[b] / 1e6 : std::numeric_limits<double>::infinity();
        h.histogram.bucket.push_back(bucket);
      }
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum = static_cast<double>(sum([&](const proxy::WorkerMetrics& w) { return w.latencySumUs(slot); })) / 1e6;
      duration.metric.push_back(std::move(h));
    }
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(duration));

  auto errors = family("fledge_upstream_errors_total", "Upstream failures by cluster and kind.", MetricType::Counter);
  auto conns = family("fledge_upstream_connections", "Upstream connections by cluster and state.", MetricType::Gauge);
  for (std::size_t c = 0; c < layout_.clusters; ++c) {
    for (std::size_t k = 0; k < 3; ++k) {
      auto m = metric({{"cluster", cfg.clusters[c].name}, {"kind", kErrorKinds[k]}});
      m.counter.value = static_cast<double>(sum([&](const proxy::WorkerMetrics& w) { return w.upstreamErrors(c, k); }));
      errors.metric.push_back(std::move(m));
    }
    auto active = metric({{"cluster", cfg.clusters[c].name}, {"state", "active"}});
    active.gauge.value = static_cast<double>(isum([&](const proxy::WorkerMetrics& w) { return w.upstreamBusy(c); }));
    conns.metric.push_back(std::move(active));
    auto idle = metric({{"cluster", cfg.clusters[c].name}, {"state", "idle"}});
    idle.gauge.value = static_cast<double>(isum([&](const proxy::WorkerMetrics& w) { return w.upstreamIdle(c); }));
    conns.metric.push_back(std::move(idle));
  }
  out.push_back(std::move(errors));
  out.push_back(std::move(conns));

  auto down = family("fledge_downstream_connections", "Open client connections.", MetricType::Gauge);
  down.metric.push_back(metric({}));
  down.metric.back().gauge.value = static_cast<double>(isum([](const proxy::WorkerMetrics& w) { return w.downstream(); }));
  out.push_back(std::move(down));

  auto evals = family("fledge_flag_evaluations_total", "Flag evaluations in the proxy by flag, variant and reason.", MetricType::Counter);
  if (const auto* set = cfg.flag_set.get()) {
    const auto& fl = set->flags();
    for (std::size_t f = 0; f < fl.size(); ++f) {
      for (std::size_t v = 0; v <= fl[f].variants.size(); ++v) {
        for (std::size_t reason = 0; reason < proxy::kReasons; ++reason) {
          const std::size_t slot = layout_.flag_offset[f] + v * proxy::kReasons + reason;
          std::uint64_t n = sum([&](const proxy::WorkerMetrics& w) { return w.flagEvals(slot); });
          if (n == 0) continue;
          auto m = metric({{"flag", fl[f].key},
                           {"variant", v < fl[f].variants.size() ? fl[f].variants[v].name : std::string()},
                           {"reason", std::string(flags::reasonName(static_cast<flags::Reason>(reason)))}});
          m.counter.value = static_cast<double>(n);
          evals.metric.push_back(std::move(m));
        }
      }
    }
  }
  out.push_back(std::move(evals));

  auto weights = family("fledge_split_weight", "Configured split weight in percent, by route and arm.", MetricType::Gauge);
  auto overrides = family("fledge_overrides_total", "Requests sent to an arm by a tester override.", MetricType::Counter);
  auto mirrors = family("fledge_mirror_total", "Shadow copies by route and result.", MetricType::Counter);
  for (std::size_t r = 0; r < routes; ++r) {
    const auto& route = cfg.routes[r];
    if (route.split) {
      for (std::size_t a = 0; a < route.split->arms.size(); ++a) {
        auto w = metric({{"route", route.name}, {"arm", route.split->arms[a].name}});
        w.gauge.value = route.split->arms[a].parts / 10'000.0;
        weights.metric.push_back(std::move(w));
        auto o = metric({{"route", route.name}, {"arm", route.split->arms[a].name}});
        const std::size_t slot = layout_.routeArm(r, a);
        o.counter.value = static_cast<double>(sum([&](const proxy::WorkerMetrics& wm) { return wm.overrides(slot); }));
        overrides.metric.push_back(std::move(o));
      }
    }
    if (route.mirror) {
      for (std::size_t k = 0; k < 3; ++k) {
        auto m = metric({{"route", route.name}, {"result", kMirrorResults[k]}});
        m.counter.value = static_cast<double>(sum([&](const proxy::WorkerMetrics& w) { return w.mirrors(r, k); }));
        mirrors.metric.push_back(std::move(m));
      }
    }
  }
  out.push_back(std::move(weights));
  out.push_back(std::move(overrides));
  out.push_back(std::move(mirrors));

  auto dropped = family("fledge_access_log_dropped_total", "Access log lines dropped because the queue was full.", MetricType::Counter);
  dropped.metric.push_back(metric({}));
  dropped.metric.back().counter.value = static_cast<double>(sum([](const proxy::WorkerMetrics& w) { return w.accessLogDroppedCount(); }));
  out.push_back(std::move(dropped));

  auto version = family("fledge_config_version", "Version of the configuration in force.", MetricType::Gauge);
  auto admin = family("fledge_admin_requests_total", "Admin listener responses by status code.", MetricType::Counter);
  {
    std::lock_guard lock(mu_);
    version.metric.push_back(metric({}));
    version.metric.back().gauge.value = static_cast<double>(config_version_);
    for (const auto& [code, n] : admin_codes_) {
      auto m = metric({{"code", std::to_string(code)}});
      m.counter.value = static_cast<double>(n);
      admin.metric.push_back(std::move(m));
    }
  }
  out.push_back(std::move(version));
  out.push_back(std::move(admin));

  auto build = family("fledge_build_info", "Build information; the value is always 1.", MetricType::Gauge);
  build.metric.push_back(metric({{"version", FLEDGE_VERSION}}));
  build.metric.back().gauge.value = 1;
  out.push_back(std::move(build));
  return out;
}

std::string Metrics::render() const {
  prometheus::TextSerializer serializer;
  std::ostringstream os;
  serializer.Serialize(os, collect());
  return os.str();
}

Metrics::Sample Metrics::take(const View& v, Clock::time_point now) const {
  const auto& layout_ = v.layout;
  const auto& workers_ = v.workers;
  Sample s;
  s.at = now;
  const std::size_t slots = layout_.routeArmSlots();
  s.requests.assign(slots, 0);
  s.errors.assign(slots, 0);
  s.buckets.assign(slots * kLatencyBuckets, 0);
  for (const auto* w : workers_) {
    for (std::size_t slot = 0; slot < slots; ++slot) {
      for (std::size_t c = 0; c < 5; ++c) s.requests[slot] += w->requests(slot, c);
      s.errors[slot] += w->requests(slot, 4);
      for (std::size_t b = 0; b < kLatencyBuckets; ++b) s.buckets[slot * kLatencyBuckets + b] += w->latencyBucket(slot, b);
    }
  }
  return s;
}

void Metrics::sample(Clock::time_point now) {
  View v = view();
  Sample s = take(v, now);
  std::lock_guard lock(mu_);
  // A config with another shape starts the windows afresh.
  if (!samples_.empty() && samples_.back().requests.size() != s.requests.size()) samples_.clear();
  layout_ = v.layout;
  samples_.push_back(std::move(s));
  while (samples_.size() > kMaxSamples) samples_.pop_front();
}

ArmWindow Metrics::window(std::size_t route, std::size_t arm, std::chrono::seconds span) const {
  ArmWindow w;
  std::lock_guard lock(mu_);
  if (samples_.size() < 2 || route > layout_.routes || arm >= layout_.arms) return w;
  const Sample& last = samples_.back();
  // The newest sample at least `span` older than the last one, else the oldest there is.
  const Sample* first = &samples_.front();
  for (auto it = samples_.rbegin(); it != samples_.rend(); ++it) {
    if (last.at - it->at >= span) {
      first = &*it;
      break;
    }
  }
  const std::size_t slot = layout_.routeArm(route, arm);
  w.span = std::chrono::duration_cast<std::chrono::seconds>(last.at - first->at);
  w.requests = last.requests[slot] - first->requests[slot];
  w.errors = last.errors[slot] - first->errors[slot];
  w.error_rate = w.requests ? static_cast<double>(w.errors) / static_cast<double>(w.requests) : 0;
  std::vector<std::uint64_t> buckets(kLatencyBuckets);
  for (std::size_t b = 0; b < kLatencyBuckets; ++b)
    buckets[b] = last.buckets[slot * kLatencyBuckets + b] - first->buckets[slot * kLatencyBuckets + b];
  w.p50_seconds = histogramQuantile(buckets, 0.5);
  w.p90_seconds = histogramQuantile(buckets, 0.9);
  w.p99_seconds = histogramQuantile(buckets, 0.99);
  return w;
}

void Metrics::install(HttpServer& server, std::vector<std::string> tokens) {
  server.handle(http::verb::get, "/metrics", [this, tokens = std::move(tokens)](const Request& req) {
    if (!tokens.empty()) {
      std::string_view presented;
      auto auth = req.find(http::field::authorization);
      if (auth != req.end() && auth->value().size() > 7 && boost::beast::iequals(auth->value().substr(0, 7), "Bearer "))
        presented = auth->value().substr(7);
      bool ok = false;
      for (const auto& t : tokens) ok |= !presented.empty() && constantTimeEquals(presented, t);
      if (!ok) return HttpServer::text(req, http::status::unauthorized, "metrics need a read token");
    }
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = render();
    return res;
  });
}

}  // namespace fledge::admin
