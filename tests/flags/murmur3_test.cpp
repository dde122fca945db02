#include "flags/murmur3.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fledge::flags {
namespace {

// Published MurmurHash3_x86_32 vectors (SMHasher and the widely used test suites).
TEST(Murmur3, PublishedVectors) {
  struct V {
    std::string in;
    std::uint32_t seed;
    std::uint32_t want;
  };
  const V vectors[] = {
      {"", 0, 0},
      {"", 1, 0x514E28B7},
      {"", 0xffffffff, 0x81F16F39},
      {std::string("\0\0\0\0", 4), 0, 0x2362F9DE},
      {"aaaa", 0x9747b28c, 0x5A97808A},
      {"aaa", 0x9747b28c, 0x283E0130},
      {"aa", 0x9747b28c, 0x5D211726},
      {"a", 0x9747b28c, 0x7FA09EA6},
      {"abcd", 0x9747b28c, 0xF0478627},
      {"abc", 0x9747b28c, 0xC84A62DD},
      {"ab", 0x9747b28c, 0x74875592},
      {"Hello, world!", 0x9747b28c, 0x24884CBA},
      {"The quick brown fox jumps over the lazy dog", 0x9747b28c, 0x2FA826CD},
      {"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723},
      {"test", 0, 0xBA6BD213},
      {"Hello, world!", 0, 0xC0363E43},
  };
  for (const auto& v : vectors)
    EXPECT_EQ(murmur3_x86_32(v.in, v.seed), v.want) << "input \"" << v.in << "\" seed " << v.seed;
}

TEST(Murmur3, TwoPieceFormEqualsConcatenation) {
  const std::string s = "flag-keyuser-1234567890-abcdefghijklmnopqrstuvwxyz";
  for (std::size_t cut = 0; cut <= s.size(); ++cut)
    for (std::uint32_t seed : {0u, 42u})
      EXPECT_EQ(murmur3_x86_32(s.substr(0, cut), s.substr(cut), seed), murmur3_x86_32(s, seed)) << cut;
}

}  // namespace
}  // namespace fledge::flags
