#pragma once
// The latency buckets canary analysis works with: four per doubling (each bound 19 % above the
// previous) from 50 us to 11 s, fine enough that a latency quantile falls within a fifth of its
// value. The proxy counts every request into them per route arm; Prometheus gets its own coarser
// histogram.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fledge::rollout {

inline constexpr std::size_t kLatencyBounds = 72;
inline constexpr std::size_t kLatencyBuckets = kLatencyBounds + 1;  // + above the last bound

inline const std::array<std::uint32_t, kLatencyBounds>& latencyBoundsUs() {
  static const auto bounds = [] {
    std::array<std::uint32_t, kLatencyBounds> b{};
    for (std::size_t k = 0; k < kLatencyBounds; ++k) b[k] = static_cast<std::uint32_t>(std::lround(50.0 * std::exp2(double(k) / 4)));
    return b;
  }();
  return bounds;
}

// The bucket of a latency: the first whose bound it does not exceed.
inline std::size_t latencyBucket(std::uint64_t us) {
  const auto& b = latencyBoundsUs();
  return static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), us) - b.begin());
}

inline std::vector<double> latencyBoundsMs() {
  std::vector<double> out;
  for (auto us : latencyBoundsUs()) out.push_back(us / 1000.0);
  return out;
}

}  // namespace fledge::rollout
