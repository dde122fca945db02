// The web console in headless Chromium (Debian's chromium, driven by puppeteer-core from
// tests/node): tests/node/console_test.mjs signs in, toggles a flag and sees a proxied request
// change, moves a split, starts a rollout of a failing canary and watches the page show the
// rollback, pauses and aborts another, checks that a read token sees no write controls and that
// a bad targeting edit shows the server's error at the field, and that without tokens (loopback)
// the console opens without signing in and may write. Screenshots of every page go to
// <build>/console-screenshots/.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "tests/integration/admin_stack.hpp"
#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

TEST(ConsoleBrowser, EveryPageInHeadlessChromium) {
  // scripts/test installs chromium and node; there (FLEDGE_REQUIRE_BROWSER_TESTS=1) a missing
  // browser is a failure, elsewhere a skip.
  const bool required = std::getenv("FLEDGE_REQUIRE_BROWSER_TESTS") && std::string(std::getenv("FLEDGE_REQUIRE_BROWSER_TESTS")) == "1";
  const std::string node_dir = sourceDir() + "/tests/node";
  std::string missing;
  if (std::system("node --version >/dev/null 2>&1") != 0) missing = "node (Node.js >= 20)";
  else if (!std::filesystem::exists("/usr/bin/chromium")) missing = "/usr/bin/chromium (Debian package chromium)";
  else if (!std::filesystem::exists(node_dir + "/node_modules/puppeteer-core/package.json"))
    missing = "puppeteer-core (scripts/setup: npm ci --prefix tests/node)";
  if (!missing.empty()) {
    if (required) FAIL() << "browser tests need " << missing;
    GTEST_SKIP() << "browser tests need " << missing;
  }

  EchoUpstream stable("stable"), canary("canary"), broken("broken", {"--fail-rate", "1", "--fail-status", "503"});
  const std::string dir = tempDir();
  auto tokens = writeTempFile("ops:write:console-w-token\nviewer:read:console-r-token\n", ".txt");
  Fledge f(config(R"({"stable":{"endpoints":[")" + stable.address() + R"("]},"canary":{"endpoints":[")" + canary.address() +
                      R"("],"health_check":{"path":"/healthz","interval_ms":500,"timeout_ms":500}},"broken":{"endpoints":[")" + broken.address() + R"("]}})",
                  R"([{"name":"shop","match":{"path_prefix":"/shop"},
                       "split":{"arms":[{"name":"canary","cluster":"canary","weight":10},{"name":"stable","cluster":"stable","weight":90}],
                                "sticky":[{"header":"x-user-id"}]}},
                      {"name":"pay","match":{"path_prefix":"/pay"},
                       "split":{"arms":[{"name":"canary","cluster":"broken","weight":0},{"name":"stable","cluster":"stable","weight":100}],
                                "sticky":[{"header":"x-user-id"}]}},
                      {"name":"web","match":{"path_prefix":"/"},"cluster":"stable","flags":["banner","new-checkout"]}])",
                  R"("admin":{"listen":"127.0.0.1:0","data_dir":")" + dir + R"(","tokens_file":")" + tokens + R"("},
                     "evaluation_context":{"targeting_key":[{"header":"x-user-id"}],"attributes":{"plan":{"header":"x-plan"}}},
                     "flags":{"flags":{
                       "banner":{"state":"ENABLED","variants":{"red":"red","green":"green"},"defaultVariant":"red"},
                       "new-checkout":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
                                       "targeting":{"if":[{"==":[{"var":"plan"},"pro"]},"on","off"]}}}})"));
  Stack open;  // a loopback admin listener without tokens, as scripts/demo runs it
  const std::string shots = std::string(FLEDGE_BUILD_DIR) + "/console-screenshots";
  std::filesystem::remove_all(shots);
  std::filesystem::create_directories(shots);
  ShellResult r = sh("cd " + node_dir + " && FLEDGE_ADMIN=http://localhost:" + std::to_string(f.adminPort()) +
                     " FLEDGE_PROXY=http://127.0.0.1:" + std::to_string(f.port()) +
                     " FLEDGE_OPEN_ADMIN=http://localhost:" + std::to_string(open.admin()) +
                     " FLEDGE_WRITE_TOKEN=console-w-token FLEDGE_READ_TOKEN=console-r-token FLEDGE_SCREENSHOTS=" + shots +
                     " node console_test.mjs");
  std::cout << r.output;
  EXPECT_EQ(r.exit_code, 0) << "Fledge's log:\n" << f.process().log();
  for (const char* page : {"signin", "overview", "flags", "routes", "rollouts", "readonly", "open"})
    EXPECT_TRUE(std::filesystem::exists(shots + "/" + page + ".png")) << page;
  std::filesystem::remove(tokens);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fledge::test
