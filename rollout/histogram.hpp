#pragma once
// The latency buckets Fledge counts every request into, per route arm: ten per decade (1, 1.2,
// 1.5, 2, 2.5, 3, 4, 5, 6, 8), each at most a third above the previous, from 50 us to 10 s — fine
// enough for canary analysis to compare quantiles. They include every bound of the coarser
// Prometheus histogram (proxy/metrics.hpp), which is summed from them, so a request is counted
// once.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace fledge::rollout {

inline constexpr std::array<std::uint32_t, 54> kLatencyBoundsUs = [] {
  std::array<std::uint32_t, 54> b{50, 60, 80};
  std::size_t n = 3;
  std::uint32_t scale = 1;
  for (int decade = 0; decade < 5; ++decade, scale *= 10)
    for (std::uint32_t m : {100, 120, 150, 200, 250, 300, 400, 500, 600, 800}) b[n++] = m * scale;
  b[n] = 10'000'000;
  return b;
}();
inline constexpr std::size_t kLatencyBounds = kLatencyBoundsUs.size();
inline constexpr std::size_t kLatencyBuckets = kLatencyBounds + 1;  // + above the last bound

// The bucket of a latency: the first whose bound it does not exceed.
inline std::size_t latencyBucket(std::uint64_t us) {
  return static_cast<std::size_t>(std::lower_bound(kLatencyBoundsUs.begin(), kLatencyBoundsUs.end(), us) - kLatencyBoundsUs.begin());
}

inline std::vector<double> latencyBoundsMs() {
  std::vector<double> out;
  for (auto us : kLatencyBoundsUs) out.push_back(us / 1000.0);
  return out;
}

// Quantile q (0..1), in seconds, from non-cumulative bucket counts with the given upper bounds
// in microseconds (one bucket more than bounds: the open top one), interpolated within a bucket.
double histogramQuantile(const std::vector<std::uint64_t>& buckets, std::span<const std::uint32_t> bounds_us, double q);

}  // namespace fledge::rollout
