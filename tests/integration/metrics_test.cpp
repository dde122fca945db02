// /metrics after a scripted mix of requests equals what was sent, passes promtool, and the
// access log matches the requests without ever blocking a worker.
#include <gtest/gtest.h>

#include <simdjson.h>

#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

double sample(const std::string& text, const std::string& series) { return metricSample(text, series); }

std::string mixConfig(const EchoUpstream& stable, const EchoUpstream& canary, const std::string& extra = "") {
  return config(
      R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
      R"([{"name":"web","match":{"host":"shop.test"},"flags":["banner"],
           "split":{"arms":[{"name":"canary","cluster":"v2","weight":50},{"name":"stable","cluster":"v1","weight":50}],
                    "sticky":[{"header":"x-user-id"}],"overrides":{"header":"x-fledge-arm","allow":["canary"]}}},
          {"name":"err","match":{"host":"err.test"},"cluster":"v1"}])",
      R"("flags":{"flags":{"banner":{"state":"ENABLED","variants":{"red":"r","blue":"b"},"defaultVariant":"red",
          "targeting":{"if":[{"==":[{"var":"targetingKey"},"user-3"]},"blue",null]}}}},
         "evaluation_context":{"targeting_key":[{"header":"x-user-id"}]})" +
          extra);
}

TEST(Metrics, ValuesEqualTheRequestsSentAndPassPromtool) {
  EchoUpstream stable("stable"), canary("canary");
  Fledge f(mixConfig(stable, canary));
  Client c(f.port());
  std::map<std::string, int> arms;
  for (int i = 0; i < 20; ++i) {
    auto res = c.request(http::verb::get, "/p", {{"Host", "shop.test"}, {"X-User-Id", "user-" + std::to_string(i)}});
    ASSERT_EQ(res.result_int(), 200);
    ++arms[echoField(res.body(), "name")];
  }
  for (int i = 0; i < 2; ++i)  // forced by override
    ASSERT_EQ(c.request(http::verb::get, "/o", {{"Host", "shop.test"}, {"X-Fledge-Arm", "canary"}}).result_int(), 200);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.request(http::verb::get, "/e?status=503", {{"Host", "err.test"}}).result_int(), 503);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(c.request(http::verb::get, "/x", {{"Host", "nowhere.test"}}).result_int(), 404);

  std::string text = get(f.adminPort(), "/metrics").body();
  EXPECT_EQ(sample(text, R"(fledge_requests_total{route="web",arm="canary",cluster="v2",code="2xx"})"), arms["canary"] + 2) << text;
  EXPECT_EQ(sample(text, R"(fledge_requests_total{route="web",arm="stable",cluster="v1",code="2xx"})"), arms["stable"]);
  EXPECT_EQ(sample(text, R"(fledge_requests_total{route="err",arm="",cluster="v1",code="5xx"})"), 5);
  EXPECT_EQ(sample(text, R"(fledge_requests_total{route="",arm="",cluster="",code="4xx"})"), 3);
  EXPECT_EQ(sample(text, R"(fledge_request_duration_seconds_count{route="web",arm="canary"})"), arms["canary"] + 2);
  EXPECT_EQ(sample(text, R"(fledge_request_duration_seconds_count{route="err",arm=""})"), 5);
  EXPECT_EQ(sample(text, R"(fledge_flag_evaluations_total{flag="banner",variant="blue",reason="TARGETING_MATCH"})"), 1);
  EXPECT_EQ(sample(text, R"(fledge_flag_evaluations_total{flag="banner",variant="red",reason="DEFAULT"})"), 21);
  EXPECT_EQ(sample(text, R"(fledge_overrides_total{route="web",arm="canary"})"), 2);
  EXPECT_EQ(sample(text, R"(fledge_split_weight{route="web",arm="canary"})"), 50);
  EXPECT_EQ(sample(text, R"(fledge_upstream_errors_total{cluster="v1",kind="connect"})"), 0);
  EXPECT_GE(sample(text, R"(fledge_upstream_connections{cluster="v1",state="idle"})"), 1);
  EXPECT_EQ(sample(text, "fledge_downstream_connections"), 1);  // our keep-alive client
  EXPECT_EQ(sample(text, "fledge_config_version"), 1);
  EXPECT_NE(text.find("fledge_build_info{version=\""), std::string::npos);
  EXPECT_NE(text.find("# TYPE fledge_request_duration_seconds histogram"), std::string::npos);
  // A second scrape counts the first one.
  text = get(f.adminPort(), "/metrics").body();
  EXPECT_GE(sample(text, R"(fledge_admin_requests_total{code="200"})"), 1);

  // promtool (Debian package prometheus) lints the exposition.
  std::string file = writeTempFile(text, ".prom");
  std::string cmd = "promtool check metrics < " + file + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  int status = pclose(pipe.release());
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out, "") << out;
  std::filesystem::remove(file);
}

TEST(Metrics, UpstreamErrorsAreCountedByKind) {
  EchoUpstream up("up");
  const std::string dead = deadAddress();
  Fledge f(config(R"({"dead":{"endpoints":[")" + dead + R"("]},"slow":{"endpoints":[")" + up.address() + R"("]}})",
                  R"([{"name":"d","match":{"path_prefix":"/d"},"cluster":"dead"},{"name":"s","match":{"path_prefix":"/s"},"cluster":"slow"}])",
                  R"("workers":1,"timeouts":{"upstream_response_ms":200})"));
  EXPECT_EQ(get(f.port(), "/d").result_int(), 502);
  EXPECT_EQ(get(f.port(), "/s?delay_ms=1000").result_int(), 504);
  std::string text = get(f.adminPort(), "/metrics").body();
  EXPECT_EQ(sample(text, R"(fledge_upstream_errors_total{cluster="dead",kind="connect"})"), 1) << text;
  EXPECT_EQ(sample(text, R"(fledge_upstream_errors_total{cluster="slow",kind="timeout"})"), 1) << text;
  EXPECT_EQ(sample(text, R"(fledge_requests_total{route="d",arm="",cluster="dead",code="5xx"})"), 1) << text;
}

TEST(Metrics, TokenCanBeRequired) {
  EchoUpstream stable("stable"), canary("canary");
  auto tokens = writeTempFile("reader-token\n", ".txt");
  Fledge f(mixConfig(stable, canary, R"(,"metrics":{"tokens_file":")" + tokens + "\"}"));
  EXPECT_EQ(get(f.adminPort(), "/metrics").result_int(), 401);
  EXPECT_EQ(get(f.adminPort(), "/metrics", {{"Authorization", "Bearer nope"}}).result_int(), 401);
  auto ok = get(f.adminPort(), "/metrics", {{"Authorization", "Bearer reader-token"}});
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_NE(ok.body().find("fledge_requests_total"), std::string::npos);
  std::filesystem::remove(tokens);
}

TEST(AccessLog, LinesAreJsonAndMatchTheRequests) {
  EchoUpstream stable("stable"), canary("canary");
  auto path = writeTempFile("", ".log");
  Fledge f(mixConfig(stable, canary, R"(,"access_log":{"enabled":true,"path":")" + path + "\"}"));
  Client c(f.port());
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    auto res = c.request(http::verb::post, "/item/" + std::to_string(i), {{"Host", "shop.test"}, {"X-User-Id", "user-3"}},
                         std::string(100 + i, 'x'));
    ASSERT_EQ(res.result_int(), 200);
    ids.push_back(echoHeader(res.body(), "x-request-id").value_or(""));
  }
  ASSERT_EQ(c.request(http::verb::get, "/x", {{"Host", "nowhere.test"}}).result_int(), 404);
  std::vector<std::string> lines;
  for (int t = 0; t < 200 && lines.size() < 11; ++t) {
    std::this_thread::sleep_for(10ms);
    lines.clear();
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  ASSERT_EQ(lines.size(), 11u);
  simdjson::dom::parser parser;
  for (int i = 0; i < 10; ++i) {
    simdjson::dom::element e;
    ASSERT_EQ(parser.parse(lines[static_cast<std::size_t>(i)]).get(e), simdjson::SUCCESS) << lines[static_cast<std::size_t>(i)];
    EXPECT_EQ(std::string(e["request_id"].get_string().value()), ids[static_cast<std::size_t>(i)]);
    EXPECT_EQ(std::string(e["method"].get_string().value()), "POST");
    EXPECT_EQ(std::string(e["path"].get_string().value()), "/item/" + std::to_string(i));
    EXPECT_EQ(e["status"].get_int64().value(), 200);
    EXPECT_EQ(e["bytes_in"].get_int64().value(), 100 + i);
    EXPECT_GT(e["bytes_out"].get_int64().value(), 100);
    EXPECT_EQ(std::string(e["route"].get_string().value()), "web");
    EXPECT_EQ(std::string(e["client_ip"].get_string().value()), "127.0.0.1");
    EXPECT_EQ(std::string(e["flags"].get_string().value()), "banner=blue");
    std::string arm(e["arm"].get_string().value());
    EXPECT_TRUE(arm == "canary" || arm == "stable") << arm;
    std::string upstream(e["upstream"].get_string().value());
    EXPECT_EQ(upstream, arm == "canary" ? canary.address() : stable.address());
    EXPECT_GE(e["duration_us"].get_int64().value(), 0);
    EXPECT_FALSE(std::string(e["time"].get_string().value()).empty());
  }
  simdjson::dom::element last;
  ASSERT_EQ(parser.parse(lines[10]).get(last), simdjson::SUCCESS);
  EXPECT_EQ(last["status"].get_int64().value(), 404);
  EXPECT_EQ(std::string(last["route"].get_string().value()), "");
  std::filesystem::remove(path);
}

TEST(AccessLog, FullQueueDropsInsteadOfBlocking) {
  EchoUpstream stable("stable"), canary("canary");
  // A FIFO whose reader never reads: the writer thread blocks once the pipe is full.
  std::string fifo = "/tmp/fledge-test-fifo-" + std::to_string(::getpid());
  ::unlink(fifo.c_str());
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  Fledge f(mixConfig(stable, canary, R"(,"workers":1,"access_log":{"enabled":true,"path":")" + fifo + R"(","queue_size":16})"));
  Client c(f.port());
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 1500; ++i)
    ASSERT_EQ(c.request(http::verb::get, "/p", {{"Host", "shop.test"}, {"X-User-Id", "u"}}).result_int(), 200) << i;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  std::string text = get(f.adminPort(), "/metrics").body();
  EXPECT_GT(sample(text, "fledge_access_log_dropped_total"), 0) << text;
  f.process().signal(SIGTERM);
  EXPECT_EQ(f.process().wait(10s), 0);  // shutdown does not hang on the stuck writer
  ::close(reader);
  ::unlink(fifo.c_str());
}

}  // namespace
}  // namespace fledge::test
