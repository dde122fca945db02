// Rollouts end to end: the real binary, real upstreams (one of them broken on purpose), traffic
// on loopback, and the controller deciding by itself.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/integration/admin_stack.hpp"

namespace fledge::test {
namespace {

using namespace std::chrono_literals;

struct RolloutStack {
  EchoUpstream stable;
  EchoUpstream canary;
  std::string data_dir = tempDir();
  std::unique_ptr<Fledge> f;
  std::atomic<bool> stop{false};
  std::thread traffic;

  explicit RolloutStack(std::vector<std::string> canary_args = {}) : stable("stable"), canary("canary", canary_args) {
    f = std::make_unique<Fledge>(config(
        R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
        R"([{"name":"shop","match":{"path_prefix":"/"},
             "split":{"arms":[{"name":"canary","cluster":"v2","weight":0},{"name":"stable","cluster":"v1","weight":100}]}}])",
        R"("admin":{"listen":"127.0.0.1:0","data_dir":")" + data_dir + "\"}"));
  }
  ~RolloutStack() {
    stop = true;
    if (traffic.joinable()) traffic.join();
    f.reset();
    std::filesystem::remove_all(data_dir);
  }
  void startTraffic() {
    traffic = std::thread([this] {
      while (!stop) {
        try {
          Client c(f->port());
          for (int i = 0; i < 200 && !stop; ++i) c.request(http::verb::get, "/buy", {});
        } catch (...) {
        }
      }
    });
  }
  std::uint16_t admin() const { return f->adminPort(); }
  std::string get(const std::string& path) { return call(admin(), http::verb::get, path).body(); }
  // Polls the rollout until its phase is `phase` or `limit` passes; returns how long it took.
  std::optional<std::chrono::milliseconds> waitPhase(const std::string& name, const std::string& phase, std::chrono::seconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
      if (get("/api/v1/rollouts/" + name).find("\"phase\":\"" + phase + "\"") != std::string::npos)
        return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
      std::this_thread::sleep_for(100ms);
    }
    return std::nullopt;
  }
};

const std::string kSpec = R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable",
  "steps":[{"weight":20,"hold_s":1},{"weight":50,"hold_s":1},{"weight":100,"hold_s":0}]})";

TEST(Rollout, FailingCanaryIsRolledBackWithinSeconds) {
  RolloutStack s({"--fail-rate", "0.3"});
  s.startTraffic();
  auto res = call(s.admin(), http::verb::put, "/api/v1/rollouts/r1",
                  R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":10,"hold_s":60},{"weight":100,"hold_s":0}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  auto took = s.waitPhase("r1", "rolled_back", 15s);
  ASSERT_TRUE(took) << s.get("/api/v1/rollouts/r1");
  EXPECT_LE(took->count(), 10000);
  const std::string view = s.get("/api/v1/rollouts/r1");
  EXPECT_NE(view.find("\"canary_weight\":0"), std::string::npos);
  EXPECT_NE(view.find("errors: canary"), std::string::npos) << view;  // the reason names the check and its counts
  const std::string route = s.get("/api/v1/routes/shop");
  EXPECT_NE(route.find(R"({"name":"canary","cluster":"v2","weight":0})"), std::string::npos) << route;
  EXPECT_NE(s.get("/api/v1/audit?since=0&limit=100").find("\"actor\":\"rollout:r1\""), std::string::npos);
}

TEST(Rollout, HealthyCanaryGoesThroughEveryStepAndLeavesTheBaselineOnItsCluster) {
  RolloutStack s;
  s.startTraffic();
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/r2", kSpec).result_int(), 200);
  ASSERT_TRUE(s.waitPhase("r2", "succeeded", 30s)) << s.get("/api/v1/rollouts/r2");
  const std::string route = s.get("/api/v1/routes/shop");
  // Finished: the baseline arm serves the canary's cluster with all the traffic; the canary arm,
  // at 0, points at the previous version's cluster, ready for the next release.
  EXPECT_NE(route.find(R"({"name":"stable","cluster":"v2","weight":100})"), std::string::npos) << route;
  EXPECT_NE(route.find(R"({"name":"canary","cluster":"v1","weight":0})"), std::string::npos) << route;
  const std::string view = s.get("/api/v1/rollouts/r2");
  for (const char* step : {"\"step\":1", "\"step\":2", "\"phase\":\"succeeded\""}) EXPECT_NE(view.find(step), std::string::npos) << step;
}

TEST(Rollout, ControlsAndRefusals) {
  RolloutStack s;
  const auto put = [&](const std::string& path, const std::string& body) { return call(s.admin(), http::verb::put, path, body); };
  const auto post = [&](const std::string& path) { return call(s.admin(), http::verb::post, path, "{}"); };
  ASSERT_EQ(put("/api/v1/rollouts/r3", R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":5,"hold_s":600},{"weight":100}]})").result_int(), 200);
  // A manual split change while progressing: refused, nothing changed.
  auto r = put("/api/v1/routes/shop/split", R"({"arms":[{"name":"canary","weight":50},{"name":"stable","weight":50}]})");
  EXPECT_EQ(r.result_int(), 409);
  EXPECT_NE(s.get("/api/v1/routes/shop").find(R"("weight":5})"), std::string::npos);
  // A second rollout on the same route, or the same one again: refused.
  EXPECT_EQ(put("/api/v1/rollouts/other", kSpec).result_int(), 409);
  EXPECT_EQ(put("/api/v1/rollouts/r3", kSpec).result_int(), 409);
  // Deleting an unfinished rollout: refused.
  EXPECT_EQ(call(s.admin(), http::verb::delete_, "/api/v1/rollouts/r3").result_int(), 409);
  EXPECT_EQ(post("/api/v1/rollouts/r3/pause").result_int(), 200);
  EXPECT_EQ(post("/api/v1/rollouts/r3/pause").result_int(), 409);
  EXPECT_EQ(post("/api/v1/rollouts/r3/resume").result_int(), 200);
  auto p = post("/api/v1/rollouts/r3/promote");
  EXPECT_EQ(p.result_int(), 200);
  EXPECT_NE(p.body().find("\"step\":1"), std::string::npos) << p.body();
  EXPECT_NE(s.get("/api/v1/routes/shop").find(R"({"name":"canary","cluster":"v2","weight":100})"), std::string::npos);
  auto a = post("/api/v1/rollouts/r3/abort");
  EXPECT_EQ(a.result_int(), 200);
  EXPECT_NE(a.body().find("\"phase\":\"aborted\""), std::string::npos);
  EXPECT_NE(s.get("/api/v1/routes/shop").find(R"({"name":"canary","cluster":"v2","weight":0})"), std::string::npos);
  EXPECT_EQ(post("/api/v1/rollouts/r3/resume").result_int(), 409);
  EXPECT_EQ(post("/api/v1/rollouts/r3/jump").result_int(), 409);  // finished: no action applies
  EXPECT_EQ(call(s.admin(), http::verb::delete_, "/api/v1/rollouts/r3").result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/rollouts/r3").result_int(), 404);
}

TEST(Rollout, BadSpecificationsNameTheFieldAndChangeNothing) {
  RolloutStack s;
  const std::string before = s.get("/api/v1/config");
  struct Case {
    const char* body;
    const char* field;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"route":"nope","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":5}]})", "route"},
           {R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":50},{"weight":5}]})", "steps[1].weight"},
           {R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":101}]})", "steps[0].weight"},
           {R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[]})", "steps"},
           {R"({"route":"shop","canary_arm":"canary","baseline_arm":"canary","steps":[{"weight":5}]})", "baseline_arm"},
           {R"({"route":"shop","canary_arm":"x","baseline_arm":"stable","steps":[{"weight":5}]})", "route"},
           {R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":5}],"analysis":{"false_rollback":2}})", "analysis.false_rollback"},
           {R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":5}],"extra":1})", "extra"},
       }) {
    auto r = call(s.admin(), http::verb::put, "/api/v1/rollouts/bad", c.body);
    EXPECT_EQ(r.result_int(), 400) << c.body << " " << r.body();
    EXPECT_NE(r.body().find(std::string("\"field\":\"") + c.field + "\""), std::string::npos) << c.body << " " << r.body();
  }
  EXPECT_EQ(s.get("/api/v1/config"), before);
}

}  // namespace
}  // namespace fledge::test
