// Retries and passive outlier detection end to end: the real binary, echo upstreams that fail,
// reset, hang or die on purpose, and clients on loopback.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "proxy/config.hpp"
#include "tests/integration/admin_stack.hpp"

namespace fledge::test {
namespace {

using namespace std::chrono_literals;

std::string endpoints(const std::vector<const EchoUpstream*>& ups) {
  std::string out = "[";
  for (std::size_t i = 0; i < ups.size(); ++i) out += (i ? ",\"" : "\"") + ups[i]->address() + "\"";
  return out + "]";
}

std::string metrics(const Fledge& f) { return call(f.adminPort(), http::verb::get, "/metrics").body(); }

// Three endpoints; one fails 30 % of its answers with 503, one is killed in the middle of the
// load. Clients see (almost) nothing of it, and retries stay within their budget.
TEST(Resilience, RetriesHideAFailingAndADeadEndpoint) {
  EchoUpstream good("good"), flaky("flaky", {"--fail-rate", "0.3"}), doomed("doomed");
  Fledge f(config(R"({"app":{"endpoints":)" + endpoints({&good, &flaky, &doomed}) +
                      R"(,"outlier_detection":{"consecutive_gateway_errors":3,"base_ejection_ms":30000,"max_ejection_percent":50}}})",
                  R"([{"name":"app","match":{"path_prefix":"/"},"cluster":"app",
                       "retry":{"attempts":3,"on":["connect-failure","reset","gateway-error"],"per_try_timeout_ms":2000,"budget_percent":20}}])"));
  constexpr int kClients = 4, kPerClient = 1500;
  std::atomic<int> done{0}, non2xx{0}, socket_errors{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c)
    clients.emplace_back([&] {
      try {
        Client cl(f.port());
        for (int i = 0; i < kPerClient; ++i) {
          auto r = cl.request(http::verb::get, "/x");
          if (r.result_int() / 100 != 2) ++non2xx;
          ++done;
        }
      } catch (...) {
        ++socket_errors;
      }
    });
  while (done < kClients * kPerClient / 3) std::this_thread::sleep_for(5ms);
  doomed.process().signal(SIGKILL);
  for (auto& t : clients) t.join();
  const int requests = done.load();
  EXPECT_EQ(socket_errors.load(), 0);
  EXPECT_EQ(requests, kClients * kPerClient);
  EXPECT_LT(non2xx.load(), requests / 1000 + 1) << non2xx.load() << " of " << requests;  // < 0.1 %
  // Attempts that reached an upstream: every request once, plus the retries.
  const std::string text = metrics(f);
  double retries = 0;
  for (const char* reason : {"connect_failure", "reset", "timeout", "status"})
    retries += std::max(0.0, metricSample(text, std::string(R"(fledge_upstream_retries_total{cluster="app",reason=")") + reason + "\"}"));
  EXPECT_GT(retries, 0) << text;
  EXPECT_LE(requests + retries, 1.25 * requests) << text;
  EXPECT_GT(metricSample(text, R"(fledge_upstream_retried_requests_total{cluster="app",outcome="success"})"), 0) << text;
}

TEST(Resilience, AHangingEndpointIsCutOffByThePerTryTimeout) {
  EchoUpstream hang("hang", {"--hang-rate", "1"}), good("good");
  Fledge f(config(R"({"app":{"endpoints":)" + endpoints({&hang, &good}) + "}}",
                  R"([{"name":"app","match":{"path_prefix":"/"},"cluster":"app",
                       "retry":{"attempts":2,"on":["reset"],"per_try_timeout_ms":300}}])",
                  R"("workers":1)"));
  Client c(f.port());
  for (int i = 0; i < 4; ++i) {  // round robin: every other request meets the hanging endpoint first
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.request(http::verb::get, "/x");
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.result_int(), 200) << r.body();
    EXPECT_NE(r.body().find("\"name\":\"good\""), std::string::npos);
    EXPECT_LT(took, 2s);  // one per-try timeout (plus the sweep's granularity), not the 30 s response timeout
  }
  EXPECT_GE(metricSample(metrics(f), R"(fledge_upstream_retries_total{cluster="app",reason="timeout"})"), 1);
}

// Both endpoints always answer 503; the retry policy names 5xx.
struct Failing {
  EchoUpstream a{"a", {"--fail-rate", "1"}}, b{"b", {"--fail-rate", "1"}};
  EchoUpstream ok{"ok"};
  std::unique_ptr<Fledge> f;
  explicit Failing(const std::string& retry, bool with_ok = false) {
    f = std::make_unique<Fledge>(config(R"({"app":{"endpoints":)" + endpoints(with_ok ? std::vector<const EchoUpstream*>{&a, &ok} : std::vector<const EchoUpstream*>{&a, &b}) + "}}",
                                        R"([{"name":"app","match":{"path_prefix":"/"},"cluster":"app","retry":)" + retry + "}]",
                                        R"("workers":1)"));
  }
  double retries() { return metricSample(metrics(*f), R"(fledge_upstream_retries_total{cluster="app",reason="status"})"); }
};

TEST(Resilience, ABodylessPostIsNeverRetriedUnlessListed) {
  Failing s(R"({"attempts":3,"on":["5xx"]})");
  Client c(s.f->port());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.request(http::verb::post, "/x").result_int(), 503);
  EXPECT_EQ(s.retries(), 0);
  EXPECT_EQ(c.request(http::verb::get, "/x").result_int(), 503);  // a GET is: 3 attempts, all 503
  EXPECT_EQ(s.retries(), 2);
  Failing listed(R"({"attempts":2,"on":["5xx"],"methods":["POST"]})");
  Client c2(listed.f->port());
  EXPECT_EQ(c2.request(http::verb::post, "/x").result_int(), 503);
  EXPECT_EQ(listed.retries(), 1);
}

TEST(Resilience, BodiesAreReplayedUpToTheLimitAndNotBeyond) {
  Failing s(R"({"attempts":2,"on":["5xx"],"max_body_bytes":1000})", true);
  Client c(s.f->port());
  const std::string small(600, 's'), large(5000, 'l');
  int replayed = 0;
  for (int i = 0; i < 4; ++i) {  // round robin (the retry moves the cursor): they meet the failing endpoint first
    auto r = c.request(http::verb::put, "/x", {{"Content-Type", "text/plain"}}, small);
    EXPECT_EQ(r.result_int(), 200) << r.body();
    EXPECT_NE(r.body().find("\"body_length\":600"), std::string::npos) << r.body();
    replayed += r.body().find(R"(["x-fledge-attempt","2"])") != std::string::npos;
  }
  EXPECT_GE(replayed, 2);
  EXPECT_EQ(s.retries(), replayed);
  int failed = 0;
  for (int i = 0; i < 4; ++i) {
    auto r = c.request(http::verb::put, "/x", {{"Content-Type", "text/plain"}}, large);
    failed += r.result_int() == 503;
    EXPECT_EQ(r.body().find("x-fledge-attempt"), std::string::npos) << r.body();
  }
  EXPECT_GE(failed, 2);  // the ones that met the failing endpoint: not retried
  EXPECT_EQ(s.retries(), replayed);
}

TEST(Resilience, TheBudgetStopsRetriesDuringAnOutage) {
  Failing s(R"({"attempts":3,"on":["5xx"],"budget_percent":20,"min_retry_concurrency":0})");
  Client c(s.f->port());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.request(http::verb::get, "/x").result_int(), 503);
  // One request in flight at a time: 20 % of it is no room for a retry.
  EXPECT_EQ(s.retries(), 0);
  EXPECT_EQ(metricSample(metrics(*s.f), R"(fledge_retry_budget_exhausted_total{cluster="app"})"), 10);
}

TEST(Resilience, OutlierDetectionEjectsNoMoreThanItsShare) {
  EchoUpstream a("a", {"--fail-rate", "1"}), b("b", {"--fail-rate", "1"}), c3("c", {"--fail-rate", "1"}), d("d", {"--fail-rate", "1"});
  Fledge f(config(R"({"app":{"endpoints":)" + endpoints({&a, &b, &c3, &d}) +
                      R"(,"outlier_detection":{"consecutive_5xx":2,"consecutive_gateway_errors":0,"base_ejection_ms":60000,"max_ejection_percent":50}}})",
                  R"([{"name":"app","match":{"path_prefix":"/"},"cluster":"app"}])", R"("workers":1)"));
  Client c(f.port());
  std::set<std::string> answered;
  for (int i = 0; i < 40; ++i) {
    auto r = c.request(http::verb::get, "/x");
    EXPECT_EQ(r.result_int(), 503);
    auto n = r.body().find("\"name\":\"");
    if (n != std::string::npos) answered.insert(r.body().substr(n + 8, 1));
  }
  EXPECT_EQ(metricSample(metrics(f), R"(fledge_outlier_ejections_total{cluster="app"})"), 2);  // half of four
  // The last requests went only to the two endpoints left.
  std::set<std::string> last;
  for (int i = 0; i < 6; ++i) {
    auto r = c.request(http::verb::get, "/x");
    auto n = r.body().find("\"name\":\"");
    if (n != std::string::npos) last.insert(r.body().substr(n + 8, 1));
  }
  EXPECT_EQ(last.size(), 2u);
}

TEST(Resilience, BadRetryAndOutlierSettingsNameTheirField) {
  auto r = proxy::parseConfig(config(R"({"app":{"endpoints":["127.0.0.1:1"],"outlier_detection":{"max_ejection_percent":101,"typo":1}}})",
                                     R"([{"name":"app","cluster":"app","retry":{"attempts":0,"on":["5xx","sometimes"],"methods":["FETCH"],"budget_percent":-1}}])"));
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& e : r.errors) all += e.str() + "\n";
  for (const char* field : {"clusters.app.outlier_detection.max_ejection_percent", "clusters.app.outlier_detection.typo",
                            "routes[0].retry.attempts", "routes[0].retry.on[1]", "routes[0].retry.methods[0]", "routes[0].retry.budget_percent"})
    EXPECT_NE(all.find(field), std::string::npos) << field << "\n" << all;
}

// A split whose canary cluster is dead: with a fallback arm, users never see it.
TEST(Resilience, TheFallbackArmKeepsASplitRouteAtZeroErrorsWhileTheCanaryIsDown) {
  EchoUpstream stable("stable"), canary("canary");
  const std::string dead = canary.address();
  canary.process().signal(SIGKILL);
  canary.process().wait();
  Fledge f(config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + dead + R"("]}})",
                  R"([{"name":"web","match":{"path_prefix":"/"},
                       "split":{"arms":[{"name":"canary","cluster":"v2","weight":50},{"name":"stable","cluster":"v1","weight":50}],
                                "fallback_arm":"stable","expose_arm_header":true}}])"));
  Client c(f.port());
  int ok = 0, relabelled = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = c.request(http::verb::get, "/x");
    ok += r.result_int() == 200;
    // The upstream and the client are told the arm that served the request.
    relabelled += r.body().find(R"(["x-fledge-arm","stable"])") != std::string::npos && r["x-fledge-arm"] == "stable";
  }
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(relabelled, 200);
  // A request is counted once its response is written: the last one may still be on its way.
  const std::string series = R"(fledge_requests_total{route="web",arm="stable",cluster="v1",code="2xx"})";
  std::string text = metrics(f);
  for (int i = 0; i < 100 && metricSample(text, series) < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    text = metrics(f);
  }
  EXPECT_GT(metricSample(text, R"(fledge_split_fallbacks_total{route="web",arm="canary"})"), 50) << text;
  EXPECT_EQ(metricSample(text, series), 200);
  // Without a fallback arm, the same outage reaches users.
  Fledge g(config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + dead + R"("]}})",
                  R"([{"name":"web","match":{"path_prefix":"/"},
                       "split":{"arms":[{"name":"canary","cluster":"v2","weight":50},{"name":"stable","cluster":"v1","weight":50}]}}])"));
  int failed = 0;
  for (int i = 0; i < 50; ++i) failed += Client(g.port()).request(http::verb::get, "/x").result_int() >= 500;  // a 502 closes
  EXPECT_GT(failed, 0);
}

TEST(Resilience, TheCircuitBreakerOpensAndCloses) {
  EchoUpstream slow("slow", {"--delay-ms", "400"});
  Fledge f(config(R"({"app":{"endpoints":[")" + slow.address() + R"("],"circuit_breaker":{"max_requests":2,"max_pending":10}}})",
                  R"([{"name":"app","match":{"path_prefix":"/"},"cluster":"app"}])"));
  std::atomic<int> ok{0}, open{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i)
    clients.emplace_back([&] {
      Client c(f.port());
      auto r = c.request(http::verb::get, "/x");
      if (r.result_int() == 200) ++ok;
      else if (r.result_int() == 503 && r.body().find("circuit breaker open") != std::string::npos) ++open;
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok + open, 6);
  EXPECT_GE(ok.load(), 2);
  EXPECT_GE(open.load(), 1);  // the breaker held the cluster at two requests in flight
  EXPECT_EQ(metricSample(metrics(f), R"(fledge_circuit_breaker_rejections_total{cluster="app"})"), open.load());
  Client c(f.port());
  EXPECT_EQ(c.request(http::verb::get, "/x").result_int(), 200);  // closed again once they finished
}

// Polls /metrics until `series` has `value`; how long it took, or nullopt after `limit`.
std::optional<std::chrono::milliseconds> waitMetric(const Fledge& f, const std::string& series, double value, std::chrono::seconds limit) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < limit) {
    if (metricSample(metrics(f), series) == value)
      return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
}

TEST(Resilience, HealthChecksTakeAnEndpointOutAndBringItBack) {
  EchoUpstream good("good");
  auto bad = std::make_unique<EchoUpstream>("bad", std::vector<std::string>{"--healthz-status", "503"});
  const std::string bad_addr = bad->address();
  Fledge f(config(R"({"app":{"endpoints":[")" + good.address() + R"(",")" + bad_addr + R"("],
                     "health_check":{"path":"/healthz","interval_ms":100,"timeout_ms":80,"unhealthy_threshold":2,
                                     "healthy_threshold":2,"jitter_ms":0}}})",
                  R"([{"name":"app","match":{"path_prefix":"/"},"cluster":"app"}])"));
  const std::string series = R"(fledge_endpoint_healthy{cluster="app",endpoint=")" + bad_addr + "\"}";
  // Out within interval x unhealthy_threshold (200 ms), plus the first check's start and polling.
  auto out = waitMetric(f, series, 0, 5s);
  ASSERT_TRUE(out) << metrics(f);
  EXPECT_LT(out->count(), 1000);
  Client c(f.port());
  for (int i = 0; i < 20; ++i) EXPECT_NE(c.request(http::verb::get, "/x").body().find("\"name\":\"good\""), std::string::npos);
  // The endpoint recovers (a new process on the same address): back after healthy_threshold passes.
  bad.reset();
  EchoUpstream revived("revived", {"--listen", bad_addr});
  ASSERT_TRUE(waitMetric(f, series, 1, 5s)) << metrics(f);
  int to_revived = 0;
  for (int i = 0; i < 20; ++i) to_revived += c.request(http::verb::get, "/x").body().find("\"name\":\"revived\"") != std::string::npos;
  EXPECT_GE(to_revived, 8);  // round robin over two healthy endpoints
  EXPECT_GT(metricSample(metrics(f), R"(fledge_health_checks_total{cluster="app",endpoint=")" + bad_addr + R"(",result="fail"})"), 1);
}

}  // namespace
}  // namespace fledge::test
