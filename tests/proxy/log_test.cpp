// Failure-log rate limiting, by simulation with an injected clock.
#include "proxy/log.hpp"

#include <gtest/gtest.h>

namespace fledge::log {
namespace {

TEST(LogLimiter, AtMostTenLinesPerSecondThenTheCountOfWhatWasHeldBack) {
  Limiter l;
  std::uint64_t suppressed = 99;
  int allowed = 0;
  for (int i = 0; i < 1000; ++i) allowed += l.allow(100, suppressed);
  EXPECT_EQ(allowed, static_cast<int>(Limiter::kPerSecond));
  // The next second: the first line says how many were held back, then the count restarts.
  ASSERT_TRUE(l.allow(101, suppressed));
  EXPECT_EQ(suppressed, 1000u - Limiter::kPerSecond);
  ASSERT_TRUE(l.allow(101, suppressed));
  EXPECT_EQ(suppressed, 0u);
  // A quiet period changes nothing: nothing was held back.
  ASSERT_TRUE(l.allow(500, suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace fledge::log
