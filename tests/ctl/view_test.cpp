// `fledge ctl`'s pure parts: the admin URL, JSON text, and the views of the API's answers.
#include <gtest/gtest.h>

#include "ctl/client.hpp"
#include "ctl/json_text.hpp"
#include "ctl/view.hpp"

namespace fledge::ctl {
namespace {

using namespace std::chrono_literals;

json::value parse(std::string_view text) {
  auto v = parseJson(text);
  EXPECT_TRUE(v.has_value()) << text;
  return v ? *v : json::value();
}

TEST(CtlUrl, AcceptsHttpAndBareAddresses) {
  struct Case {
    const char* text;
    const char* host;
    std::uint16_t port;
  };
  for (const auto& c : {Case{"http://127.0.0.1:9901", "127.0.0.1", 9901}, Case{"HTTP://localhost:1/", "localhost", 1},
                        Case{"http://[::1]:9901", "::1", 9901}, Case{"http://admin.internal", "admin.internal", 80},
                        Case{"10.0.0.7:9901", "10.0.0.7", 9901}, Case{"[fd00::7]:9901", "fd00::7", 9901}}) {
    auto u = parseAdminUrl(c.text);
    ASSERT_TRUE(u.has_value()) << c.text << ": " << u.error();
    EXPECT_EQ(u->host, c.host) << c.text;
    EXPECT_EQ(u->port, c.port) << c.text;
  }
  for (const char* bad : {"https://127.0.0.1:9901", "http://127.0.0.1:9901/api", "localhost", "::1:9901", "http://:9901", "http://h:0",
                          "http://h:70000"})
    EXPECT_FALSE(parseAdminUrl(bad).has_value()) << bad;
  EXPECT_EQ(parseAdminUrl("https://x").error(), "only http:// is supported, not \"https://\"");
}

TEST(CtlJson, ErrorsSayWhereAndNumbersReadAsWritten) {
  auto bad = parseJson("{\"a\": 1,\n  \"b\": [1,,2]}");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().rfind("line 2, column 11: ", 0), 0u) << bad.error();
  EXPECT_FALSE(parseJson("{} {}").has_value());  // one document only

  EXPECT_EQ(toJson(parse(R"({"w":12.5,"i":5,"tiny":0.0001,"big":1e300,"s":"a\"b","n":null,"l":[true,[]]})")),
            R"({"w":12.5,"i":5,"tiny":0.0001,"big":1e+300,"s":"a\"b","n":null,"l":[true,[]]})");
  EXPECT_EQ(toJson(parse(R"({"a":[1,{"b":2}],"e":{}})"), true),
            "{\n  \"a\": [\n    1,\n    {\n      \"b\": 2\n    }\n  ],\n  \"e\": {}\n}");
  EXPECT_EQ(findString(parse(R"({"a":{"b":"x"}})"), "/a/b"), "x");
  EXPECT_EQ(findInt(parse(R"({"a":[3,4]})"), "/a/1"), 4);
  EXPECT_FALSE(findInt(parse(R"({"a":"4"})"), "/a").has_value());
  EXPECT_FALSE(findNumber(parse("{}"), "/missing/deeper").has_value());
}

TEST(CtlView, ProgressBarCountsStepsReached) {
  EXPECT_EQ(progressBar(1, 4, false, 10), "[#####-----]");
  EXPECT_EQ(progressBar(0, 3, false, 6), "[##----]");
  EXPECT_EQ(progressBar(3, 4, false, 8), "[########]");
  EXPECT_EQ(progressBar(0, 4, true, 4), "[####]");
  EXPECT_EQ(progressBar(0, 0, false, 3), "[---]");
}

const char* kView = R"({"name":"r1",
  "spec":{"route":"shop","canary_arm":"canary","baseline_arm":"stable",
          "steps":[{"weight":5,"hold_s":60},{"weight":20,"hold_s":120},{"weight":100,"hold_s":0}]},
  "status":{"phase":"progressing","step":1,"canary_weight":20,"started_ms":1000000,"step_started_ms":1030000,
            "finished_ms":0,"reason":"","history":[],"waiting":"for 50 more canary requests"},
  "analysis":{"canary":{"requests":100,"errors":1,"p50_ms":0.41,"p90_ms":1,"p99_ms":12.34},
              "baseline":{"requests":400,"errors":0,"p50_ms":0.4,"p90_ms":0.9,"p99_ms":150},
              "checks":[{"name":"errors","verdict":"pass","summary":"errors: canary 1/100 vs baseline 0/400"},
                        {"name":"latency_p50","verdict":"pass","summary":"no shift"}]}})";

TEST(CtlView, RolloutScreenAndLine) {
  const json::value view = parse(kView);
  const std::int64_t now = 1030000 + 45'500;  // 74.5 s of the step's 120 left
  const std::string screen = rolloutText(view, now, {12.5, 50});
  for (const char* want : {"rollout  r1", "target   route shop, arm canary against stable", "phase    progressing",
                           "step     2/3  [#############-------]  canary 20%  baseline 80%  1m15s left",
                           "waiting  for 50 more canary requests", "canary    12.5   100       1       0.41    12.3",
                           "baseline  50.0   400       0       0.40    150", "  errors       pass  canary 1/100 vs baseline 0/400"})
    EXPECT_NE(screen.find(want), std::string::npos) << want << "\n" << screen;
  EXPECT_EQ(rolloutLine(view, now, {}),
            "r1 progressing step 2/3 canary 20% baseline 80% 1m15s left | canary - req/s 100 req 1 err p50 0.41 p99 12.3 ms"
            " | baseline - req/s 400 req 0 err p50 0.40 p99 150 ms | errors pass, latency_p50 pass | waiting: for 50 more canary requests");
  EXPECT_EQ(rolloutStepLine(view), "r1: progressing, step 2/3, canary 20%");
}

TEST(CtlView, FinishedAndFlagRollouts) {
  const json::value done = parse(R"({"name":"r2","spec":{"flag":"checkout","variant":"v2","steps":[{"weight":10},{"weight":100}]},
    "status":{"phase":"rolled_back","step":0,"canary_weight":0,"started_ms":0,"step_started_ms":0,"finished_ms":65000,
              "reason":"errors: canary 30/100","flag_before":{"state":"ENABLED","defaultVariant":"v1"}}})");
  const std::string screen = rolloutText(done, 99'000'000, {});
  for (const char* want :
       {"target   flag checkout, variant v2 against v1", "took 1m05s", "reason   errors: canary 30/100", "analysis  none yet"})
    EXPECT_NE(screen.find(want), std::string::npos) << want << "\n" << screen;
  EXPECT_EQ(rolloutStepLine(done), "r2: rolled_back, step 1/2, canary 0%: errors: canary 30/100");
  EXPECT_TRUE(finishedPhase("rolled_back"));
  EXPECT_FALSE(finishedPhase("paused"));
}

TEST(CtlView, RatesComeFromTwoPolls) {
  RateMeter meter;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const auto at = [](int canary, int baseline) {
    return parse(R"({"analysis":{"canary":{"requests":)" + std::to_string(canary) + R"(},"baseline":{"requests":)" +
                 std::to_string(baseline) + "}}}");
  };
  auto first = meter.update(at(100, 1000), t0);
  EXPECT_FALSE(first.canary.has_value());
  auto second = meter.update(at(150, 1400), t0 + 2s);
  EXPECT_DOUBLE_EQ(*second.canary, 25);
  EXPECT_DOUBLE_EQ(*second.baseline, 200);
  auto restarted = meter.update(at(3, 10), t0 + 3s);  // counts went back: no rate
  EXPECT_FALSE(restarted.canary.has_value());
}

TEST(CtlView, StatusListsRoutesClustersFlagsAndRollouts) {
  const json::value config = parse(R"({"version":7,
    "clusters":{"v1":{"endpoints":["10.0.0.1:80","10.0.0.2:80"]},"v2":{"endpoints":["10.0.0.3:80"]}},
    "routes":[{"name":"shop","match":{"host":"shop.example","path_prefix":"/buy"},
               "split":{"arms":[{"name":"canary","cluster":"v2","weight":12.5},{"name":"stable","cluster":"v1","weight":87.5}]}},
              {"name":"api","cluster":"v1","mirror":{"cluster":"v2","percent":10}}],
    "flags":{"flags":{"a":{"state":"ENABLED"},"b":{"state":"DISABLED"}}}})");
  const json::value rollouts = parse(std::string(R"({"rollouts":[)") + kView + "]}");
  const std::string text = statusText(config, rollouts);
  for (const char* want : {"config version 7\n", "  shop  shop.example/buy  canary 12.5% (v2), stable 87.5% (v1)  [rollout r1 progressing]",
                           "  api   *                 cluster v1, mirror v2 10%", "  v1  10.0.0.1:80, 10.0.0.2:80",
                           "flags     2 (1 enabled, 1 disabled)",
                           "  r1  route shop, arm canary against stable  progressing  step 2/3  canary 20%"})
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  EXPECT_EQ(rolloutListText(parse(R"({"rollouts":[]})")), "no rollouts\n");
  const std::string flag = flagText("f", parse(R"({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":null})"));
  EXPECT_NE(flag.find("default    none"), std::string::npos) << flag;
  EXPECT_NE(flag.find("variants   on = true, off = false"), std::string::npos) << flag;
}

}  // namespace
}  // namespace fledge::ctl
