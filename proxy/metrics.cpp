#include "proxy/metrics.hpp"

#include <algorithm>

#include "flags/flag_set.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {

MetricsLayout::MetricsLayout(const Snapshot& snap) {
  routes = snap.config.routes.size();
  for (const auto& r : snap.config.routes)
    if (r.split) arms = std::max(arms, r.split->arms.size());
  clusters = snap.config.clusters.size();
  if (const auto* set = snap.config.flag_set.get()) {
    for (const auto& f : set->flags()) {
      flag_offset.push_back(flag_slots);
      flag_slots += (f.variants.size() + 1) * kReasons;
    }
  }
}

WorkerMetrics::WorkerMetrics(const MetricsLayout& layout, bool enabled)
    : layout_(layout),
      requests_(layout.routeArmSlots() * 5),
      latency_(layout.routeArmSlots() * kLatencyBuckets),
      latency_sum_us_(layout.routeArmSlots()),
      upstream_errors_(layout.clusters * 3),
      upstream_busy_(layout.clusters),
      upstream_idle_(layout.clusters),
      overrides_(layout.routeArmSlots()),
      mirror_((layout.routes + 1) * 3),
      flag_evals_(layout.flag_slots),
      enabled_(enabled) {}

void WorkerMetrics::request(std::size_t route, std::size_t arm, unsigned status, std::chrono::microseconds duration) {
  if (!enabled_) return;
  const std::size_t slot = layout_.routeArm(route, arm);
  const std::size_t cls = std::clamp<unsigned>(status / 100, 1, 5) - 1;
  bump(requests_[slot * 5 + cls]);
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(duration.count(), 0));
  std::size_t b = 0;
  while (b < kLatencyBoundsUs.size() && us > kLatencyBoundsUs[b]) ++b;
  bump(latency_[slot * kLatencyBuckets + b]);
  bump(latency_sum_us_[slot], us);
}

}  // namespace fledge::proxy
