// Fleet propagation: 1,000 writes on one instance of three, each followed until the other two
// serve it (proxied requests prove it); the time from the write's answer (its commit in etcd) to
// the last instance serving it, p50 and p99. A load test: ctest runs it alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "tests/integration/fleet_stack.hpp"

namespace fledge::test {
namespace {

TEST(FleetLoad, ThousandWritesReachEveryInstance) {
  FleetStack fleet(3);
  fleet.waitForMembers(3);
  const char* variants[] = {"blue", "green", "yellow", "red"};
  constexpr int kWrites = 1000;
  std::vector<double> ms;
  ms.reserve(kWrites);
  Client writer(fleet.admin(0));
  Client b(fleet.port(1)), c(fleet.port(2));
  auto serving = [](Client& client, const std::string& want) {
    auto flags = echoHeader(client.request(http::verb::get, "/", {{"x-user-id", "probe"}}).body(), "x-fledge-flags");
    return flags && *flags == want;
  };
  for (int i = 0; i < kWrites; ++i) {
    const std::string v = variants[i % 4];
    auto res = writer.request(http::verb::put, "/api/v1/flags/color/default-variant", {{"Content-Type", "application/json"}},
                              R"({"defaultVariant":")" + v + "\"}");
    ASSERT_EQ(res.result_int(), 200) << res.body();
    const auto committed = std::chrono::steady_clock::now();
    const std::string want = "color=" + v;
    bool on_b = false, on_c = false;
    while (!(on_b && on_c)) {
      if (!on_b) on_b = serving(b, want);
      if (!on_c) on_c = serving(c, want);
      ASSERT_LT(std::chrono::steady_clock::now() - committed, std::chrono::seconds(10)) << "write " << i << " never reached every instance";
    }
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - committed).count());
  }
  std::sort(ms.begin(), ms.end());
  const double p50 = ms[ms.size() / 2], p99 = ms[ms.size() * 99 / 100], max = ms.back();
  std::printf("fleet propagation over %d writes, 3 instances: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", kWrites, p50, p99, max);
#ifndef FLEDGE_TEST_SANITIZED
  EXPECT_LE(p99, 100.0);  // the issue's floor; the sanitizer build only reports
#endif
}

}  // namespace
}  // namespace fledge::test
