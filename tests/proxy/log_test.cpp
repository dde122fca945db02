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

// Log lines, the access log and API answers are JSON: bytes that are not UTF-8 (a request
// target, a percent-decoded key) must not make them invalid (found by tests/fuzz ofrep_body).
TEST(LogJson, StringsStayValidUtf8) {
  auto json = [](std::string_view s) {
    std::string out;
    appendJsonString(out, s);
    return out;
  };
  EXPECT_EQ(json("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(json("a\xFF" "b"), "\"a\\ufffdb\"");
  EXPECT_EQ(json("\xC3"), "\"\\ufffd\"");                      // truncated
  EXPECT_EQ(json("\xC0\xAF"), "\"\\ufffd\\ufffd\"");             // overlong '/'
  EXPECT_EQ(json("\xED\xA0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");   // a surrogate
  EXPECT_EQ(json("\xF4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
  EXPECT_EQ(json("q\"\\\n\x01"), "\"q\\\"\\\\\\n\\u0001\"");
}

}  // namespace
}  // namespace fledge::log
