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
constexpr const char* kErrorKinds[proxy::kUpstreamErrorKinds] = {"connect", "reset", "timeout", "tls"};
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

// Every flag variant's ("" = no value) evaluations by reason, summed over the workers; counts of
// zero are skipped.
void eachEvaluationCount(const proxy::Config& cfg, const Metrics::Workers& workers,
                         const std::function<void(const std::string& flag, const std::string& variant, std::size_t reason,
                                                  std::uint64_t n)>& fn) {
  const auto* set = cfg.flag_set.get();
  if (!set) return;
  for (const auto& f : set->flags())
    for (std::size_t v = 0; v <= f.variants.size(); ++v) {
      const std::string variant = v < f.variants.size() ? f.variants[v].name : std::string();
      for (std::size_t reason = 0; reason < proxy::kReasons; ++reason) {
        std::uint64_t n = 0;
        for (const auto& w : workers)
          if (const proxy::VariantCounters* b = w->variant(f.key, variant)) n += proxy::read(b->evals[reason]);
        if (n) fn(f.key, variant, reason, n);
      }
    }
}

}  // namespace

std::vector<MetricFamily> healthFamilies(const std::vector<proxy::HealthChecker::EndpointHealth>& states) {
  auto healthy = family("fledge_endpoint_healthy", "1 while active health checks find the endpoint healthy, 0 while they hold it out.",
                        MetricType::Gauge);
  auto checks = family("fledge_health_checks_total", "Active health checks by cluster, endpoint and result.", MetricType::Counter);
  for (const auto& s : states) {
    auto m = metric({{"cluster", s.cluster}, {"endpoint", s.endpoint}});
    m.gauge.value = s.healthy ? 1 : 0;
    healthy.metric.push_back(std::move(m));
    for (bool ok : {true, false}) {
      auto c = metric({{"cluster", s.cluster}, {"endpoint", s.endpoint}, {"result", ok ? "pass" : "fail"}});
      c.counter.value = static_cast<double>(ok ? s.passed : s.failed);
      checks.metric.push_back(std::move(c));
    }
  }
  return {std::move(healthy), std::move(checks)};
}

std::vector<MetricFamily> tlsFamilies(const std::vector<proxy::tls_registry::CertificateState>& certs, proxy::tls_registry::Counts counts) {
  auto expiry = family("fledge_tls_certificate_expiry_timestamp_seconds",
                       "When a TLS listener's certificate in use expires (notAfter), in Unix seconds; name is its first DNS name.",
                       MetricType::Gauge);
  for (const auto& c : certs) {
    const std::string name = c.cert.names.empty() ? std::string() : c.cert.names.front();
    auto m = metric({{"listener", c.listener}, {"file", c.cert.cert_file}, {"name", name}});
    m.gauge.value = static_cast<double>(c.cert.not_after);
    expiry.metric.push_back(std::move(m));
  }
  auto reloads = family("fledge_tls_certificate_reloads_total",
                        "Reloads of TLS listeners' certificates (SIGHUP or changed files), by result; a failed one keeps the previous certificates.",
                        MetricType::Counter);
  for (bool ok : {true, false}) {
    reloads.metric.push_back(metric({{"result", ok ? "ok" : "failed"}}));
    reloads.metric.back().counter.value = static_cast<double>(ok ? counts.reloads_ok : counts.reloads_failed);
  }
  return {std::move(expiry), std::move(reloads)};
}

std::vector<MetricFamily> reloadFamilies(const std::vector<ReloadCount>& counts) {
  auto reloads = family("fledge_config_reload_total",
                        "Reloads of the configuration and flag files by what started them and result; a failed one changed nothing.",
                        MetricType::Counter);
  for (const auto& c : counts) {
    reloads.metric.push_back(metric({{"source", c.source}, {"result", c.result}}));
    reloads.metric.back().counter.value = static_cast<double>(c.count);
  }
  return {std::move(reloads)};
}

Metrics::Metrics(std::shared_ptr<const proxy::Snapshot> snap, Workers workers)
    : source_([snap = std::move(snap), workers = std::move(workers)] { return std::make_pair(snap, workers); }) {}

Metrics::Metrics(Source source) : source_(std::move(source)) {}

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
  const auto [snap, workers] = source_();
  const auto& cfg = snap->config;
  // Sums a block's value over the workers that have the series (a worker still on an older
  // configuration may not).
  auto sum = [&](auto block, auto get) {
    std::uint64_t t = 0;
    for (const auto& w : workers)
      if (const auto* b = block(*w)) t += get(*b);
    return t;
  };
  auto isum = [&](auto block, auto get) {
    std::int64_t t = 0;
    for (const auto& w : workers)
      if (const auto* b = block(*w)) t += get(*b);
    return t;
  };

  std::vector<MetricFamily> out;
  auto requests = family("fledge_requests_total", "Requests answered, by route, arm, cluster and status class.", MetricType::Counter);
  auto duration = family("fledge_request_duration_seconds", "Time from the end of the request header to the end of the response.", MetricType::Histogram);
  auto overrides = family("fledge_overrides_total", "Requests sent to an arm by a tester override.", MetricType::Counter);
  auto fallbacks = family("fledge_split_fallbacks_total", "Requests for an arm that the split's fallback arm served (no endpoint of the arm could).", MetricType::Counter);
  for (std::size_t r = 0; r <= cfg.routes.size(); ++r) {
    const bool routed = r < cfg.routes.size();
    const std::string route = routed ? cfg.routes[r].name : std::string();
    const auto* split = routed && cfg.routes[r].split ? &*cfg.routes[r].split : nullptr;
    const std::size_t arms = split ? split->arms.size() : 1;
    for (std::size_t a = 0; a < arms; ++a) {
      const std::string arm = split ? split->arms[a].name : std::string();
      const std::string cluster = !routed ? std::string() : split ? split->arms[a].cluster : cfg.routes[r].cluster;
      auto block = [&](const proxy::WorkerMetrics& w) { return w.arm(route, arm); };
      std::uint64_t route_total = 0;
      for (std::size_t c = 0; c < 5; ++c) {
        std::uint64_t v = sum(block, [&](const proxy::ArmCounters& b) { return proxy::read(b.requests[c]); });
        route_total += v;
        // Configured routes show every class from zero; "no route" only what happened.
        if (!routed && v == 0) continue;
        auto m = metric({{"route", route}, {"arm", arm}, {"cluster", cluster}, {"code", kCodes[c]}});
        m.counter.value = static_cast<double>(v);
        requests.metric.push_back(std::move(m));
      }
      if (split) {
        auto o = metric({{"route", route}, {"arm", arm}});
        o.counter.value = static_cast<double>(sum(block, [](const proxy::ArmCounters& b) { return proxy::read(b.overrides); }));
        overrides.metric.push_back(std::move(o));
        if (cfg.routes[r].split->fallback_index != SIZE_MAX) {
          auto fb = metric({{"route", route}, {"arm", arm}});
          fb.counter.value = static_cast<double>(sum(block, [](const proxy::ArmCounters& b) { return proxy::read(b.fallbacks); }));
          fallbacks.metric.push_back(std::move(fb));
        }
      }
      if (!routed && route_total == 0) continue;
      auto h = metric({{"route", route}, {"arm", arm}});
      std::array<std::uint64_t, kLatencyBuckets> coarse{};
      for (std::size_t k = 0; k < rollout::kLatencyBuckets; ++k)
        coarse[proxy::kCoarseBucketOf[k]] += sum(block, [&](const proxy::ArmCounters& x) { return proxy::read(x.latency[k]); });
      std::uint64_t cumulative = 0;
      for (std::size_t b = 0; b < kLatencyBuckets; ++b) {
        cumulative += coarse[b];
        ClientMetric::Bucket bucket;
        bucket.cumulative_count = cumulative;
        bucket.upper_bound = b < kLatencyBoundsUs.size() ? kLatencyBoundsUs[b] / 1e6 : std::numeric_limits<double>::infinity();
        h.histogram.bucket.push_back(bucket);
      }
      h.histogram.sample_count = cumulative;
      h.histogram.sample_sum =
          static_cast<double>(sum(block, [](const proxy::ArmCounters& x) { return proxy::read(x.latency_sum_us); })) / 1e6;
      duration.metric.push_back(std::move(h));
    }
  }
  out.push_back(std::move(requests));
  out.push_back(std::move(duration));

  auto errors = family("fledge_upstream_errors_total", "Upstream failures by cluster and kind.", MetricType::Counter);
  auto conns = family("fledge_upstream_connections", "Upstream connections by cluster and state.", MetricType::Gauge);
  for (const auto& cc : cfg.clusters) {
    auto block = [&](const proxy::WorkerMetrics& w) { return w.cluster(cc.name); };
    for (std::size_t k = 0; k < proxy::kUpstreamErrorKinds; ++k) {
      auto m = metric({{"cluster", cc.name}, {"kind", kErrorKinds[k]}});
      m.counter.value = static_cast<double>(sum(block, [&](const proxy::ClusterCounters& b) { return proxy::read(b.errors[k]); }));
      errors.metric.push_back(std::move(m));
    }
    auto active = metric({{"cluster", cc.name}, {"state", "active"}});
    active.gauge.value = static_cast<double>(isum(block, [](const proxy::ClusterCounters& b) { return proxy::read(b.busy); }));
    conns.metric.push_back(std::move(active));
    auto idle = metric({{"cluster", cc.name}, {"state", "idle"}});
    idle.gauge.value = static_cast<double>(isum(block, [](const proxy::ClusterCounters& b) { return proxy::read(b.idle); }));
    conns.metric.push_back(std::move(idle));
  }
  out.push_back(std::move(errors));
  out.push_back(std::move(conns));

  auto retries = family("fledge_upstream_retries_total", "Retries started by a route's retry policy, by cluster and what failed.", MetricType::Counter);
  auto retried = family("fledge_upstream_retried_requests_total", "Requests that were retried, by cluster and outcome (success: answered below 500).", MetricType::Counter);
  auto budget = family("fledge_retry_budget_exhausted_total", "Retries not made because the retry budget was spent, by cluster.", MetricType::Counter);
  auto ejections = family("fledge_outlier_ejections_total", "Endpoints ejected by outlier detection, by cluster.", MetricType::Counter);
  auto circuit = family("fledge_circuit_breaker_rejections_total", "Requests answered 503 by a cluster's circuit breaker.", MetricType::Counter);
  for (const auto& cc : cfg.clusters) {
    auto block = [&](const proxy::WorkerMetrics& w) { return w.cluster(cc.name); };
    for (std::size_t k = 0; k < proxy::kRetryReasons; ++k) {
      auto m = metric({{"cluster", cc.name}, {"reason", proxy::retryReasonName(static_cast<proxy::AttemptResult>(k + 1))}});
      m.counter.value = static_cast<double>(sum(block, [&](const proxy::ClusterCounters& b) { return proxy::read(b.retries[k]); }));
      retries.metric.push_back(std::move(m));
    }
    for (std::size_t k = 0; k < 2; ++k) {
      auto m = metric({{"cluster", cc.name}, {"outcome", k == 0 ? "success" : "failure"}});
      m.counter.value = static_cast<double>(sum(block, [&](const proxy::ClusterCounters& b) { return proxy::read(b.retried[k]); }));
      retried.metric.push_back(std::move(m));
    }
    auto b = metric({{"cluster", cc.name}});
    b.counter.value = static_cast<double>(sum(block, [](const proxy::ClusterCounters& c) { return proxy::read(c.budget_exhausted); }));
    budget.metric.push_back(std::move(b));
    auto e = metric({{"cluster", cc.name}});
    e.counter.value = static_cast<double>(sum(block, [](const proxy::ClusterCounters& c) { return proxy::read(c.ejections); }));
    ejections.metric.push_back(std::move(e));
    if (cc.circuit_breaker) {
      auto cb = metric({{"cluster", cc.name}});
      cb.counter.value = static_cast<double>(sum(block, [](const proxy::ClusterCounters& c) { return proxy::read(c.circuit_open); }));
      circuit.metric.push_back(std::move(cb));
    }
  }
  out.push_back(std::move(retries));
  out.push_back(std::move(retried));
  out.push_back(std::move(budget));
  out.push_back(std::move(ejections));
  out.push_back(std::move(circuit));

  auto worker = [](const proxy::WorkerMetrics& w) { return &w.worker(); };
  auto down = family("fledge_downstream_connections", "Open client connections.", MetricType::Gauge);
  down.metric.push_back(metric({}));
  down.metric.back().gauge.value =
      static_cast<double>(isum(worker, [](const proxy::WorkerCounters& b) { return proxy::read(b.downstream); }));
  out.push_back(std::move(down));

  auto evals = family("fledge_flag_evaluations_total", "Flag evaluations in the proxy by flag, variant and reason.", MetricType::Counter);
  eachEvaluationCount(cfg, workers, [&](const std::string& flag, const std::string& variant, std::size_t reason, std::uint64_t n) {
    auto m = metric({{"flag", flag}, {"variant", variant}, {"reason", std::string(flags::reasonName(static_cast<flags::Reason>(reason)))}});
    m.counter.value = static_cast<double>(n);
    evals.metric.push_back(std::move(m));
  });
  out.push_back(std::move(evals));

  auto outcomes = family("fledge_flag_outcome_requests_total",
                         "Responses to requests by the variant they got of a flag in metrics.flag_outcomes, and status class.",
                         MetricType::Counter);
  if (const auto* set = cfg.flag_set.get()) {
    for (const auto& key : cfg.metrics.flag_outcomes) {
      const flags::Flag* f = set->find(key);
      for (std::size_t v = 0; f && v <= f->variants.size(); ++v) {
        const std::string variant = v < f->variants.size() ? f->variants[v].name : std::string();
        const ArmCounts c = sumArm(workers, [&](const proxy::WorkerMetrics& w) { return w.outcome(f->key, variant); });
        for (std::size_t cls = 0; cls < 5; ++cls) {
          if (c.by_class[cls] == 0) continue;
          auto m = metric({{"flag", f->key}, {"variant", variant}, {"code", std::to_string(cls + 1) + "xx"}});
          m.counter.value = static_cast<double>(c.by_class[cls]);
          outcomes.metric.push_back(std::move(m));
        }
      }
    }
  }
  out.push_back(std::move(outcomes));

  auto weights = family("fledge_split_weight", "Configured split weight in percent, by route and arm.", MetricType::Gauge);
  auto mirrors = family("fledge_mirror_total", "Shadow copies by route and result.", MetricType::Counter);
  for (const auto& route : cfg.routes) {
    if (route.split) {
      for (const auto& arm : route.split->arms) {
        auto w = metric({{"route", route.name}, {"arm", arm.name}});
        w.gauge.value = arm.parts / 10'000.0;
        weights.metric.push_back(std::move(w));
      }
    }
    if (route.mirror) {
      auto block = [&](const proxy::WorkerMetrics& w) { return w.route(route.name); };
      for (std::size_t k = 0; k < 3; ++k) {
        auto m = metric({{"route", route.name}, {"result", kMirrorResults[k]}});
        m.counter.value = static_cast<double>(sum(block, [&](const proxy::RouteCounters& b) { return proxy::read(b.mirror[k]); }));
        mirrors.metric.push_back(std::move(m));
      }
    }
  }
  out.push_back(std::move(weights));
  out.push_back(std::move(overrides));
  out.push_back(std::move(fallbacks));
  out.push_back(std::move(mirrors));

  auto dropped = family("fledge_access_log_dropped_total", "Access log lines dropped because the queue was full.", MetricType::Counter);
  dropped.metric.push_back(metric({}));
  dropped.metric.back().counter.value =
      static_cast<double>(sum(worker, [](const proxy::WorkerCounters& b) { return proxy::read(b.access_log_dropped); }));
  out.push_back(std::move(dropped));

  auto handshakes = family("fledge_tls_handshakes_total", "TLS handshakes with clients on the proxy listeners, by result.", MetricType::Counter);
  for (bool ok : {true, false}) {
    handshakes.metric.push_back(metric({{"result", ok ? "ok" : "failed"}}));
    handshakes.metric.back().counter.value = static_cast<double>(sum(worker, [ok](const proxy::WorkerCounters& b) {
      return proxy::read(ok ? b.tls_handshakes : b.tls_handshake_failures);
    }));
  }
  out.push_back(std::move(handshakes));

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
  auto unusable = family("fledge_flags_parse_errors",
                         "Flags loaded (flagd-style) with targeting that does not compile: they answer PARSE_ERROR and the proxy passes no value for them.",
                         MetricType::Gauge);
  unusable.metric.push_back(metric({}));
  unusable.metric.back().gauge.value = cfg.flag_set ? static_cast<double>(cfg.flag_set->parseErrorCount()) : 0.0;
  out.push_back(std::move(unusable));

  auto build = family("fledge_build_info", "Build information; the value is always 1.", MetricType::Gauge);
  build.metric.push_back(metric({{"version", FLEDGE_VERSION}}));
  build.metric.back().gauge.value = 1;
  out.push_back(std::move(build));
  for (const auto& c : collectors_)
    for (auto& f : c()) out.push_back(std::move(f));
  return out;
}

std::string Metrics::render() const {
  prometheus::TextSerializer serializer;
  std::ostringstream os;
  serializer.Serialize(os, collect());
  return os.str();
}

ArmCounts Metrics::sumArm(const Workers& workers, const std::function<const proxy::ArmCounters*(const proxy::WorkerMetrics&)>& block) {
  ArmCounts out;
  for (const auto& w : workers) {
    const proxy::ArmCounters* b = block(*w);
    if (!b) continue;
    for (std::size_t c = 0; c < 5; ++c) out.by_class[c] += proxy::read(b->requests[c]);
    for (std::size_t k = 0; k < rollout::kLatencyBuckets; ++k) out.latency[k] += proxy::read(b->latency[k]);
  }
  return out;
}

ArmCounts Metrics::armCounts(const std::string& route, const std::string& arm) const {
  return sumArm(source_().second, [&](const proxy::WorkerMetrics& w) { return w.arm(route, arm); });
}

ArmCounts Metrics::flagOutcomeCounts(const std::string& flag, const std::string& variant) const {
  return sumArm(source_().second, [&](const proxy::WorkerMetrics& w) { return w.outcome(flag, variant); });
}

Metrics::ArmTotals Metrics::totalsOf(const ArmCounts& c) {
  ArmTotals t;
  t.requests = c.requests();
  t.errors = c.by_class[4];
  for (std::size_t k = 0; k < rollout::kLatencyBuckets; ++k) t.buckets[proxy::kCoarseBucketOf[k]] += c.latency[k];
  return t;
}

void Metrics::sample(Clock::time_point now, std::chrono::system_clock::time_point wall) {
  const auto [snap, workers] = source_();
  Sample s;
  s.at = now;
  s.wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
  const auto& routes = snap->config.routes;
  for (std::size_t r = 0; r < routes.size(); ++r) {
    const std::size_t arms = routes[r].split ? routes[r].split->arms.size() : 1;
    for (std::size_t a = 0; a < arms; ++a) {
      const std::string_view arm = routes[r].split ? std::string_view(routes[r].split->arms[a].name) : std::string_view();
      const ArmCounts c = sumArm(workers, [&](const proxy::WorkerMetrics& w) { return w.arm(routes[r].name, arm); });
      s.arms.emplace(proxy::armKey(routes[r].name, arm), totalsOf(c));
    }
  }
  if (const auto* set = snap->config.flag_set.get())
    for (const auto& key : snap->config.metrics.flag_outcomes)
      if (const flags::Flag* f = set->find(key))
        for (const auto& v : f->variants) {
          const ArmCounts c = sumArm(workers, [&](const proxy::WorkerMetrics& w) { return w.outcome(f->key, v.name); });
          s.outcomes.emplace(proxy::variantKey(f->key, v.name), totalsOf(c));
        }
  std::lock_guard lock(mu_);
  sampled_snap_ = snap;
  samples_.push_back(std::move(s));
  while (samples_.size() > kMaxSamples) samples_.pop_front();
}

ArmWindow Metrics::window(std::size_t route, std::size_t arm, std::chrono::seconds span) const {
  std::shared_ptr<const proxy::Snapshot> snap;
  {
    std::lock_guard lock(mu_);
    snap = sampled_snap_;
  }
  if (!snap || route >= snap->config.routes.size()) return {};
  const auto& r = snap->config.routes[route];
  if (r.split ? arm >= r.split->arms.size() : arm != 0) return {};
  return window(r.name, r.split ? r.split->arms[arm].name : std::string(), span);
}

ArmWindow Metrics::window(const std::string& route, const std::string& arm, std::chrono::seconds span) const {
  ArmWindow w;
  const std::string key = proxy::armKey(route, arm);
  std::lock_guard lock(mu_);
  if (samples_.size() < 2) return w;
  const Sample& last = samples_.back();
  auto lit = last.arms.find(key);
  if (lit == last.arms.end()) return w;
  // The newest sample at least `span` older than the last one, else the oldest there is.
  const Sample* first = &samples_.front();
  for (auto it = samples_.rbegin(); it != samples_.rend(); ++it) {
    if (last.at - it->at >= span) {
      first = &*it;
      break;
    }
  }
  // An arm that did not exist at the start of the window started from zero. Counters carry
  // over configuration changes; should one restart anyway (a name dropped long enough to be
  // forgotten, then added back), the window counts from the restart, never below zero.
  static const ArmTotals kZero{};
  auto fit = first->arms.find(key);
  const ArmTotals& a = fit == first->arms.end() ? kZero : fit->second;
  const ArmTotals& b = lit->second;
  auto delta = [](std::uint64_t later, std::uint64_t earlier) { return later >= earlier ? later - earlier : later; };
  const bool restarted = b.requests < a.requests;
  const ArmTotals& base = restarted ? kZero : a;
  w.span = std::chrono::duration_cast<std::chrono::seconds>(last.at - first->at);
  w.requests = delta(b.requests, base.requests);
  w.errors = delta(b.errors, base.errors);
  w.error_rate = w.requests ? static_cast<double>(w.errors) / static_cast<double>(w.requests) : 0;
  std::vector<std::uint64_t> buckets(kLatencyBuckets);
  for (std::size_t k = 0; k < kLatencyBuckets; ++k) buckets[k] = delta(b.buckets[k], base.buckets[k]);
  w.p50_seconds = histogramQuantile(buckets, 0.5);
  w.p90_seconds = histogramQuantile(buckets, 0.9);
  w.p99_seconds = histogramQuantile(buckets, 0.99);
  return w;
}

std::vector<SeriesPoint> Metrics::series(Of of, const std::string& name, const std::string& arm_or_variant,
                                         std::chrono::seconds span) const {
  const std::string key = proxy::armKey(name, arm_or_variant);
  auto totals = [&](const Sample& s) -> const ArmTotals* {
    const auto& m = of == Of::kArm ? s.arms : s.outcomes;
    auto it = m.find(key);
    return it == m.end() ? nullptr : &it->second;
  };
  std::vector<SeriesPoint> out;
  std::lock_guard lock(mu_);
  if (samples_.empty()) return out;
  const Clock::time_point last = samples_.back().at;
  static const ArmTotals kZero{};
  for (std::size_t i = 1; i < samples_.size(); ++i) {
    const Sample& prev = samples_[i - 1];
    const Sample& cur = samples_[i];
    if (last - cur.at >= span) continue;
    const ArmTotals* b = totals(cur);
    if (!b) continue;  // not in that configuration
    // Not in the previous sample's configuration: its counters may be ones carried over from an
    // earlier life of the name (proxy::BlockMap keeps retired blocks), so this interval has no
    // known start; the next one does.
    const ArmTotals* a = totals(prev);
    if (!a) continue;
    if (b->requests < a->requests) a = &kZero;  // restarted (forgotten and added back): from zero
    const double dt = std::chrono::duration<double>(cur.at - prev.at).count();
    if (dt <= 0) continue;
    SeriesPoint p;
    p.t_ms = cur.wall_ms;
    const std::uint64_t requests = b->requests - a->requests;
    p.rps = static_cast<double>(requests) / dt;
    if (requests) {
      const std::uint64_t errors = b->errors >= a->errors ? b->errors - a->errors : 0;
      p.error_rate = static_cast<double>(errors) / static_cast<double>(requests);
      std::vector<std::uint64_t> buckets(kLatencyBuckets);
      for (std::size_t k = 0; k < kLatencyBuckets; ++k) buckets[k] = b->buckets[k] >= a->buckets[k] ? b->buckets[k] - a->buckets[k] : 0;
      p.p50_ms = histogramQuantile(buckets, 0.5) * 1e3;
      p.p99_ms = histogramQuantile(buckets, 0.99) * 1e3;
    }
    out.push_back(p);
  }
  return out;
}

std::map<std::string, std::map<std::string, std::uint64_t>> Metrics::flagEvaluations() const {
  const auto [snap, workers] = source_();
  std::map<std::string, std::map<std::string, std::uint64_t>> out;
  if (const auto* set = snap->config.flag_set.get())
    for (const auto& f : set->flags()) out[f.key];  // every flag, evaluated or not
  eachEvaluationCount(snap->config, workers,
                      [&](const std::string& flag, const std::string& variant, std::size_t, std::uint64_t n) { out[flag][variant] += n; });
  return out;
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
