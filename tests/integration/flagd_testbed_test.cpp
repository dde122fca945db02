// The flagd-testbed evaluator Gherkin suite (tests/flagd_testbed/, vendored unchanged) against the
// real `fledge` binary over OFREP, driven by tests/node/flagd_testbed.mjs through the OpenFeature
// Node SDK and its OFREP provider.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <sstream>
#include <string>

#include <sys/wait.h>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

// Scenarios (pickles: one per Scenario, one per Examples row) that `not @fractional-v1` selects from
// the feature files of flagd-testbed 3.9.0: disabled 5, errors 2, evaluation 5, evaluator-refs 9,
// fractional 39 (of 54), metadata 5, no-default-variant 6, semver 31, string 8, targeting 2,
// zero-values 13. A runner that parsed or selected fewer would otherwise pass on nothing.
constexpr int kExpectedScenarios = 125;

TEST(FlagdTestbed, EvaluatorSuitePassesOverOfrep) {
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed (needs Node.js >= 20)";
  const std::string node_dir = sourceDir() + "/tests/node";
  ASSERT_TRUE(std::filesystem::exists(node_dir + "/node_modules/@cucumber/gherkin/package.json"))
      << "Node test dependencies missing: run scripts/setup (npm ci --prefix tests/node)";

  const std::string testbed = sourceDir() + "/tests/flagd_testbed";
  Fledge f(config("{}", "[]",
                  R"("flag_files":[")" + testbed + R"(/testkit-flags.json"],"ofrep":{"listen":"127.0.0.1:0"})"));
  ShellResult r = sh("node " + node_dir + "/flagd_testbed.mjs http://127.0.0.1:" + std::to_string(f.ofrepPort()) + " " +
                    testbed);
  std::printf("%s", r.output.c_str());

  int passed = -1, failed = -1;
  std::istringstream lines(r.output);
  const std::regex summary(R"(^(\d+) passed, (\d+) failed$)");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, summary)) {
      passed = std::stoi(m[1]);
      failed = std::stoi(m[2]);
    }
  }
  ASSERT_GE(passed, 0) << "no summary line from flagd_testbed.mjs:\n" << r.output;
  EXPECT_EQ(failed, 0) << "failing scenarios are the `not ok` lines above";
  EXPECT_EQ(passed + failed, kExpectedScenarios) << "the runner did not run every selected scenario";
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(f.process().running()) << f.process().log();
}

}  // namespace
}  // namespace fledge::test
