// SIGHUP reloads under load: wrk keeps 16 keep-alive connections busy while the configuration
// file is rewritten (the split's weights alternate) and re-read 100 times. No request may fail
// and no connection may break. A load test: ctest runs it alone.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

std::string webConfig(const EchoUpstream& a, const EchoUpstream& b, int canary_weight) {
  return config("{" + cluster("v1", {a.address()}) + "," + cluster("v2", {b.address()}) + "}",
                R"([{"name":"web","match":{"path_prefix":"/"},"split":{"arms":[{"name":"canary","cluster":"v2","weight":)" +
                    std::to_string(canary_weight) + R"(},{"name":"stable","cluster":"v1","weight":)" +
                    std::to_string(100 - canary_weight) + "}]}}]",
                R"("workers":1)");
}

TEST(LiveReloadLoad, HundredSighupsUnderWrk) {
  EchoUpstream v1("v1"), v2("v2");
  Fledge f(webConfig(v1, v2, 10));
  const std::string out_file = writeTempFile("", ".txt");
  auto wrk = std::async(std::launch::async, [&] {
    const std::string cmd = "timeout 60 wrk -t1 -c16 -d20s --timeout 5s http://127.0.0.1:" + std::to_string(f.port()) + "/ > " + out_file + " 2>&1";
    return std::system(cmd.c_str());
  });
  auto reloaded = [&] { return metricSample(get(f.adminPort(), "/metrics").body(), R"(fledge_config_reload_total{source="sighup",result="ok"})"); };
  int done = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 1; i <= 100; ++i) {
    {
      std::ofstream out(f.configPath() + ".tmp", std::ios::trunc);
      out << webConfig(v1, v2, i % 2 ? 30 : 10);
    }
    std::filesystem::rename(f.configPath() + ".tmp", f.configPath());
    f.process().signal(SIGHUP);
    // The next signal only after this reload applied: signals sent together would merge.
    for (int w = 0; w < 1000 && reloaded() < i; ++w) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(reloaded(), i) << f.process().log();
    ++done;
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::printf("100 reloads in %lld ms\n", static_cast<long long>(ms));
  // Let wrk finish its run: its report covers every request made during the reloads.
  ASSERT_EQ(wrk.get(), 0);
  std::ifstream in(out_file);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(out_file);
  std::printf("%d reloads; wrk:\n%s\n", done, out.c_str());
  ASSERT_NE(out.find("Requests/sec"), std::string::npos) << out;
  EXPECT_EQ(out.find("Non-2xx"), std::string::npos) << out;
  EXPECT_EQ(out.find("Socket errors"), std::string::npos) << out;
  EXPECT_EQ(metricSample(get(f.adminPort(), "/metrics").body(), R"(fledge_config_reload_total{source="sighup",result="failed"})"), 0);
  EXPECT_EQ(metricSample(get(f.adminPort(), "/metrics").body(), "fledge_config_version"), 101);
}

}  // namespace
}  // namespace fledge::test
