// Runtime reconfiguration while traffic flows: settings written through the admin API take effect,
// requests keep the generation they started on (no use-after-free under ASan), responses are ones
// their configuration allows, and Prometheus counters of surviving series never go backwards.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "tests/integration/admin_stack.hpp"

namespace fledge::test {
namespace {

http::response<http::string_body> put(const Stack& s, const std::string& path, const std::string& body) {
  return call(s.admin(), http::verb::put, path, body);
}

// The exact reproduction from the data-plane issue: concurrent slow requests after
// "max_connections": 1 was written through the API (one worker, so one pool).
TEST(Reconfig, MaxConnectionsWrittenThroughTheApiIsEnforced) {
  Stack s("", R"(,"workers":1)");
  auto res = put(s, "/api/v1/clusters/v1", R"({"endpoints":[")" + s.stable.address() + R"("],"max_connections":1})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  std::vector<std::future<unsigned>> calls;
  for (int i = 0; i < 3; ++i)
    calls.push_back(std::async(std::launch::async, [&] {
      return get(s.f->port(), "/slow?delay_ms=800", {{"X-User-Id", "u1"}}).result_int();
    }));
  std::map<unsigned, int> statuses;
  for (auto& c : calls) ++statuses[c.get()];
  EXPECT_EQ(statuses[200], 1);
  EXPECT_EQ(statuses[503], 2);
  // Raised again: all three pass.
  res = put(s, "/api/v1/clusters/v1", R"({"endpoints":[")" + s.stable.address() + R"("],"max_connections":8})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  calls.clear();
  for (int i = 0; i < 3; ++i)
    calls.push_back(std::async(std::launch::async, [&] {
      return get(s.f->port(), "/slow?delay_ms=300", {{"X-User-Id", "u1"}}).result_int();
    }));
  for (auto& c : calls) EXPECT_EQ(c.get(), 200u);
}

// Under ASan this aborted with heap-use-after-free in UpstreamPool::pick (and ::sweep).
TEST(Reconfig, RouteThenFlagChangeThenRequestIsSafe) {
  Stack s;
  auto res = put(s, "/api/v1/routes/extra", R"({"match":{"path_prefix":"/extra"},"cluster":"v1"})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  res = put(s, "/api/v1/flags/f/state", R"({"state":"DISABLED"})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(get(s.f->port(), "/", {{"X-User-Id", "u1"}}).result_int(), 200);
  EXPECT_EQ(get(s.f->port(), "/extra/x").result_int(), 200);
  std::this_thread::sleep_for(300ms);  // sweeps run with no request at all
  EXPECT_TRUE(s.f->process().running());
  EXPECT_EQ(get(s.f->port(), "/", {{"X-User-Id", "u2"}}).result_int(), 200);
}

// fledge_requests_total{...} and fledge_upstream_errors_total{...} series by their label text.
std::map<std::string, double> counters(std::uint16_t admin) {
  std::map<std::string, double> out;
  auto res = call(admin, http::verb::get, "/metrics");
  static const std::regex line(R"(^(fledge_(?:requests|upstream_errors|flag_evaluations)_total\{[^}]*\}) ([0-9.e+]+)$)");
  std::istringstream in(res.body());
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_match(l, m, line)) out[m[1]] = std::stod(m[2]);
  }
  return out;
}

TEST(Reconfig, RandomAdminWritesUnderLoad) {
  Stack s;
  const std::string stable = s.stable.address(), canary = s.canary.address();
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, served{0};
  std::mutex bad_mu;
  std::string first_bad;
  auto fail = [&](const std::string& what) {
    ++bad;
    std::lock_guard lock(bad_mu);
    if (first_bad.empty()) first_bad = what;
  };

  // Load: the split route (always present) and routes /r0../r3 that come and go. Every response
  // must be one some configuration allows: 200 from the cluster its arm names, 404 for an absent
  // extra route, 503 when a written max_connections is reached.
  auto load = [&](int seed) {
    std::mt19937 rng(seed);
    while (!stop) {
      try {
        Client c(s.f->port(), 5s);
        for (int i = 0; i < 20 && !stop; ++i) {
          const int r = static_cast<int>(rng() % 5);
          const std::string target = r == 4 ? "/?n=" + std::to_string(i) : "/r" + std::to_string(r) + "/x";
          auto res = c.request(http::verb::get, target, {{"X-User-Id", "u" + std::to_string(rng() % 50)}});
          ++served;
          const unsigned st = res.result_int();
          if (st == 503) continue;
          if (st == 404 && r != 4) continue;
          if (st != 200) {
            fail(target + " -> " + std::to_string(st) + " " + res.body());
            continue;
          }
          const std::string name = echoField(res.body(), "name");
          if (name != "stable" && name != "canary") fail(target + " answered by '" + name + "'");
          if (echoField(res.body(), "target") != target) fail(target + " got the answer for " + echoField(res.body(), "target"));
          std::string arm(res["x-fledge-arm"]);
          if (r == 4 && !arm.empty() && arm != name) fail("arm " + arm + " served by " + name);
          if (!res.keep_alive()) break;
        }
      } catch (const std::exception& e) {
        if (!stop) fail(std::string("client: ") + e.what());
      }
    }
  };
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) clients.emplace_back(load, 100 + i);

  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto endpoints = [&] {
    switch (pick(3)) {
      case 0: return "[\"" + stable + "\"]";
      case 1: return "[\"" + canary + "\"]";
      default: return "[\"" + stable + "\",\"" + canary + "\"]";
    }
  };
  int applied = 0, refused = 0;
  std::map<std::string, double> last = counters(s.admin());
  for (int i = 0; i < 500; ++i) {
    http::response<http::string_body> res;
    const std::string k = std::to_string(pick(4));
    switch (pick(8)) {
      case 0:  // a cluster added or changed, every setting random
        res = put(s, "/api/v1/clusters/c" + k,
                  "{\"endpoints\":" + endpoints() + ",\"max_connections\":" + std::to_string(1 + pick(64)) +
                      ",\"max_idle\":" + std::to_string(pick(8)) + ",\"idle_timeout_ms\":" + std::to_string(50 + pick(5000)) +
                      ",\"lb\":\"" + (pick(2) ? "round_robin" : "least_request") + "\"}");
        break;
      case 1:  // removed (409 while a route uses it)
        res = call(s.admin(), http::verb::delete_, "/api/v1/clusters/c" + k);
        break;
      case 2:  // a route added on a cluster that may not exist
        res = put(s, "/api/v1/routes/r" + k, "{\"match\":{\"path_prefix\":\"/r" + k + "\"},\"cluster\":\"c" + std::to_string(pick(4)) + "\"}");
        break;
      case 3:
        res = call(s.admin(), http::verb::delete_, "/api/v1/routes/r" + k);
        break;
      case 4: {
        const int w = pick(101);
        res = put(s, "/api/v1/routes/web/split",
                  "{\"arms\":[{\"name\":\"canary\",\"weight\":" + std::to_string(w) + "},{\"name\":\"stable\",\"weight\":" +
                      std::to_string(100 - w) + "}]}");
        break;
      }
      case 5:  // the split's clusters: endpoints and settings
        res = put(s, std::string("/api/v1/clusters/") + (pick(2) ? "v1" : "v2"),
                  "{\"endpoints\":[\"" + std::string(pick(2) ? stable : canary) + "\"],\"max_idle\":" + std::to_string(pick(4)) +
                      ",\"max_connections\":" + std::to_string(4 + pick(64)) + "}");
        break;
      case 6:
        res = put(s, "/api/v1/flags/f/state", std::string("{\"state\":\"") + (pick(2) ? "ENABLED" : "DISABLED") + "\"}");
        break;
      default:
        res = put(s, "/api/v1/flags/g" + k,
                  "{\"state\":\"ENABLED\",\"variants\":{\"a\":1,\"b\":2},\"defaultVariant\":\"" + std::string(pick(2) ? "a" : "b") + "\"}");
        break;
    }
    const unsigned st = res.result_int();
    if (st == 200) ++applied;
    else if (st == 400 || st == 404 || st == 409) ++refused;
    else ADD_FAILURE() << "write " << i << ": " << st << " " << res.body();
    if (i % 25 == 0) {
      auto now = counters(s.admin());
      for (const auto& [series, v] : now)
        if (auto it = last.find(series); it != last.end()) EXPECT_GE(v, it->second) << series << " went backwards";
      last = std::move(now);
    }
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(bad.load(), 0) << first_bad;
  EXPECT_GT(applied, 250);
  EXPECT_GT(served.load(), 500);
  EXPECT_TRUE(s.f->process().running());
  EXPECT_EQ(get(s.f->port(), "/").result_int(), 200);
  RecordProperty("admin_writes_applied", applied);
  RecordProperty("admin_writes_refused", refused);
  RecordProperty("requests_served", served.load());
}

}  // namespace
}  // namespace fledge::test
