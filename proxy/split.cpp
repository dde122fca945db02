#include "proxy/split.hpp"

#include <cmath>

#include "flags/murmur3.hpp"

namespace fledge::proxy {

std::uint32_t splitPoint(std::string_view salt, std::string_view key) {
  const std::uint64_t h = flags::murmur3_x86_32(salt, key);
  return static_cast<std::uint32_t>((h * kSplitScale) >> 32);
}

SplitTable::SplitTable(const std::vector<std::uint32_t>& parts) {
  std::uint32_t sum = 0;
  for (auto p : parts) {
    sum += p;
    bounds_.push_back(sum);
  }
}

bool percentToParts(double percent, std::uint32_t& parts) {
  if (!(percent >= 0) || percent > 100) return false;
  const double scaled = percent * 10'000;
  const double rounded = std::round(scaled);
  if (std::fabs(scaled - rounded) > 1e-6) return false;  // finer than 0.0001 %
  parts = static_cast<std::uint32_t>(rounded);
  return true;
}

}  // namespace fledge::proxy
