#pragma once
// MurmurHash3 x86_32 (Austin Appleby, public domain). This is the hash flagd's `fractional`
// uses for bucketing, so Fledge's buckets agree with every flagd/OpenFeature SDK.
#include <cstdint>
#include <string_view>

namespace fledge::flags {

std::uint32_t murmur3_x86_32(std::string_view data, std::uint32_t seed = 0) noexcept;

// Incremental form for hashing `a + b` without building the concatenated string.
std::uint32_t murmur3_x86_32(std::string_view a, std::string_view b, std::uint32_t seed = 0) noexcept;

}  // namespace fledge::flags
