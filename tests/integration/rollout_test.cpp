// Rollouts end to end: the real binary, real upstreams (one of them broken on purpose), traffic
// on loopback, and the controller deciding by itself.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <mutex>
#include <thread>

#include <boost/beast/http.hpp>

#include "tests/integration/admin_stack.hpp"

namespace fledge::test {
namespace {

using namespace std::chrono_literals;

struct RolloutStack {
  EchoUpstream stable;
  EchoUpstream canary;
  std::string data_dir = tempDir();
  std::unique_ptr<Fledge> f;
  std::unique_ptr<BackgroundTraffic> traffic;

  std::string cfg;

  // A split route "shop" (arms canary on v2, stable on v1) that also evaluates flag
  // "new-checkout" (on for plan "pro" by rule, explicitly off for others) with x-user-id as the
  // targeting key.
  explicit RolloutStack(std::vector<std::string> canary_args = {}, std::vector<std::string> stable_args = {})
      : stable("stable", stable_args), canary("canary", canary_args) {
    cfg = config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
                 R"([{"name":"shop","match":{"path_prefix":"/"},"flags":["new-checkout"],
                      "split":{"arms":[{"name":"canary","cluster":"v2","weight":0},{"name":"stable","cluster":"v1","weight":100}]}}])",
                 R"("admin":{"listen":"127.0.0.1:0","data_dir":")" + data_dir + R"("},
                    "evaluation_context":{"targeting_key":[{"header":"x-user-id"}]},
                    "flags":{"flags":{"new-checkout":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
                                                        "targeting":{"if":[{"==":[{"var":"plan"},"pro"]},"on","off"]}}}})");
    f = std::make_unique<Fledge>(cfg);
  }
  ~RolloutStack() {
    traffic.reset();  // before Fledge goes
    f.reset();
    std::filesystem::remove_all(data_dir);
  }
  void startTraffic() { traffic = std::make_unique<BackgroundTraffic>(f->port()); }

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

// A rollout moves traffic between two arms: a third arm with traffic would make the weights
// sum past 100, so the start is refused by name and nothing changes; at weight 0 it is fine.
TEST(Rollout, AThirdArmWithTrafficIsRefusedByName) {
  RolloutStack s;
  auto route = [](int extra) {
    return R"({"match":{"path_prefix":"/"},"split":{"arms":[{"name":"canary","cluster":"v2","weight":0},
      {"name":"stable","cluster":"v1","weight":)" + std::to_string(100 - extra) + R"(},{"name":"extra","cluster":"v1","weight":)" +
           std::to_string(extra) + "}]}}";
  };
  auto put = call(s.admin(), http::verb::put, "/api/v1/routes/shop", route(10));
  ASSERT_EQ(put.result_int(), 200) << put.body();
  const std::string before = s.get("/api/v1/config");
  auto r = call(s.admin(), http::verb::put, "/api/v1/rollouts/three", kSpec);
  EXPECT_EQ(r.result_int(), 400) << r.body();
  EXPECT_NE(r.body().find(R"(arm \"extra\" of route \"shop\" has traffic)"), std::string::npos) << r.body();
  EXPECT_NE(r.body().find(R"("field":"route")"), std::string::npos) << r.body();
  EXPECT_EQ(s.get("/api/v1/config"), before);
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/routes/shop", route(0)).result_int(), 200);
  r = call(s.admin(), http::verb::put, "/api/v1/rollouts/three", kSpec);
  EXPECT_EQ(r.result_int(), 200) << r.body();
}

TEST(Rollout, SlowCanaryIsRolledBack) {
  RolloutStack s({"--delay-ms", "50"});
  s.startTraffic();
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/slow",
                 R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":20,"hold_s":60},{"weight":100}]})")
                .result_int(), 200);
  auto took = s.waitPhase("slow", "rolled_back", 20s);
  ASSERT_TRUE(took) << s.get("/api/v1/rollouts/slow");
  const std::string view = s.get("/api/v1/rollouts/slow");
  EXPECT_NE(view.find("\"reason\":\"latency_p"), std::string::npos) << view;  // a latency check decided
  EXPECT_NE(s.get("/api/v1/routes/shop").find(R"({"name":"canary","cluster":"v2","weight":0})"), std::string::npos);
}

// kill -9 in the middle of a step: the restarted Fledge resumes the rollout at the same step with
// the same weight, and the step's hold counts from when the step began, not from the restart.
TEST(Rollout, KillDashNineMidRolloutResumesAtItsStepWithItsHold) {
  RolloutStack s;
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/k9",
                 R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":30,"hold_s":4},{"weight":60,"hold_s":600}]})")
                .result_int(), 200);
  const std::string before = s.get("/api/v1/rollouts/k9");
  auto started = before.find("\"step_started_ms\":");
  ASSERT_NE(started, std::string::npos);
  const long long step_started = std::stoll(before.substr(started + 18));
  std::this_thread::sleep_for(1s);  // part of the hold has passed
  s.f->process().signal(SIGKILL);
  s.f->process().wait();
  s.f = std::make_unique<Fledge>(s.cfg);
  const std::string after = s.get("/api/v1/rollouts/k9");
  EXPECT_NE(after.find("\"phase\":\"progressing\""), std::string::npos) << after;
  EXPECT_NE(after.find("\"step\":0"), std::string::npos) << after;
  EXPECT_NE(after.find("\"step_started_ms\":" + std::to_string(step_started)), std::string::npos) << after;
  EXPECT_NE(s.get("/api/v1/routes/shop").find(R"({"name":"canary","cluster":"v2","weight":30})"), std::string::npos);
  // Step 1 comes 4 s after step 0 began (the ticks are a second apart), not 4 s after the restart.
  const auto t0 = std::chrono::steady_clock::now();
  std::string view;
  while (std::chrono::steady_clock::now() - t0 < 15s) {
    view = s.get("/api/v1/rollouts/k9");
    if (view.find("\"canary_weight\":60") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_NE(view.find("\"canary_weight\":60"), std::string::npos) << view;
  auto held = view.find("\"why\":\"step 0 held\"");
  ASSERT_NE(held, std::string::npos) << view;
  auto at = view.rfind("\"at_ms\":", held);
  const long long held_at = std::stoll(view.substr(at + 8));
  EXPECT_GE(held_at - step_started, 4000);
  EXPECT_LE(held_at - step_started, 4000 + 3000) << "the hold restarted with the process";
}

const std::string kFlagSpec = R"({"flag":"new-checkout","variant":"on",
  "steps":[{"weight":20,"hold_s":1},{"weight":50,"hold_s":1},{"weight":100,"hold_s":1}]})";

TEST(Rollout, FlagRolloutOfAHealthyVariantEndsWithItAsTheDefault) {
  RolloutStack s;
  s.startTraffic();
  auto r = call(s.admin(), http::verb::put, "/api/v1/rollouts/fr1", kFlagSpec);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  // While it runs: the flag's targeting splits the default's users by fractional bucketing, and
  // manual changes of the flag are refused.
  const std::string during = s.get("/api/v1/flags/new-checkout");
  EXPECT_NE(during.find("\"fractional\""), std::string::npos) << during;
  EXPECT_EQ(call(s.admin(), http::verb::put, "/api/v1/flags/new-checkout/state", R"({"state":"DISABLED"})").result_int(), 409);
  // The responses are counted per variant while the flag is under rollout.
  const auto t0 = std::chrono::steady_clock::now();
  std::string metrics;
  while (std::chrono::steady_clock::now() - t0 < 5s) {
    metrics = call(s.admin(), http::verb::get, "/metrics").body();
    if (metrics.find(R"(fledge_flag_outcome_requests_total{flag="new-checkout",variant="on",code="2xx"})") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(metrics.find(R"(fledge_flag_outcome_requests_total{flag="new-checkout",variant="on",code="2xx"})"), std::string::npos) << metrics;
  ASSERT_TRUE(s.waitPhase("fr1", "succeeded", 30s)) << s.get("/api/v1/rollouts/fr1");
  const std::string flag = s.get("/api/v1/flags/new-checkout");
  EXPECT_NE(flag.find("\"defaultVariant\":\"on\""), std::string::npos) << flag;
  EXPECT_EQ(flag.find("fractional"), std::string::npos) << flag;
  const std::string view = s.get("/api/v1/rollouts/fr1");
  // It judged the variant by real responses: both sides saw requests.
  auto canary = view.find("\"canary\":{\"requests\":");
  ASSERT_NE(canary, std::string::npos) << view;
  EXPECT_GT(std::stoll(view.substr(canary + 22)), 0) << view;
  Client c(s.f->port());
  auto res = c.request(http::verb::get, "/buy", {{"x-user-id", "anyone"}});
  EXPECT_NE(res.body().find("new-checkout=on"), std::string::npos) << res.body();
  metrics = call(s.admin(), http::verb::get, "/metrics").body();
  EXPECT_NE(metrics.find(R"(fledge_rollout_phase{rollout="fr1",phase="succeeded"} 1)"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find(R"(fledge_rollout_decisions_total{rollout="fr1",decision="success"} 1)"), std::string::npos);
}

TEST(Rollout, FlagRolloutOfAFailingVariantIsRolledBackToTheFlagAsItWas) {
  // The upstream fails the requests that carry the new variant.
  RolloutStack s({}, {"--fail-match", "new-checkout=on", "--fail-rate", "0.5"});
  s.startTraffic();
  const std::string original = s.get("/api/v1/flags/new-checkout");
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/fr2",
                 R"({"flag":"new-checkout","variant":"on","steps":[{"weight":20,"hold_s":60},{"weight":100}]})").result_int(), 200);
  auto took = s.waitPhase("fr2", "rolled_back", 20s);
  ASSERT_TRUE(took) << s.get("/api/v1/rollouts/fr2");
  EXPECT_LE(took->count(), 10000);
  EXPECT_EQ(s.get("/api/v1/flags/new-checkout"), original);
  const std::string view = s.get("/api/v1/rollouts/fr2");
  EXPECT_NE(view.find("\"reason\":\"errors: canary"), std::string::npos) << view;  // judged by the variant's 5xx
  const std::string metrics = call(s.admin(), http::verb::get, "/metrics").body();
  EXPECT_NE(metrics.find(R"(fledge_rollout_canary_weight{rollout="fr2"} 0)"), std::string::npos);
  EXPECT_NE(metrics.find(R"(fledge_rollout_decisions_total{rollout="fr2",decision="rollback"} 1)"), std::string::npos);
}

TEST(Rollout, FlagRolloutRefusals) {
  RolloutStack s;
  const std::string before = s.get("/api/v1/config");
  struct Case {
    const char* body;
    unsigned status;
    const char* field;
  };
  for (const auto& c : std::vector<Case>{
           {R"({"flag":"nope","variant":"on","steps":[{"weight":5}]})", 400, "flag"},
           {R"({"flag":"new-checkout","variant":"maybe","steps":[{"weight":5}]})", 400, "variant"},
           {R"({"flag":"new-checkout","variant":"off","steps":[{"weight":5}]})", 400, "variant"},
           {R"({"flag":"new-checkout","steps":[{"weight":5}]})", 400, "variant"},
           {R"({"flag":"new-checkout","variant":"on","route":"shop","steps":[{"weight":5}]})", 400, "route"},
           {R"({"flag":"new-checkout","variant":"on","steps":[{"weight":5}],"webhooks":[{"name":"w","type":"later","url":"http://127.0.0.1:1/"}]})", 400, "webhooks[0].type"},
           {R"({"flag":"new-checkout","variant":"on","steps":[{"weight":5}],"webhooks":[{"name":"w","type":"confirm","url":"https://x/"}]})", 400, "webhooks[0].url"},
           {R"({"flag":"new-checkout","variant":"on","steps":[{"weight":5}],"webhooks":[{"name":"w","type":"confirm","url":"http://h:1/","timeout_ms":0}]})", 400, "webhooks[0].timeout_ms"},
       }) {
    auto r = call(s.admin(), http::verb::put, "/api/v1/rollouts/bad", c.body);
    EXPECT_EQ(r.result_int(), c.status) << c.body << " " << r.body();
    EXPECT_NE(r.body().find(std::string("\"field\":\"") + c.field + "\""), std::string::npos) << c.body << " " << r.body();
  }
  EXPECT_EQ(s.get("/api/v1/config"), before);
}

// A webhook target whose answer the test sets; it counts the calls and keeps the last body.
class HookServer {
 public:
  HookServer() : acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] {
      while (!stop_) {
        tcp::socket sock(ioc_);
        boost::system::error_code ec;
        acceptor_.accept(sock, ec);
        if (ec || stop_) continue;
        boost::beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(sock, buf, req, ec);
        if (ec) continue;
        {
          std::lock_guard lock(mu_);
          last_body_ = req.body();
        }
        ++calls_;
        http::response<http::string_body> res{static_cast<http::status>(status_.load()), 11};
        res.body() = "{}";
        res.prepare_payload();
        http::write(sock, res, ec);
      }
    });
  }
  ~HookServer() {
    stop_ = true;
    try {
      Client wake(port());  // unblocks accept()
    } catch (...) {
    }
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/hook"; }
  std::atomic<unsigned> status_{200};
  std::atomic<int> calls_{0};
  std::string lastBody() {
    std::lock_guard lock(mu_);
    return last_body_;
  }

 private:
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string last_body_;
  std::thread thread_;
};

TEST(Rollout, ConfirmWebhookHoldsTheStepUntilItAnswers200) {
  RolloutStack s;
  HookServer gate;
  gate.status_ = 403;
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/gated",
                 R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":10,"hold_s":0},{"weight":100,"hold_s":0}],
                     "webhooks":[{"name":"gate","type":"confirm","url":")" + gate.url() + R"(","timeout_ms":1000}]})").result_int(), 200);
  // Held at step 0 while the gate says no; the view says what it waits for.
  const auto t0 = std::chrono::steady_clock::now();
  while (gate.calls_ < 2 && std::chrono::steady_clock::now() - t0 < 10s) std::this_thread::sleep_for(50ms);
  ASSERT_GE(gate.calls_.load(), 2);
  std::string view = s.get("/api/v1/rollouts/gated");
  EXPECT_NE(view.find("\"step\":0"), std::string::npos) << view;
  EXPECT_NE(view.find("gate: answered 403"), std::string::npos) << view;
  EXPECT_NE(gate.lastBody().find("\"type\":\"confirm\""), std::string::npos) << gate.lastBody();
  gate.status_ = 200;
  ASSERT_TRUE(s.waitPhase("gated", "succeeded", 15s)) << s.get("/api/v1/rollouts/gated");
}

TEST(Rollout, FailingOrSilentPreStepWebhookRollsBack) {
  for (const bool silent : {false, true}) {
    RolloutStack s;
    HookServer check;
    check.status_ = 500;
    // A silent webhook: an address that accepts nothing in time (a listening socket never read).
    boost::asio::io_context ioc;
    tcp::acceptor black_hole(ioc, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    black_hole.listen(0);
    const std::string url = silent ? "http://127.0.0.1:" + std::to_string(black_hole.local_endpoint().port()) + "/" : check.url();
    ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/pre",
                   R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":10,"hold_s":0},{"weight":100}],
                       "webhooks":[{"name":"smoke","type":"pre-step","url":")" + url + R"(","timeout_ms":300}]})").result_int(), 200);
    // The first step waits for its check: the canary gets nothing yet.
    EXPECT_NE(s.get("/api/v1/routes/shop").find(R"({"name":"canary","cluster":"v2","weight":0})"), std::string::npos);
    ASSERT_TRUE(s.waitPhase("pre", "rolled_back", 10s)) << s.get("/api/v1/rollouts/pre");
    const std::string view = s.get("/api/v1/rollouts/pre");
    EXPECT_NE(view.find(silent ? "smoke: timed out after 300 ms" : "smoke: answered 500"), std::string::npos) << view;
    EXPECT_NE(s.get("/api/v1/routes/shop").find(R"({"name":"canary","cluster":"v2","weight":0})"), std::string::npos);
  }
}

TEST(Rollout, PassingPreStepWebhookAppliesEachStep) {
  RolloutStack s;
  HookServer check;
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/rollouts/pre2",
                 R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable","steps":[{"weight":10,"hold_s":0},{"weight":100,"hold_s":0}],
                     "webhooks":[{"name":"smoke","type":"pre-step","url":")" + check.url() + R"("}]})").result_int(), 200);
  ASSERT_TRUE(s.waitPhase("pre2", "succeeded", 15s)) << s.get("/api/v1/rollouts/pre2");
  EXPECT_EQ(check.calls_.load(), 2);  // once before each step
  EXPECT_NE(check.lastBody().find("\"step\":1"), std::string::npos) << check.lastBody();
}

}  // namespace
}  // namespace fledge::test
