// Fleet mode end to end: a real etcd on loopback and several real `fledge` instances sharing
// their state through it (admin.store.etcd), real upstreams, proxied requests as the proof.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <future>
#include <map>
#include <set>

#include "tests/etcd_process.hpp"
#include "tests/integration/admin_stack.hpp"
#include "tests/integration/fleet_stack.hpp"

namespace fledge::test {
namespace {

// A write on one instance is served by the others; /api/v1/fleet and /metrics show the members
// at the same version.
TEST(Fleet, AWriteOnOneInstanceIsServedByAll) {
  FleetStack fleet(3);
  fleet.waitForMembers(3);
  auto res = call(fleet.admin(0), http::verb::put, "/api/v1/flags/color/default-variant", R"({"defaultVariant":"blue"})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(fleet.serves(i, "color=blue", 5s)) << "instance " << i;
  // Every instance reports the same version.
  const std::string version(res["ETag"]);
  for (std::size_t i = 0; i < 3; ++i) {
    auto got = call(fleet.admin(i), http::verb::get, "/api/v1/flags/color");
    EXPECT_EQ(got["ETag"], version) << "instance " << i;
  }
  ASSERT_TRUE(fleet.awaitView(1, [&](const std::string& v) {
    return v.find("\"lag\":1") == std::string::npos && v.find("\"lag\":2") == std::string::npos;
  }));
  const std::string view = call(fleet.admin(1), http::verb::get, "/api/v1/fleet").body();
  for (const char* id : {"\"id\":\"m0\"", "\"id\":\"m1\"", "\"id\":\"m2\"", "\"self\":\"m1\"", "\"up\":true"})
    EXPECT_NE(view.find(id), std::string::npos) << id << " in " << view;
  // Instance 2 learns m0's version from m0's next report (once a second): wait for it there too.
  std::string metrics;
  for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(50ms)) {
    metrics = get(fleet.admin(2), "/metrics").body();
    if (metricSample(metrics, R"(fledge_fleet_member_lag{member="m0"})") == 0) break;
  }
  EXPECT_EQ(metricSample(metrics, "fledge_fleet_store_up"), 1);
  EXPECT_EQ(metricSample(metrics, R"(fledge_fleet_member_lag{member="m0"})"), 0) << metrics;
  // One leader in the fleet.
  int leaders = 0;
  for (std::size_t i = 0; i < 3; ++i) leaders += metricSample(get(fleet.admin(i), "/metrics").body(), "fledge_fleet_leader") == 1;
  EXPECT_EQ(leaders, 1);
}

// Two instances race If-Match writes on one resource: exactly one wins each round, the other
// gets 412; without If-Match both writes land, one after the other.
TEST(Fleet, IfMatchRacesHaveExactlyOneWinner) {
  FleetStack fleet(2);
  for (int round = 0; round < 10; ++round) {
    ASSERT_TRUE(fleet.sameVersion(5s)) << "round " << round;
    const std::string etag(call(fleet.admin(0), http::verb::get, "/api/v1/flags/color")["ETag"]);
    std::promise<void> go;
    std::shared_future<void> start = go.get_future().share();
    auto attempt = [&](std::size_t i, const char* variant) {
      return std::async(std::launch::async, [&, i, variant] {
        start.wait();
        return call(fleet.admin(i), http::verb::put, "/api/v1/flags/color/default-variant",
                    std::string(R"({"defaultVariant":")") + variant + "\"}", {{"If-Match", etag}});
      });
    };
    auto a = attempt(0, "red"), b = attempt(1, "green");
    go.set_value();
    const auto ra = a.get(), rb = b.get();
    std::multiset<unsigned> statuses{ra.result_int(), rb.result_int()};
    EXPECT_EQ(statuses, (std::multiset<unsigned>{200, 412})) << "round " << round << ": " << ra.body() << " / " << rb.body();
  }
  // Unpinned writes from both sides: both apply (the loser is retried on the winner's state).
  ASSERT_TRUE(fleet.sameVersion(5s));
  auto a = std::async(std::launch::async, [&] { return call(fleet.admin(0), http::verb::put, "/api/v1/flags/color/state", R"({"state":"ENABLED"})"); });
  auto b = std::async(std::launch::async, [&] {
    return call(fleet.admin(1), http::verb::put, "/api/v1/flags/color/default-variant", R"({"defaultVariant":"blue"})");
  });
  EXPECT_EQ(a.get().result_int(), 200);
  EXPECT_EQ(b.get().result_int(), 200);
  EXPECT_TRUE(fleet.serves(0, "color=blue", 5s));
}

// kill -9 of the rollout leader mid-rollout: another instance takes the leadership within the
// lease's TTL and drives the rollout to the end it would have reached.
TEST(Fleet, AnotherInstanceContinuesTheRolloutWhenTheLeaderIsKilled) {
  FleetStack fleet(3);
  fleet.waitForMembers(3);
  std::vector<std::unique_ptr<BackgroundTraffic>> traffic;
  for (std::size_t i = 0; i < 3; ++i) traffic.push_back(std::make_unique<BackgroundTraffic>(fleet.port(i)));
  auto res = call(fleet.admin(0), http::verb::put, "/api/v1/rollouts/fleet-r",
                  R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":20,"hold_s":3},{"weight":50,"hold_s":2},{"weight":100,"hold_s":0}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  // The leader moves the rollout into its first step.
  ASSERT_TRUE(fleet.awaitView(0, [](const std::string& v) { return v.find("\"leader\":\"m") != std::string::npos; }));
  const std::size_t leader = fleet.leader();
  ASSERT_LT(leader, 3u);
  ASSERT_TRUE(fleet.awaitRollout((leader + 1) % 3, "fleet-r", "\"canary_weight\":20", 10s));
  traffic[leader].reset();
  fleet.kill(leader);
  const auto killed = std::chrono::steady_clock::now();
  const std::size_t other = (leader + 1) % 3;
  ASSERT_TRUE(fleet.awaitView(other, [&](const std::string& v) {
    return v.find("\"leader\":\"m" + std::to_string(leader) + "\"") == std::string::npos && v.find("\"leader\":\"m") != std::string::npos;
  }, 10s));
  const auto takeover = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed);
  std::printf("leadership taken over %lld ms after kill -9\n", static_cast<long long>(takeover.count()));
  // The lease's TTL (3 s) and one watch round; the bound leaves room for a machine busy with the
  // tests beside this one (5.2 s was seen under ctest -j 2 in Release), the figure is printed.
  EXPECT_LE(takeover.count(), 8000);
  ASSERT_TRUE(fleet.awaitRollout(other, "fleet-r", "\"phase\":\"succeeded\"", 30s))
      << call(fleet.admin(other), http::verb::get, "/api/v1/rollouts/fleet-r").body();
  const std::string route = call(fleet.admin(other), http::verb::get, "/api/v1/routes/shop").body();
  EXPECT_NE(route.find(R"({"name":"stable","cluster":"v2","weight":100})"), std::string::npos) << route;
}

// etcd stopped: the proxies keep serving and writes answer 503 with the reason; /readyz says
// why while staying ready. etcd back: writes work again and every instance converges.
TEST(Fleet, EtcdDownKeepsServingAndRefusesWritesThenResyncs) {
  FleetStack fleet(2);
  fleet.waitForMembers(2);
  fleet.etcd.stop();
  for (std::size_t i = 0; i < 2; ++i) EXPECT_TRUE(fleet.serves(i, "color=red", 2s));
  auto res = call(fleet.admin(0), http::verb::put, "/api/v1/flags/color/default-variant", R"({"defaultVariant":"blue"})");
  EXPECT_EQ(res.result_int(), 503) << res.body();
  EXPECT_NE(res.body().find("the configuration store is unreachable"), std::string::npos) << res.body();
  ASSERT_TRUE(fleet.awaitMetric(1, "fledge_fleet_store_up", 0, 10s));
  auto ready = get(fleet.admin(1), "/readyz");
  EXPECT_EQ(ready.result_int(), 200);
  EXPECT_NE(ready.body().find("fleet store unreachable"), std::string::npos) << ready.body();
  EXPECT_TRUE(fleet.serves(1, "color=red", 2s));

  fleet.etcd.start();
  ASSERT_TRUE(fleet.awaitMetric(0, "fledge_fleet_store_up", 1, 15s));
  ASSERT_TRUE(fleet.awaitMetric(1, "fledge_fleet_store_up", 1, 15s));
  res = call(fleet.admin(0), http::verb::put, "/api/v1/flags/color/default-variant", R"({"defaultVariant":"blue"})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_TRUE(fleet.serves(1, "color=blue", 5s));
  const std::string again = get(fleet.admin(1), "/readyz").body();
  EXPECT_EQ(again.find("unreachable"), std::string::npos) << again;
}

// A paused instance's watch breaks (etcd restarts) and it misses writes while etcd compacts its
// history: resumed, it re-reads the whole state and converges.
TEST(Fleet, APausedInstanceReReadsAfterCompactionAndConverges) {
  FleetStack fleet(2);
  fleet.waitForMembers(2);
  fleet.instance(1).process().signal(SIGSTOP);
  fleet.etcd.stop();
  fleet.etcd.start();
  ASSERT_TRUE(fleet.awaitMetric(0, "fledge_fleet_store_up", 1, 15s));
  const char* variants[] = {"blue", "green", "yellow", "blue", "green"};
  for (const char* v : variants) {
    http::response<http::string_body> res;
    ASSERT_TRUE(FleetStack::await([&] {  // instance 0 may still be reconnecting
      res = call(fleet.admin(0), http::verb::put, "/api/v1/flags/color/default-variant", std::string(R"({"defaultVariant":")") + v + "\"}");
      return res.result_int() == 200;
    }, 15s)) << res.body();
  }
  fleet.compactEtcd();
  fleet.instance(1).process().signal(SIGCONT);
  EXPECT_TRUE(fleet.serves(1, "color=green", 15s)) << fleet.instance(1).process().log();
  EXPECT_TRUE(fleet.sameVersion(10s));
  EXPECT_TRUE(FleetStack::await([&] { return metricSample(get(fleet.admin(1), "/metrics").body(), "fledge_fleet_resyncs_total") >= 1; }, 5s));
}

}  // namespace
}  // namespace fledge::test
