#include "flags/murmur3.hpp"

#include <cstring>

namespace fledge::flags {
namespace {

constexpr std::uint32_t kC1 = 0xcc9e2d51;
constexpr std::uint32_t kC2 = 0x1b873593;

inline std::uint32_t rotl32(std::uint32_t x, int r) noexcept { return (x << r) | (x >> (32 - r)); }

inline std::uint32_t mixK(std::uint32_t k) noexcept {
  k *= kC1;
  k = rotl32(k, 15);
  return k * kC2;
}

inline std::uint32_t fmix32(std::uint32_t h) noexcept {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

// Feeds bytes one block of 4 at a time, carrying a partial block across input pieces.
struct Hasher {
  std::uint32_t h;
  std::uint32_t len = 0;
  unsigned char tail[4] = {};
  unsigned tail_len = 0;

  void feed(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size();
    len += static_cast<std::uint32_t>(n);
    while (tail_len != 0 && n != 0) {
      tail[tail_len++] = *p++;
      --n;
      if (tail_len == 4) {
        block(tail);
        tail_len = 0;
      }
    }
    while (n >= 4) {
      block(p);
      p += 4;
      n -= 4;
    }
    while (n != 0) {
      tail[tail_len++] = *p++;
      --n;
    }
  }

  void block(const unsigned char* p) noexcept {
    std::uint32_t k;
    std::memcpy(&k, p, 4);  // x86 and every platform we build on are little-endian
    h ^= mixK(k);
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64;
  }

  std::uint32_t finish() noexcept {
    std::uint32_t k = 0;
    switch (tail_len) {
      case 3: k ^= std::uint32_t{tail[2]} << 16; [[fallthrough]];
      case 2: k ^= std::uint32_t{tail[1]} << 8; [[fallthrough]];
      case 1: k ^= tail[0]; h ^= mixK(k);
    }
    h ^= len;
    return fmix32(h);
  }
};

}  // namespace

std::uint32_t murmur3_x86_32(std::string_view data, std::uint32_t seed) noexcept {
  // The straight-line form of the reference implementation.
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const std::size_t n = data.size();
  std::uint32_t h = seed;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    std::uint32_t k;
    std::memcpy(&k, p + i, 4);
    h ^= mixK(k);
    h = rotl32(h, 13);
    h = h * 5 + 0xe6546b64;
  }
  std::uint32_t k = 0;
  switch (n & 3) {
    case 3: k ^= std::uint32_t{p[i + 2]} << 16; [[fallthrough]];
    case 2: k ^= std::uint32_t{p[i + 1]} << 8; [[fallthrough]];
    case 1: k ^= p[i]; h ^= mixK(k);
  }
  h ^= static_cast<std::uint32_t>(n);
  return fmix32(h);
}

std::uint32_t murmur3_x86_32(std::string_view a, std::string_view b, std::uint32_t seed) noexcept {
  // Short pieces (route salts, flag keys, user ids) are joined on the stack and hashed in one go.
  if (a.size() + b.size() <= 256) {
    char buf[256];
    std::memcpy(buf, a.data(), a.size());
    std::memcpy(buf + a.size(), b.data(), b.size());
    return murmur3_x86_32(std::string_view(buf, a.size() + b.size()), seed);
  }
  Hasher hs{seed, 0, {}, 0};
  hs.feed(a);
  hs.feed(b);
  return hs.finish();
}

}  // namespace fledge::flags
