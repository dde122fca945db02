#pragma once
// Metrics for ops and for Fledge itself: merges the workers' counters into Prometheus families
// (served as GET /metrics in the text format via prometheus-cpp's serializer), and keeps
// per-arm windows (requests, errors, latency quantiles over the last N seconds) that a rollout
// controller can read without scraping.
#include <chrono>
#include <cstdint>
#include <array>
#include <deque>
#include <unordered_map>
#include <functional>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "admin/http_server.hpp"
#include "proxy/health.hpp"
#include "proxy/metrics.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/tls.hpp"

namespace fledge::admin {

// Requests, errors and latency of one route arm over a recent window.
struct ArmWindow {
  std::chrono::seconds span{0};  // the time actually covered (less than asked right after start)
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;      // 5xx
  double error_rate = 0;
  double p50_seconds = 0, p90_seconds = 0, p99_seconds = 0;  // interpolated from the histogram
};

// Cumulative counts of one route arm, summed over the workers (they never go backwards while the
// arm exists; see proxy/metrics.hpp).
struct ArmCounts {
  std::array<std::uint64_t, 5> by_class{};  // responses by status class 1xx..5xx
  std::array<std::uint64_t, rollout::kLatencyBuckets> latency{};  // the analysis buckets
  std::uint64_t requests() const { return by_class[0] + by_class[1] + by_class[2] + by_class[3] + by_class[4]; }
  // Responses in the given status classes (5 for 5xx).
  std::uint64_t inClasses(const std::vector<unsigned>& classes) const {
    std::uint64_t n = 0;
    for (unsigned c : classes) n += by_class[c - 1];
    return n;
  }
};

// One second of an arm's (or a flag variant's) responses, for the console's charts; the rates and
// quantiles are absent (nullopt) for a second without requests.
struct SeriesPoint {
  std::int64_t t_ms = 0;  // unix time of the sample that ends the second
  double rps = 0;
  std::optional<double> error_rate;  // 5xx share
  std::optional<double> p50_ms, p99_ms;
};

// rollout::histogramQuantile over proxy::kLatencyBoundsUs (the windows' buckets), in seconds.
inline double histogramQuantile(const std::vector<std::uint64_t>& buckets, double q) {
  return rollout::histogramQuantile(buckets, proxy::kLatencyBoundsUs, q);
}

// fledge_endpoint_healthy and fledge_health_checks_total from the health checker's states.
std::vector<prometheus::MetricFamily> healthFamilies(const std::vector<proxy::HealthChecker::EndpointHealth>& states);

// fledge_tls_certificate_expiry_timestamp_seconds and fledge_tls_certificate_reloads_total from
// the TLS listeners' certificates (proxy::tls_registry::certificates() and counts()).
std::vector<prometheus::MetricFamily> tlsFamilies(const std::vector<proxy::tls_registry::CertificateState>& certs,
                                                  proxy::tls_registry::Counts counts);

// fledge_config_reload_total{source, result}: reloads of the configuration files.
struct ReloadCount {
  std::string source;  // "sighup", "flag_file"
  std::string result;  // "ok", "failed"
  std::uint64_t count = 0;
};
std::vector<prometheus::MetricFamily> reloadFamilies(const std::vector<ReloadCount>& counts);

class Metrics {
 public:
  using Clock = std::chrono::steady_clock;

  using Workers = std::vector<std::shared_ptr<const proxy::WorkerMetrics>>;
  Metrics(std::shared_ptr<const proxy::Snapshot> snap, Workers workers);
  // The configuration and the workers' counters as they are now (they change with the config).
  // Series are exported for the configuration's names, summed over workers by name.
  using Source = std::function<std::pair<std::shared_ptr<const proxy::Snapshot>, Workers>()>;
  explicit Metrics(Source source);

  // Families from elsewhere (the rollout controller's), added to every collection; set before
  // the admin listener starts.
  void addCollector(std::function<std::vector<prometheus::MetricFamily>()> c) { collectors_.push_back(std::move(c)); }

  // Text exposition of every family.
  std::string render() const;
  std::vector<prometheus::MetricFamily> collect() const;

  // Counts an admin API response (called on the admin thread).
  void adminResponse(unsigned status);
  // Config version shown as fledge_config_version.
  std::uint64_t configVersion() const {
    std::lock_guard lock(mu_);
    return config_version_;
  }
  void setConfigVersion(std::uint64_t v) {
    std::lock_guard lock(mu_);
    config_version_ = v;
  }

  // Windows: sample() records the cumulative per-arm counters by name (call it every second or
  // so); window() answers for the last `span` seconds. A configuration change keeps the windows
  // of every arm that survives it; an arm added within the window counts from zero.
  // Observed flags' variants (metrics.flag_outcomes) are sampled too, for series(). `wall` dates
  // the sample for the console.
  void sample(Clock::time_point now, std::chrono::system_clock::time_point wall = std::chrono::system_clock::now());
  ArmWindow window(const std::string& route, const std::string& arm, std::chrono::seconds span) const;
  // By index in the current configuration (arm 0 for a plain route).
  ArmWindow window(std::size_t route, std::size_t arm, std::chrono::seconds span) const;
  // Per sampled interval over the last `span`, oldest first: a route arm's responses, or with
  // `flag` set a flag variant's (only while the flag is observed). Empty for unknown names.
  enum class Of { kArm, kFlagVariant };
  std::vector<SeriesPoint> series(Of of, const std::string& name, const std::string& arm_or_variant, std::chrono::seconds span) const;
  // Evaluations in the proxy of every flag by variant since start, summed over reasons
  // (variants never evaluated are absent; "" = no value).
  std::map<std::string, std::map<std::string, std::uint64_t>> flagEvaluations() const;
  static constexpr std::size_t kMaxSamples = 601;  // ten minutes at one per second
  // Now, straight from the workers (for canary analysis; safe from any thread).
  ArmCounts armCounts(const std::string& route, const std::string& arm) const;
  // The responses to requests that got `variant` ("" = no value) of `flag`, a flag in
  // metrics.flag_outcomes (zero otherwise).
  ArmCounts flagOutcomeCounts(const std::string& flag, const std::string& variant) const;

  // GET /metrics on `server`; with tokens, a read token is required.
  void install(HttpServer& server, std::vector<std::string> tokens);

 private:
  // One block's counters (an arm's, a flag variant's), summed over the workers that have it.
  static ArmCounts sumArm(const Workers& workers, const std::function<const proxy::ArmCounters*(const proxy::WorkerMetrics&)>& block);
  struct ArmTotals {
    std::uint64_t requests = 0, errors = 0;
    std::array<std::uint64_t, proxy::kLatencyBuckets> buckets{};
  };
  // What a sample keeps of an arm's counts (per second for ten minutes): the coarse buckets.
  static ArmTotals totalsOf(const ArmCounts& c);
  struct Sample {
    Clock::time_point at;
    std::int64_t wall_ms = 0;
    std::unordered_map<std::string, ArmTotals> arms;      // by proxy::armKey(route, arm)
    std::unordered_map<std::string, ArmTotals> outcomes;  // by proxy::variantKey(flag, variant)
  };

  Source source_;
  std::vector<std::function<std::vector<prometheus::MetricFamily>()>> collectors_;
  mutable std::mutex mu_;  // admin-thread state read by tests and other control-plane threads
  std::shared_ptr<const proxy::Snapshot> sampled_snap_;  // the configuration of the last sample
  std::deque<Sample> samples_;
  std::vector<std::pair<unsigned, std::uint64_t>> admin_codes_;
  std::uint64_t config_version_ = 1;
};

}  // namespace fledge::admin
