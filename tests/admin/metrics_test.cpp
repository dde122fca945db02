#include "admin/metrics.hpp"

#include <gtest/gtest.h>

#include "proxy/config.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::admin {
namespace {
using namespace std::chrono_literals;

std::shared_ptr<const proxy::Snapshot> snapshot() {
  auto r = proxy::parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],
    "clusters":{"v1":{"endpoints":["127.0.0.1:1"]},"v2":{"endpoints":["127.0.0.1:2"]}},
    "routes":[{"name":"web","split":{"arms":[{"name":"canary","cluster":"v2","weight":10},{"name":"stable","cluster":"v1","weight":90}]}}]})");
  EXPECT_TRUE(r.ok());
  std::string err;
  return proxy::Snapshot::create(std::move(*r.config), err);
}

TEST(HistogramQuantile, InterpolatesWithinBuckets) {
  std::vector<std::uint64_t> b(proxy::kLatencyBuckets, 0);
  EXPECT_EQ(histogramQuantile(b, 0.5), 0);
  b[0] = 50;   // <= 100 us
  b[3] = 50;   // 500 us .. 1 ms
  EXPECT_NEAR(histogramQuantile(b, 0.25), 50e-6, 1e-9);
  EXPECT_NEAR(histogramQuantile(b, 0.75), 750e-6, 1e-9);
  EXPECT_NEAR(histogramQuantile(b, 1.0), 1e-3, 1e-9);
}

TEST(ArmWindows, CompareCanaryWithStableOverTheLastSeconds) {
  auto snap = snapshot();
  ASSERT_TRUE(snap);
  proxy::MetricsLayout layout(*snap);
  proxy::WorkerMetrics w1(layout), w2(layout);
  Metrics m(snap, {&w1, &w2});
  auto t0 = Metrics::Clock::time_point{} + 1000s;
  // Old traffic, outside the window asked for later.
  for (int i = 0; i < 100; ++i) w1.request(0, 1, 200, 300us);
  m.sample(t0);
  m.sample(t0 + 5s);
  // The last 10 seconds: canary slower and failing more, spread over both workers.
  for (int i = 0; i < 40; ++i) w1.request(0, 0, i < 4 ? 503 : 200, 2ms);
  for (int i = 0; i < 60; ++i) w2.request(0, 0, 200, 2ms);
  for (int i = 0; i < 900; ++i) (i % 2 ? w1 : w2).request(0, 1, i < 9 ? 502 : 200, 400us);
  m.sample(t0 + 15s);

  ArmWindow canary = m.window(0, 0, 10s);
  EXPECT_EQ(canary.span, 10s);
  EXPECT_EQ(canary.requests, 100u);
  EXPECT_EQ(canary.errors, 4u);
  EXPECT_NEAR(canary.error_rate, 0.04, 1e-12);
  EXPECT_GT(canary.p50_seconds, 1e-3);
  EXPECT_LE(canary.p99_seconds, 2.5e-3);

  ArmWindow stable = m.window(0, 1, 10s);
  EXPECT_EQ(stable.requests, 900u);
  EXPECT_EQ(stable.errors, 9u);
  EXPECT_LT(stable.p50_seconds, 0.5e-3);
  EXPECT_GT(canary.p50_seconds, stable.p50_seconds);

  // Asking for more than was sampled covers what there is.
  ArmWindow all = m.window(0, 1, 60s);
  EXPECT_EQ(all.span, 15s);
  EXPECT_EQ(all.requests, 900u);  // the first sample already held the old 100
}

TEST(ArmWindows, RenderMergesWorkers) {
  auto snap = snapshot();
  ASSERT_TRUE(snap);
  proxy::MetricsLayout layout(*snap);
  proxy::WorkerMetrics w1(layout), w2(layout), off(layout, false);
  w1.request(0, 0, 200, 1ms);
  w2.request(0, 0, 204, 1ms);
  off.request(0, 0, 200, 1ms);  // disabled: counts nothing
  Metrics m(snap, {&w1, &w2, &off});
  std::string text = m.render();
  EXPECT_NE(text.find(R"(fledge_requests_total{route="web",arm="canary",cluster="v2",code="2xx"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fledge_split_weight{route="web",arm="canary"} 10)"), std::string::npos) << text;
}

}  // namespace
}  // namespace fledge::admin
