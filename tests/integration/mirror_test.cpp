// Shadow traffic: copies reach the mirror cluster marked x-fledge-shadow, and a dead or slow
// mirror changes neither the status nor the latency of primary responses.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

// Mirrored copies the echo upstream received (asking does not count: it is not a copy).
std::uint64_t shadowTotal(std::uint16_t port) {
  return std::stoull(echoField(get(port, "/count").body(), "shadow_requests_total"));
}

// Accepts connections and reads forever without answering: the slowest possible mirror.
class BlackholeUpstream {
 public:
  BlackholeUpstream() : acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    acceptor_.non_blocking(true);
    thread_ = std::thread([this] {
      std::vector<std::unique_ptr<tcp::socket>> held;
      while (!stop_) {
        boost::system::error_code ec;
        auto s = std::make_unique<tcp::socket>(ioc_);
        acceptor_.accept(*s, ec);
        if (!ec) held.push_back(std::move(s));
        else std::this_thread::sleep_for(2ms);
      }
    });
  }
  ~BlackholeUpstream() {
    stop_ = true;
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string mirrorConfig(const std::string& primary, const std::string& shadow, const std::string& mirror_extra = "") {
  return config(R"({"main":{"endpoints":[")" + primary + R"("]},"shadow":{"endpoints":[")" + shadow + R"("]}})",
                R"([{"name":"web","match":{"path_prefix":"/"},"cluster":"main",
                     "mirror":{"cluster":"shadow","percent":100)" + mirror_extra + "}}]");
}

TEST(Mirror, CopiesReachTheShadowClusterMarked) {
  EchoUpstream primary("primary"), shadow("shadow");
  Fledge f(mirrorConfig(primary.address(), shadow.address(), R"(,"max_body_bytes":1000)"));
  const std::uint64_t before = shadowTotal(shadow.port());
  Client c(f.port());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c.request(http::verb::get, "/g" + std::to_string(i)).result_int(), 200);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.request(http::verb::post, "/p", {}, std::string(500, 'b')).result_int(), 200);
  c.send("POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  ASSERT_EQ(c.read().result_int(), 200);
  // Too large: not mirrored (declared, and discovered while streaming chunks).
  ASSERT_EQ(c.request(http::verb::post, "/big", {}, std::string(5000, 'b')).result_int(), 200);
  c.send("POST /bigchunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + std::string(2000, 'x') +
         "\r\n0\r\n\r\n");
  ASSERT_EQ(c.read().result_int(), 200);
  // 16 copies are expected; they arrive asynchronously.
  std::uint64_t got = 0;
  for (int i = 0; i < 200 && got < before + 16; ++i) {
    got = shadowTotal(shadow.port());
    if (got < before + 16) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(got, before + 16);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(shadowTotal(shadow.port()), before + 16) << "an oversized body was mirrored";
}

TEST(Mirror, ShadowCopyIsThePrimaryRequestPlusMarker) {
  EchoUpstream primary("primary"), shadow("shadow");
  Fledge f(mirrorConfig(primary.address(), shadow.address()));
  Client c(f.port());
  auto res = c.request(http::verb::post, "/same?x=1", {{"X-User-Id", "u1"}, {"X-Fledge-Shadow", "forged"}},
                       std::string(321, 'z'));
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_FALSE(echoHeader(res.body(), "x-fledge-shadow").has_value());  // the forged marker is stripped
  std::string copy = "{}";
  for (int i = 0; i < 100; ++i) {
    copy = get(shadow.port(), "/__echo/last-shadow").body();
    if (copy.size() > 2) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(echoHeader(copy, "x-fledge-shadow"), "1");
  EXPECT_EQ(echoField(copy, "target"), "/same?x=1");
  EXPECT_EQ(echoField(copy, "method"), "POST");
  EXPECT_EQ(echoField(copy, "body_length"), "321");
  EXPECT_EQ(echoHeader(copy, "x-user-id"), "u1");
  EXPECT_EQ(echoHeader(copy, "x-request-id"), echoHeader(res.body(), "x-request-id"));  // correlates with the primary
}

// p99 in microseconds of `n` sequential GETs.
double p99(std::uint16_t port, int n) {
  Client c(port);
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto res = c.request(http::verb::get, "/lat");
    EXPECT_EQ(res.result_int(), 200);
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return us[static_cast<std::size_t>(n * 0.99)];
}

TEST(Mirror, DeadOrSlowMirrorDoesNotTouchPrimaryResponses) {
  EchoUpstream primary("primary");
  BlackholeUpstream slow;
  const std::string dead = deadAddress();
  Fledge plain(config(R"({"main":{"endpoints":[")" + primary.address() + R"("]}})",
                      R"([{"name":"web","match":{"path_prefix":"/"},"cluster":"main"}])"));
  Fledge to_dead(mirrorConfig(primary.address(), dead));
  Fledge to_slow(mirrorConfig(primary.address(), slow.address(), R"(,"max_in_flight":8,"timeout_ms":3000)"));
  const int n = 400;
  p99(plain.port(), 50);  // warm up
  double base = p99(plain.port(), n);
  double with_dead = p99(to_dead.port(), n);
  double with_slow = p99(to_slow.port(), n);
  std::printf("p99 (us): no mirror %.0f, dead mirror %.0f, slow mirror %.0f\n", base, with_dead, with_slow);
  // A mirror that blocked the primary would add its whole timeout (seconds); allow scheduler noise.
  EXPECT_LT(with_dead, base * 3 + 5000);
  EXPECT_LT(with_slow, base * 3 + 5000);
  EXPECT_TRUE(to_slow.process().running());
}

}  // namespace
}  // namespace fledge::test
