#include "admin/metrics.hpp"

#include <gtest/gtest.h>

#include "proxy/config.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::admin {
namespace {
using namespace std::chrono_literals;

std::shared_ptr<const proxy::Snapshot> snapshotOf(const std::string& routes) {
  auto r = proxy::parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],
    "clusters":{"v1":{"endpoints":["127.0.0.1:1"]},"v2":{"endpoints":["127.0.0.1:2"]}},
    "routes":)" + routes + "}");
  EXPECT_TRUE(r.ok());
  std::string err;
  return proxy::Snapshot::create(std::move(*r.config), err);
}

std::shared_ptr<const proxy::Snapshot> snapshot() {
  return snapshotOf(R"([{"name":"web","split":{"arms":[{"name":"canary","cluster":"v2","weight":10},{"name":"stable","cluster":"v1","weight":90}]}}])");
}

using Workers = Metrics::Workers;

TEST(HistogramQuantile, InterpolatesWithinBuckets) {
  std::vector<std::uint64_t> b(proxy::kLatencyBuckets, 0);
  EXPECT_EQ(histogramQuantile(b, 0.5), 0);
  b[0] = 50;   // <= 100 us
  b[3] = 50;   // 500 us .. 1 ms
  EXPECT_NEAR(histogramQuantile(b, 0.25), 50e-6, 1e-9);
  EXPECT_NEAR(histogramQuantile(b, 0.75), 750e-6, 1e-9);
  EXPECT_NEAR(histogramQuantile(b, 1.0), 1e-3, 1e-9);
}

// Requests are counted once, in the fine buckets; the exported ones are exact sums of them.
TEST(HistogramQuantile, CoarseBucketsAreSumsOfFineOnes) {
  using proxy::kCoarseBucketOf;
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(50)], 0);
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(100)], 0);
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(101)], 1);
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(250)], 1);
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(251)], 2);
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(10'000'000)], 15);
  EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(10'000'001)], 16);
  for (std::uint64_t us : {1ull, 99ull, 2'400ull, 2'600ull, 777'777ull, 4'999'999ull}) {
    std::size_t coarse = 0;
    while (coarse < proxy::kLatencyBoundsUs.size() && us > proxy::kLatencyBoundsUs[coarse]) ++coarse;
    EXPECT_EQ(kCoarseBucketOf[rollout::latencyBucket(us)], coarse) << us;
  }
}

TEST(ArmWindows, CompareCanaryWithStableOverTheLastSeconds) {
  auto snap = snapshot();
  ASSERT_TRUE(snap);
  proxy::MetricsRegistry r1, r2;
  auto p1 = std::make_shared<proxy::WorkerMetrics>(*snap, r1);
  auto p2 = std::make_shared<proxy::WorkerMetrics>(*snap, r2);
  auto& w1 = *p1;
  auto& w2 = *p2;
  Metrics m(snap, Workers{p1, p2});
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
  proxy::MetricsRegistry r1, r2, r3;
  auto w1 = std::make_shared<proxy::WorkerMetrics>(*snap, r1);
  auto w2 = std::make_shared<proxy::WorkerMetrics>(*snap, r2);
  auto off = std::make_shared<proxy::WorkerMetrics>(*snap, r3, false);
  w1->request(0, 0, 200, 1ms);
  w2->request(0, 0, 204, 1ms);
  off->request(0, 0, 200, 1ms);  // disabled: counts nothing
  Metrics m(snap, Workers{w1, w2, off});
  std::string text = m.render();
  EXPECT_NE(text.find(R"(fledge_requests_total{route="web",arm="canary",cluster="v2",code="2xx"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fledge_split_weight{route="web",arm="canary"} 10)"), std::string::npos) << text;
}

// One expiry sample per certificate in use (labelled by its first DNS name), and both reload
// results from zero, through the collector hook as main.cpp adds them.
TEST(TlsMetrics, CertificateExpiryAndReloads) {
  std::vector<proxy::tls_registry::CertificateState> certs{
      {"admin", {"/etc/fledge/admin.crt", {"admin.example", "alt.example"}, 1'900'000'000}},
      {"main", {"/etc/fledge/a.crt", {"*.example.com"}, 1'800'000'000}},
      {"main", {"/etc/fledge/cn-only.crt", {}, 1'700'000'000}}};
  Metrics m(snapshot(), Workers{});
  m.addCollector([&] { return tlsFamilies(certs, {3, 1}); });
  std::string text = m.render();
  EXPECT_NE(text.find("# TYPE fledge_tls_certificate_expiry_timestamp_seconds gauge"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fledge_tls_certificate_expiry_timestamp_seconds{listener="admin",file="/etc/fledge/admin.crt",name="admin.example"} 1900000000)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(fledge_tls_certificate_expiry_timestamp_seconds{listener="main",file="/etc/fledge/a.crt",name="*.example.com"} 1800000000)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(fledge_tls_certificate_expiry_timestamp_seconds{listener="main",file="/etc/fledge/cn-only.crt",name=""} 1700000000)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE fledge_tls_certificate_reloads_total counter"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fledge_tls_certificate_reloads_total{result="ok"} 3)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fledge_tls_certificate_reloads_total{result="failed"} 1)"), std::string::npos) << text;

  // No TLS listener: no expiry samples, reloads at zero.
  auto none = tlsFamilies({}, {});
  ASSERT_EQ(none.size(), 2u);
  EXPECT_TRUE(none[0].metric.empty());
  ASSERT_EQ(none[1].metric.size(), 2u);
  EXPECT_EQ(none[1].metric[0].counter.value, 0);
  EXPECT_EQ(none[1].metric[1].counter.value, 0);
}

// Counters are keyed by name: a configuration change that keeps a series keeps its count, one
// that removes it stops exporting it, and windows never go below zero.
TEST(MetricCarryOver, SurvivingSeriesNeverGoBackwards) {
  auto v1 = snapshot();
  // v2: routes reordered, an arm added, stable's weight changed: indexes move, names stay.
  auto v2 = snapshotOf(R"([{"name":"extra","cluster":"v1"},
    {"name":"web","split":{"arms":[{"name":"dark","cluster":"v1","weight":1},{"name":"canary","cluster":"v2","weight":10},{"name":"stable","cluster":"v1","weight":89}]}}])");
  // v3: the canary arm removed.
  auto v3 = snapshotOf(R"([{"name":"web","split":{"arms":[{"name":"stable","cluster":"v1","weight":100},{"name":"dark","cluster":"v1","weight":0}]}}])");
  ASSERT_TRUE(v1 && v2 && v3);
  proxy::MetricsRegistry reg;
  auto g1 = std::make_shared<proxy::WorkerMetrics>(*v1, reg);
  for (int i = 0; i < 7; ++i) g1->request(0, 0, 200, 1ms);  // web/canary
  for (int i = 0; i < 5; ++i) g1->request(0, 1, 503, 1ms);  // web/stable
  g1->upstreamError(1, proxy::UpstreamError::kConnect);     // v2 cluster

  auto g2 = std::make_shared<proxy::WorkerMetrics>(*v2, reg);
  g1->request(0, 0, 200, 1ms);  // a request still running on v1 finishes after the change
  g2->request(1, 1, 200, 1ms);  // web/canary, now at index [1][1]
  g2->request(1, 2, 200, 1ms);  // web/stable
  g2->request(0, 0, 200, 1ms);  // extra
  EXPECT_EQ(proxy::read(g2->arm("web", "canary")->requests[1]), 9u);
  EXPECT_EQ(proxy::read(g2->arm("web", "stable")->requests[4]), 5u);
  EXPECT_EQ(proxy::read(g2->arm("web", "stable")->requests[1]), 1u);
  EXPECT_EQ(proxy::read(g2->cluster("v2")->errors[0]), 1u);
  EXPECT_EQ(g1->arm("web", "canary"), g2->arm("web", "canary"));  // one block, two views

  Metrics m(v2, Workers{g2});
  std::string text = m.render();
  EXPECT_NE(text.find(R"(fledge_requests_total{route="web",arm="canary",cluster="v2",code="2xx"} 9)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(fledge_upstream_errors_total{cluster="v2",kind="connect"} 1)"), std::string::npos) << text;

  auto g3 = std::make_shared<proxy::WorkerMetrics>(*v3, reg);
  EXPECT_EQ(g3->arm("web", "canary"), nullptr);
  Metrics m3(v3, Workers{g3});
  std::string text3 = m3.render();
  EXPECT_EQ(text3.find("arm=\"canary\""), std::string::npos) << text3;  // removed: not exported
  EXPECT_NE(text3.find(R"(fledge_requests_total{route="web",arm="stable",cluster="v1",code="5xx"} 5)"), std::string::npos) << text3;

  // Added back: it resumes its count instead of restarting at zero.
  auto g4 = std::make_shared<proxy::WorkerMetrics>(*v1, reg);
  EXPECT_EQ(proxy::read(g4->arm("web", "canary")->requests[1]), 9u);
}

TEST(MetricCarryOver, MemoryStaysBoundedUnderEndlessChanges) {
  proxy::MetricsRegistry reg;
  for (int i = 0; i < 3000; ++i) {
    auto snap = snapshotOf(R"([{"name":"r)" + std::to_string(i) + R"(","cluster":"v1"}])");
    ASSERT_TRUE(snap);
    proxy::WorkerMetrics view(*snap, reg);
    view.request(0, 0, 200, 1ms);
  }
  EXPECT_LE(reg.arms.liveSize(), 2u);  // the route and "no route"
  EXPECT_LE(reg.arms.retiredSize(), proxy::BlockMap<proxy::ArmCounters>::kRetired);
  EXPECT_LE(reg.routes.retiredSize(), proxy::BlockMap<proxy::RouteCounters>::kRetired);
}

// Metrics over one worker whose configuration changes from snapshot() to one where route
// "extra" comes first and "web" (canary and stable at 50 %) second.
struct ChangingConfig {
  std::shared_ptr<const proxy::Snapshot> v1 = snapshot();
  std::shared_ptr<const proxy::Snapshot> v2 = snapshotOf(R"([{"name":"extra","cluster":"v1"},
    {"name":"web","split":{"arms":[{"name":"canary","cluster":"v2","weight":50},{"name":"stable","cluster":"v1","weight":50}]}}])");
  proxy::MetricsRegistry reg;
  std::shared_ptr<proxy::WorkerMetrics> g1 = std::make_shared<proxy::WorkerMetrics>(*v1, reg);
  std::shared_ptr<const proxy::Snapshot> current = v1;
  Workers workers{g1};
  Metrics m{[this] { return std::make_pair(current, workers); }};
  // Moves the worker to v2; its counters for surviving names carry over.
  std::shared_ptr<proxy::WorkerMetrics> change() {
    auto g2 = std::make_shared<proxy::WorkerMetrics>(*v2, reg);
    current = v2;
    workers = {g2};
    return g2;
  }
};

TEST(ArmWindows, KeepCountingAcrossConfigurationChanges) {
  ChangingConfig c;
  auto& g1 = c.g1;
  auto& m = c.m;
  auto t0 = Metrics::Clock::time_point{} + 1000s;
  for (int i = 0; i < 10; ++i) g1->request(0, 0, 200, 1ms);
  m.sample(t0);
  for (int i = 0; i < 10; ++i) g1->request(0, 0, i < 2 ? 500 : 200, 1ms);
  // The change: canary moves from index 0 to [1][0] and a route appears in front of it.
  auto g2 = c.change();
  m.sample(t0 + 1s);
  for (int i = 0; i < 5; ++i) g2->request(1, 0, 200, 1ms);
  for (int i = 0; i < 3; ++i) g2->request(0, 0, 200, 1ms);
  m.sample(t0 + 2s);

  ArmWindow canary = m.window("web", "canary", 2s);
  EXPECT_EQ(canary.requests, 15u);
  EXPECT_EQ(canary.errors, 2u);
  EXPECT_EQ(m.window(1, 0, 2s).requests, 15u);  // by index in the current configuration
  ArmWindow extra = m.window("extra", "", 2s);   // born within the window: counted from zero
  EXPECT_EQ(extra.requests, 3u);
  EXPECT_EQ(m.window("gone", "", 2s).requests, 0u);
}

// The console's charts: one point per sampled second with that second's rate, 5xx share and
// quantiles; a quiet second has a rate of 0 and no share or quantiles; an arm born later has
// points from its second sample on; only the asked span is returned.
TEST(ArmSeries, OnePointPerSampledSecond) {
  ChangingConfig c;
  auto& g1 = c.g1;
  auto& m = c.m;
  const auto t0 = Metrics::Clock::time_point{} + 1000s;
  const auto wall0 = std::chrono::system_clock::time_point{} + 1'700'000'000s;
  m.sample(t0, wall0);
  for (int i = 0; i < 10; ++i) g1->request(0, 0, i < 5 ? 503 : 200, 2ms);  // canary: half fail
  for (int i = 0; i < 20; ++i) g1->request(0, 1, 200, 300us);
  m.sample(t0 + 1s, wall0 + 1s);
  m.sample(t0 + 2s, wall0 + 2s);  // a quiet second
  auto g2 = c.change();
  for (int i = 0; i < 8; ++i) g2->request(0, 0, 200, 1ms);  // "extra", new in this configuration
  for (int i = 0; i < 4; ++i) g2->request(1, 0, 200, 2ms);
  m.sample(t0 + 4s, wall0 + 4s);  // two seconds late: rates are per second

  auto canary = m.series(Metrics::Of::kArm, "web", "canary", 60s);
  ASSERT_EQ(canary.size(), 3u);
  EXPECT_EQ(canary[0].t_ms, 1'700'000'001'000);
  EXPECT_DOUBLE_EQ(canary[0].rps, 10);
  ASSERT_TRUE(canary[0].error_rate && canary[0].p50_ms && canary[0].p99_ms);
  EXPECT_DOUBLE_EQ(*canary[0].error_rate, 0.5);
  EXPECT_GT(*canary[0].p50_ms, 1.0);
  EXPECT_LE(*canary[0].p99_ms, 2.5);
  EXPECT_DOUBLE_EQ(canary[1].rps, 0);
  EXPECT_FALSE(canary[1].error_rate || canary[1].p50_ms || canary[1].p99_ms);
  EXPECT_DOUBLE_EQ(canary[2].rps, 2);  // 4 requests over 2 s
  EXPECT_DOUBLE_EQ(*canary[2].error_rate, 0);

  auto stable = m.series(Metrics::Of::kArm, "web", "stable", 60s);
  ASSERT_EQ(stable.size(), 3u);
  EXPECT_DOUBLE_EQ(stable[0].rps, 20);
  EXPECT_LT(*stable[0].p50_ms, *canary[0].p50_ms);

  // Not in the earlier configurations: no point for the interval it appeared in, whose start is
  // unknown (its counters may be carried over from an earlier life of the name); then points.
  EXPECT_TRUE(m.series(Metrics::Of::kArm, "extra", "", 60s).empty());
  for (int i = 0; i < 3; ++i) g2->request(0, 0, 200, 1ms);
  m.sample(t0 + 5s, wall0 + 5s);
  auto extra = m.series(Metrics::Of::kArm, "extra", "", 60s);
  ASSERT_EQ(extra.size(), 1u);
  EXPECT_DOUBLE_EQ(extra[0].rps, 3);

  EXPECT_EQ(m.series(Metrics::Of::kArm, "web", "canary", 3s).size(), 2u);  // the last 3 s: two intervals
  EXPECT_TRUE(m.series(Metrics::Of::kArm, "gone", "", 60s).empty());
  EXPECT_TRUE(m.series(Metrics::Of::kFlagVariant, "web", "canary", 60s).empty());  // no such observed flag
}

}  // namespace
}  // namespace fledge::admin
