#pragma once
// Per-worker request metrics. Each worker owns one WorkerMetrics and is its only writer: an
// update is a relaxed load and store of a counter no other thread writes, so the data plane
// takes no lock and shares no written cache line. The admin thread reads all workers' counters
// and merges them when /metrics is scraped or a window is sampled.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace fledge::flags {
class FlagSet;
}

namespace fledge::proxy {

struct Snapshot;

// Request-duration histogram bounds, in microseconds (sub-millisecond proxying up to 10 s).
inline constexpr std::array<std::uint32_t, 16> kLatencyBoundsUs = {
    100, 250, 500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
    1'000'000, 2'500'000, 5'000'000, 10'000'000};
inline constexpr std::size_t kLatencyBuckets = kLatencyBoundsUs.size() + 1;  // + the +Inf bucket

enum class UpstreamError : std::uint8_t { kConnect = 0, kReset = 1, kTimeout = 2 };
enum class MirrorResult : std::uint8_t { kSent = 0, kDropped = 1, kFailed = 2 };
inline constexpr std::size_t kReasons = 5;  // flags::Reason values

// Index arithmetic shared by writers (workers) and the reader (admin).
struct MetricsLayout {
  std::size_t routes = 0;  // configured routes; index `routes` is "no route matched"
  std::size_t arms = 1;    // arms per route slot (plain routes use arm 0)
  std::size_t clusters = 0;
  std::vector<std::size_t> flag_offset;  // per flag: first slot of its [variant + none][reason] block
  std::size_t flag_slots = 0;

  explicit MetricsLayout(const Snapshot& snap);
  MetricsLayout() = default;
  std::size_t routeArm(std::size_t route, std::size_t arm) const { return route * arms + arm; }
  std::size_t routeArmSlots() const { return (routes + 1) * arms; }
};

class WorkerMetrics {
 public:
  // With `enabled` false nothing is counted (for measuring what metrics cost).
  explicit WorkerMetrics(const MetricsLayout& layout, bool enabled = true);
  bool enabled() const { return enabled_; }

  using Counter = std::atomic<std::uint64_t>;
  using Gauge = std::atomic<std::int64_t>;
  static void bump(Counter& c, std::uint64_t d = 1) {
    c.store(c.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }
  static void add(Gauge& g, std::int64_t d) {
    g.store(g.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
  }

  // A finished request: status class from its code, duration into the histogram.
  void request(std::size_t route, std::size_t arm, unsigned status, std::chrono::microseconds duration);
  void upstreamError(std::size_t cluster, UpstreamError kind) {
    if (enabled_) bump(upstream_errors_[cluster * 3 + static_cast<std::size_t>(kind)]);
  }
  void override(std::size_t route, std::size_t arm) {
    if (enabled_) bump(overrides_[layout_.routeArm(route, arm)]);
  }
  void mirror(std::size_t route, MirrorResult r) {
    if (enabled_) bump(mirror_[route * 3 + static_cast<std::size_t>(r)]);
  }
  void gauge(Gauge& g, std::int64_t d) {
    if (enabled_) add(g, d);
  }
  // `variant` is the variant index, or -1 when the evaluation gave no value.
  void flagEvaluation(std::size_t flag, int variant, std::size_t reason, std::size_t variant_count) {
    if (!enabled_) return;
    std::size_t v = variant < 0 ? variant_count : static_cast<std::size_t>(variant);
    bump(flag_evals_[layout_.flag_offset[flag] + v * kReasons + reason]);
  }
  Gauge& upstreamBusy(std::size_t cluster) { return upstream_busy_[cluster]; }
  Gauge& upstreamIdle(std::size_t cluster) { return upstream_idle_[cluster]; }
  Gauge& downstreamConnections() { return downstream_; }
  Counter& accessLogDropped() { return access_log_dropped_; }

  // Readers (any thread).
  const MetricsLayout& layout() const { return layout_; }
  std::uint64_t requests(std::size_t slot, std::size_t cls) const { return requests_[slot * 5 + cls].load(std::memory_order_relaxed); }
  std::uint64_t latencyBucket(std::size_t slot, std::size_t b) const {
    return latency_[slot * kLatencyBuckets + b].load(std::memory_order_relaxed);
  }
  std::uint64_t latencySumUs(std::size_t slot) const { return latency_sum_us_[slot].load(std::memory_order_relaxed); }
  std::uint64_t upstreamErrors(std::size_t cluster, std::size_t kind) const {
    return upstream_errors_[cluster * 3 + kind].load(std::memory_order_relaxed);
  }
  std::int64_t upstreamBusy(std::size_t c) const { return upstream_busy_[c].load(std::memory_order_relaxed); }
  std::int64_t upstreamIdle(std::size_t c) const { return upstream_idle_[c].load(std::memory_order_relaxed); }
  std::int64_t downstream() const { return downstream_.load(std::memory_order_relaxed); }
  std::uint64_t overrides(std::size_t slot) const { return overrides_[slot].load(std::memory_order_relaxed); }
  std::uint64_t mirrors(std::size_t route, std::size_t r) const { return mirror_[route * 3 + r].load(std::memory_order_relaxed); }
  std::uint64_t flagEvals(std::size_t slot) const { return flag_evals_[slot].load(std::memory_order_relaxed); }
  std::uint64_t accessLogDroppedCount() const { return access_log_dropped_.load(std::memory_order_relaxed); }

 private:
  MetricsLayout layout_;
  std::vector<Counter> requests_;        // [route-arm][class 1xx..5xx]
  std::vector<Counter> latency_;         // [route-arm][bucket]
  std::vector<Counter> latency_sum_us_;  // [route-arm]
  std::vector<Counter> upstream_errors_; // [cluster][kind]
  std::vector<Gauge> upstream_busy_, upstream_idle_;  // [cluster]
  std::vector<Counter> overrides_;       // [route-arm]
  std::vector<Counter> mirror_;          // [route][result]
  std::vector<Counter> flag_evals_;      // [flag block][variant][reason]
  Gauge downstream_{0};
  Counter access_log_dropped_{0};
  bool enabled_;
};

}  // namespace fledge::proxy
