#pragma once
// Per-worker request metrics. Counters live in blocks keyed by the name of what they count
// (route and arm, cluster, flag and variant); a worker's MetricsRegistry carries every block
// whose name survives into the next configuration, so a series never goes backwards when the
// config changes. A WorkerMetrics is one configuration's index-aligned view of those blocks,
// immutable once built and pinned by the requests that run on it.
//
// Each worker is the only writer of its blocks: an update is a relaxed load and store, so the
// data plane takes no lock and shares no written cache line. The admin thread reads all
// workers' blocks by name and merges them when /metrics is scraped or a window is sampled.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rollout/histogram.hpp"

namespace fledge::proxy {

struct Snapshot;

// Request-duration histogram bounds of the Prometheus export and the admin windows, in
// microseconds (sub-millisecond proxying up to 10 s). Requests are counted in the finer
// rollout::kLatencyBoundsUs buckets, which contain every one of these bounds; these buckets are
// sums of those.
inline constexpr std::array<std::uint32_t, 16> kLatencyBoundsUs = {
    100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
    1'000'000, 2'500'000, 5'000'000, 10'000'000};
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;  // + the +Inf bucket

// For each fine bucket, the coarse bucket it belongs to.
inline constexpr std::array<std::uint8_t, rollout::kLatencyBuckets> kCoarseBucketOf = [] {
  std::array<std::uint8_t, rollout::kLatencyBuckets> m{};
  for (std::size_t k = 0; k < rollout::kLatencyBuckets; ++k) {
    std::size_t c = 0;
    while (c < kLatencyBoundsUs.size() && (k == rollout::kLatencyBounds || rollout::kLatencyBoundsUs[k] > kLatencyBoundsUs[c])) ++c;
    m[k] = static_cast<std::uint8_t>(c);
  }
  return m;
}();
static_assert([] {
  for (auto c : kLatencyBoundsUs)
    if (std::find(rollout::kLatencyBoundsUs.begin(), rollout::kLatencyBoundsUs.end(), c) == rollout::kLatencyBoundsUs.end()) return false;
  return true;
}(), "every coarse bound must be a fine bound, or a coarse bucket would split a fine one");

enum class UpstreamError : std::uint8_t { kConnect = 0, kReset = 1, kTimeout = 2, kTls = 3 };
inline constexpr std::size_t kUpstreamErrorKinds = 4;
enum class MirrorResult : std::uint8_t { kSent = 0, kDropped = 1, kFailed = 2 };
inline constexpr std::size_t kReasons = 5;  // flags::Reason values

using Counter = std::atomic<std::uint64_t>;
using Gauge = std::atomic<std::int64_t>;
inline void bump(Counter& c, std::uint64_t d = 1) {
  c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
}
inline void add(Gauge& g, std::int64_t d) { g.store(g.load(std::memory_order_relaxed) + d, std::memory_order_relaxed); }
inline std::uint64_t read(const Counter& c) { return c.load(std::memory_order_relaxed); }
inline std::int64_t read(const Gauge& g) { return g.load(std::memory_order_relaxed); }

// One route arm (a plain route is its own single arm; the "no route" slot is route "").
struct ArmCounters {
  std::array<Counter, 5> requests{};  // by status class 1xx..5xx
  std::array<Counter, rollout::kLatencyBuckets> latency{};  // fine buckets (rollout/histogram.hpp)
  Counter latency_sum_us{0};
  Counter overrides{0};
  Counter fallbacks{0};  // requests for this arm that its route's fallback arm served
};
struct ClusterCounters {
  std::array<Counter, kUpstreamErrorKinds> errors{};  // by UpstreamError
  Gauge busy{0}, idle{0};           // upstream connections
  std::array<Counter, 4> retries{};  // by AttemptResult - 1 (connect failure, reset, timeout, status)
  std::array<Counter, 2> retried{};  // requests that were retried, by outcome: [0] answered below 500, [1] not
  Counter budget_exhausted{0};       // retries the budget refused
  Counter ejections{0};              // outlier ejections
  Counter circuit_open{0};           // requests the circuit breaker refused
};
struct RouteCounters {
  std::array<Counter, 3> mirror{};  // by MirrorResult
};
struct VariantCounters {  // one flag variant (or "no value") by reason
  std::array<Counter, kReasons> evals{};
};
struct WorkerCounters {  // not tied to any configuration
  Gauge downstream{0};
  Counter access_log_dropped{0};
  Counter tls_handshakes{0};          // downstream handshakes completed
  Counter tls_handshake_failures{0};  // ... and failed or abandoned
};

// Names of series, as the registry keys them.
std::string armKey(std::string_view route, std::string_view arm);
std::string variantKey(std::string_view flag, std::string_view variant);

// The blocks of one kind: the live ones by name, plus a bounded set of recently removed ones so
// a name that comes back resumes its counts.
template <typename T>
class BlockMap {
 public:
  static constexpr std::size_t kRetired = 1024;
  // The block for `key` in the configuration being built.
  std::shared_ptr<T> take(const std::string& key) {
    if (auto it = next_.find(key); it != next_.end()) return it->second;
    std::shared_ptr<T> block;
    if (auto it = live_.find(key); it != live_.end()) {
      block = std::move(it->second);
      live_.erase(it);
    } else if (auto r = retired_.find(key); r != retired_.end()) {
      block = std::move(r->second);
      retired_.erase(r);
    } else {
      block = std::make_shared<T>();
    }
    return next_.emplace(key, std::move(block)).first->second;
  }
  // The configuration is built: blocks it did not take are retired (oldest dropped first).
  void commit() {
    for (auto& [key, block] : live_) {
      order_.push_back(key);
      retired_[key] = std::move(block);
    }
    live_ = std::move(next_);
    next_.clear();
    while (retired_.size() > kRetired && !order_.empty()) {
      retired_.erase(order_.front());
      order_.pop_front();
    }
    if (order_.size() > 4 * kRetired) {  // keys taken back from retirement linger in order_
      std::deque<std::string> kept;
      for (auto& k : order_)
        if (retired_.count(k)) kept.push_back(std::move(k));
      order_ = std::move(kept);
    }
  }
  std::size_t liveSize() const { return live_.size(); }
  std::size_t retiredSize() const { return retired_.size(); }

 private:
  std::unordered_map<std::string, std::shared_ptr<T>> live_, next_, retired_;
  std::deque<std::string> order_;
};

// One worker's blocks; used on that worker's thread only.
class MetricsRegistry {
 public:
  MetricsRegistry() : worker_(std::make_shared<WorkerCounters>()) {}
  BlockMap<ArmCounters> arms;
  BlockMap<ClusterCounters> clusters;
  BlockMap<RouteCounters> routes;
  BlockMap<VariantCounters> variants;
  BlockMap<ArmCounters> outcomes;  // by variantKey
  const std::shared_ptr<WorkerCounters>& worker() const { return worker_; }
  void commit() {
    arms.commit();
    clusters.commit();
    routes.commit();
    variants.commit();
    outcomes.commit();
  }

 private:
  std::shared_ptr<WorkerCounters> worker_;
};

class WorkerMetrics {
 public:
  // Takes the blocks `snap` needs from `registry` (and commits it). With `enabled` false nothing
  // is counted (for measuring what metrics cost).
  WorkerMetrics(const Snapshot& snap, MetricsRegistry& registry, bool enabled = true);
  bool enabled() const { return enabled_; }

  // --- writers: the worker thread, by the indexes of the snapshot this view was built for ---
  // A finished request: status class from its code, duration into the histogram. `route` may be
  // the route count ("no route").
  void request(std::size_t route, std::size_t arm, unsigned status, std::chrono::microseconds duration) {
    if (enabled_) count(*arms_[route][arm], status, duration);
  }
  // The response of a request that got `variant` (-1: no value) of the flag in outcome `slot`.
  void flagOutcome(std::size_t slot, int variant, unsigned status, std::chrono::microseconds duration) {
    if (!enabled_) return;
    const auto& row = outcomes_[slot];
    count(*row[variant < 0 ? row.size() - 1 : static_cast<std::size_t>(variant)], status, duration);
  }
  void upstreamError(std::size_t cluster, UpstreamError kind) {
    if (enabled_) bump(clusters_[cluster]->errors[static_cast<std::size_t>(kind)]);
  }
  void override(std::size_t route, std::size_t arm) {
    if (enabled_) bump(arms_[route][arm]->overrides);
  }
  void fallback(std::size_t route, std::size_t arm) {
    if (enabled_) bump(arms_[route][arm]->fallbacks);
  }
  void mirror(std::size_t route, MirrorResult r) {
    if (enabled_) bump(routes_[route]->mirror[static_cast<std::size_t>(r)]);
  }
  // `variant` is the variant index, or -1 when the evaluation gave no value.
  void flagEvaluation(std::size_t flag, int variant, std::size_t reason) {
    if (!enabled_) return;
    const auto& v = variants_[flag];
    bump(v[variant < 0 ? v.size() - 1 : static_cast<std::size_t>(variant)]->evals[reason]);
  }
  void gauge(Gauge& g, std::int64_t d) {
    if (enabled_) add(g, d);
  }
  const std::shared_ptr<ClusterCounters>& clusterBlock(std::size_t cluster) const { return clusters_[cluster]; }
  WorkerCounters& worker() const { return *worker_; }

  // --- readers: any thread, by name; nullptr when this configuration has no such series ---
  const ArmCounters* arm(std::string_view route, std::string_view arm) const;  // arm "" for plain routes
  const ClusterCounters* cluster(std::string_view name) const;
  const RouteCounters* route(std::string_view name) const;
  const VariantCounters* variant(std::string_view flag, std::string_view variant) const;  // "" = no value
  // Responses by flag variant (metrics.flag_outcomes); "" = no value.
  const ArmCounters* outcome(std::string_view flag, std::string_view variant) const;

 private:
  static void count(ArmCounters& a, unsigned status, std::chrono::microseconds duration);
  template <typename T>
  using ByName = std::unordered_map<std::string, const T*>;
  std::vector<std::vector<std::shared_ptr<ArmCounters>>> arms_;  // [route][arm]; [routes][0] = no route
  std::vector<std::shared_ptr<ClusterCounters>> clusters_;
  std::vector<std::shared_ptr<RouteCounters>> routes_;            // [route]; [routes] = no route
  std::vector<std::vector<std::shared_ptr<VariantCounters>>> variants_;  // [flag][variant, then "no value"]
  std::vector<std::vector<std::shared_ptr<ArmCounters>>> outcomes_;      // [outcome slot][variant, then "no value"]
  std::shared_ptr<WorkerCounters> worker_;
  ByName<ArmCounters> arm_names_;
  ByName<ClusterCounters> cluster_names_;
  ByName<RouteCounters> route_names_;
  ByName<VariantCounters> variant_names_;
  ByName<ArmCounters> outcome_names_;
  bool enabled_;
};

}  // namespace fledge::proxy
