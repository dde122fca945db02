#include "rollout/histogram.hpp"

namespace fledge::rollout {

double histogramQuantile(const std::vector<std::uint64_t>& buckets, std::span<const std::uint32_t> bounds_us, double q) {
  std::uint64_t total = 0;
  for (auto c : buckets) total += c;
  if (total == 0) return 0;
  const double rank = q * static_cast<double>(total);
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b] == 0) continue;
    if (static_cast<double>(seen + buckets[b]) >= rank) {
      const double lo = b == 0 ? 0.0 : bounds_us[b - 1] / 1e6;
      if (b >= bounds_us.size()) return lo;  // the open top bucket: its lower bound is all we know
      const double hi = bounds_us[b] / 1e6;
      const double frac = (rank - static_cast<double>(seen)) / static_cast<double>(buckets[b]);
      return lo + (hi - lo) * std::clamp(frac, 0.0, 1.0);
    }
    seen += buckets[b];
  }
  return bounds_us.back() / 1e6;
}

}  // namespace fledge::rollout
