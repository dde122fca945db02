#pragma once
// Weighted traffic splitting: a request's key is hashed onto [0, 1,000,000) with the same
// murmur3 scaling as flagd's `fractional`, and the point walks the arms' cumulative weights in
// the order they are listed. With the canary listed first, raising its weight only ever moves
// users from the other arms into it (monotonic ramp).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fledge::proxy {

constexpr std::uint32_t kSplitScale = 1'000'000;  // weights are percentages with 4 decimals

// The point for `salt + key`: (uint64(murmur3_x86_32(salt + key, 0)) * 1,000,000) >> 32.
std::uint32_t splitPoint(std::string_view salt, std::string_view key);

// Cumulative upper bounds of the arms, in listed order; the last one is kSplitScale.
class SplitTable {
 public:
  SplitTable() = default;
  explicit SplitTable(const std::vector<std::uint32_t>& parts);
  // Index of the arm owning `point` (< kSplitScale).
  std::size_t pick(std::uint32_t point) const {
    std::size_t i = 0;
    while (i + 1 < bounds_.size() && point >= bounds_[i]) ++i;
    return i;
  }
  std::size_t size() const { return bounds_.size(); }

 private:
  std::vector<std::uint32_t> bounds_;
};

// Parses a percentage with at most 4 decimals ("12.5", 5, 0.0001) into parts per million.
// Returns false for negatives, more than 4 decimals or more than 100.
bool percentToParts(double percent, std::uint32_t& parts);

}  // namespace fledge::proxy
