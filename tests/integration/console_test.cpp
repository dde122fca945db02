// The web console's server side against the real binary: the embedded files with their
// security headers, GET /api/v1/whoami, the GET /api/v1/stats/... series the charts draw, and
// the tokenless admin API refusing what a web page could forge.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>

#include "tests/integration/admin_stack.hpp"
#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {
namespace json = boost::json;

json::value parse(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  EXPECT_FALSE(ec) << body;
  return v;
}

TEST(ConsoleApi, ServesTheConsoleFromTheBinaryWithAStrictPolicy) {
  Stack s;
  auto index = get(s.admin(), "/ui/");
  ASSERT_EQ(index.result_int(), 200);
  EXPECT_EQ(index[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_NE(index.body().find("<script type=\"module\" src=\"./app.js\""), std::string::npos) << index.body();
  const std::string csp(index["Content-Security-Policy"]);
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(index["X-Content-Type-Options"], "nosniff");

  auto app = get(s.admin(), "/ui/app.js");
  ASSERT_EQ(app.result_int(), 200);
  EXPECT_EQ(app[http::field::content_type], "text/javascript; charset=utf-8");
  EXPECT_EQ(app.body(), sh("cat " + sourceDir() + "/admin/ui/app.js").output);  // the file, byte for byte
  EXPECT_EQ(get(s.admin(), "/ui/style.css")[http::field::content_type], "text/css; charset=utf-8");
  EXPECT_EQ(get(s.admin(), "/ui/pages/flags.js").result_int(), 200);

  for (const std::string target : {"/ui", "/"}) {
    auto r = get(s.admin(), target);
    EXPECT_EQ(r.result_int(), 302) << target;
    EXPECT_EQ(r[http::field::location], "/ui/") << target;
  }
  for (const std::string target : {"/ui/nope.js", "/ui/../api/v1/config", "/ui/pages/", "/ui/%2e%2e/x"})
    EXPECT_EQ(get(s.admin(), target).result_int(), 404) << target;
  EXPECT_EQ(call(s.admin(), http::verb::put, "/ui/app.js", "{}").result_int(), 405);
}

TEST(ConsoleApi, WhoamiNamesTheTokenAndWhetherItMayWrite) {
  Stack open;
  EXPECT_EQ(parse(get(open.admin(), "/api/v1/whoami").body()), parse(R"({"name":"local","write":true,"tokens":false})"));

  auto file = writeTempFile("ops:write:w-secret\nviewer:read:r-secret\n", ".txt");
  Stack s(R"(,"tokens_file":")" + file + "\"");
  EXPECT_EQ(get(s.admin(), "/api/v1/whoami").result_int(), 401);
  EXPECT_EQ(get(s.admin(), "/api/v1/whoami", {{"Authorization", "Bearer nope"}}).result_int(), 401);
  EXPECT_EQ(parse(get(s.admin(), "/api/v1/whoami", {{"Authorization", "Bearer r-secret"}}).body()),
            parse(R"({"name":"viewer","write":false,"tokens":true})"));
  EXPECT_EQ(parse(get(s.admin(), "/api/v1/whoami", {{"Authorization", "Bearer w-secret"}}).body()),
            parse(R"({"name":"ops","write":true,"tokens":true})"));
  // The stats need a token too, any role.
  EXPECT_EQ(get(s.admin(), "/api/v1/stats/flags").result_int(), 401);
  EXPECT_EQ(get(s.admin(), "/api/v1/stats/flags", {{"Authorization", "Bearer r-secret"}}).result_int(), 200);
  std::filesystem::remove(file);
}

// The per-second series of each arm follow the traffic: a canary failing every request shows an
// error rate of 1 while the stable arm shows 0, and both have latencies.
TEST(ConsoleApi, StatsSeriesFollowEachArmsTraffic) {
  EchoUpstream stable("stable"), canary("canary", {"--fail-rate", "1", "--fail-status", "503"});
  const std::string dir = tempDir();
  Fledge f(config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() +
                      R"("],"health_check":{"path":"/healthz","interval_ms":300,"timeout_ms":300}}})",
                  R"([{"name":"shop","match":{"path_prefix":"/shop"},"flags":["f"],
                       "split":{"arms":[{"name":"canary","cluster":"v2","weight":50},{"name":"stable","cluster":"v1","weight":50}],
                                "sticky":[{"header":"x-user-id"}]}},
                      {"name":"plain","match":{"path_prefix":"/"},"cluster":"v1"}])",
                  R"("admin":{"listen":"127.0.0.1:0","data_dir":")" + dir + R"("},
                     "evaluation_context":{"targeting_key":[{"header":"x-user-id"}]},
                     "metrics":{"flag_outcomes":["f"]},
                     "flags":{"flags":{"f":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
                                            "targeting":{"fractional":[["on",50],["off",50]]}}}})"));
  // Bad questions first: they name the parameter.
  auto bad = get(f.adminPort(), "/api/v1/stats/routes/shop?seconds=0");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(parse(bad.body()).at("field"), "seconds") << bad.body();
  EXPECT_EQ(parse(get(f.adminPort(), "/api/v1/stats/routes/shop?seconds=x").body()).at("field"), "seconds");
  EXPECT_EQ(parse(get(f.adminPort(), "/api/v1/stats/routes/shop?span=3").body()).at("field"), "span");
  EXPECT_EQ(get(f.adminPort(), "/api/v1/stats/routes/nope").result_int(), 404);
  EXPECT_EQ(get(f.adminPort(), "/api/v1/stats/flags/nope").result_int(), 404);
  EXPECT_EQ(get(f.adminPort(), "/api/v1/stats/nope").result_int(), 404);

  // Traffic over a few seconds, until every arm has a point with requests in it.
  json::object shop;
  bool both = false;
  Client c(f.port());
  for (int round = 0; round < 100 && !both; ++round) {
    for (int i = 0; i < 40; ++i) c.request(http::verb::get, "/shop/x", {{"x-user-id", "u" + std::to_string(round * 40 + i)}});
    c.request(http::verb::get, "/plain");
    std::this_thread::sleep_for(100ms);
    shop = parse(get(f.adminPort(), "/api/v1/stats/routes/shop?seconds=30").body()).as_object();
    int busy = 0;
    for (const auto& s : shop.at("series").as_array())
      for (const auto& p : s.at("points").as_array()) busy += p.at("rps").to_number<double>() > 0 && s.at("name") != "" ? 1 : 0;
    both = busy >= 2 && shop.at("series").as_array().size() == 2;
  }
  ASSERT_TRUE(both) << json::serialize(shop);
  EXPECT_EQ(shop.at("route"), "shop");
  EXPECT_EQ(shop.at("interval_s"), 1);
  for (const auto& s : shop.at("series").as_array()) {
    const bool is_canary = s.at("name") == "canary";
    EXPECT_TRUE(is_canary || s.at("name") == "stable") << s;
    std::int64_t last_t = 0;
    for (const auto& p : s.at("points").as_array()) {
      EXPECT_GT(p.at("t").to_number<std::int64_t>(), last_t);  // oldest first
      last_t = p.at("t").to_number<std::int64_t>();
      if (p.at("rps").to_number<double>() == 0) {
        EXPECT_TRUE(p.at("error_rate").is_null()) << p;
        continue;
      }
      EXPECT_EQ(p.at("error_rate").to_number<double>(), is_canary ? 1.0 : 0.0) << s;
      EXPECT_GT(p.at("p50_ms").to_number<double>(), 0) << p;
      EXPECT_GE(p.at("p99_ms").to_number<double>(), p.at("p50_ms").to_number<double>()) << p;
    }
  }
  auto plain = parse(get(f.adminPort(), "/api/v1/stats/routes/plain").body());
  ASSERT_EQ(plain.at("series").as_array().size(), 1u) << plain;
  EXPECT_EQ(plain.at("series").at(0).at("name"), "");

  // The observed flag's variants have series too; evaluation counts add up to the requests.
  auto flag = parse(get(f.adminPort(), "/api/v1/stats/flags/f?seconds=60").body());
  ASSERT_EQ(flag.at("series").as_array().size(), 2u) << flag;
  EXPECT_EQ(flag.at("series").at(0).at("name"), "on");
  auto evals = parse(get(f.adminPort(), "/api/v1/stats/flags").body());
  const auto& f_counts = evals.at("flags").at("f").as_object();
  ASSERT_TRUE(f_counts.contains("on") && f_counts.contains("off")) << evals;
  const double metric_on =
      metricSample(get(f.adminPort(), "/metrics").body(), R"(fledge_flag_evaluations_total{flag="f",variant="on",reason="TARGETING_MATCH"})");
  EXPECT_EQ(f_counts.at("on").to_number<double>(), metric_on) << evals;

  // Health-checked endpoints, with their state.
  json::value endpoints;
  for (int i = 0; i < 300; ++i) {
    endpoints = parse(get(f.adminPort(), "/api/v1/stats/endpoints").body());
    if (!endpoints.at("endpoints").as_array().empty() && endpoints.at("endpoints").at(0).at("passed").to_number<int>() > 0) break;
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(endpoints.at("endpoints").as_array().size(), 1u) << endpoints;
  EXPECT_EQ(endpoints.at("endpoints").at(0).at("cluster"), "v2");
  EXPECT_EQ(json::value_to<std::string>(endpoints.at("endpoints").at(0).at("endpoint")), canary.address());
  EXPECT_EQ(endpoints.at("endpoints").at(0).at("healthy"), true) << endpoints;
  std::filesystem::remove_all(dir);
}

// Without tokens the API is open to whoever can reach loopback, which includes web pages in a
// browser on the same host: a page can make requests to a name it rebinds to 127.0.0.1, and can
// send writes cross-site. Both are refused, and nothing changes.
TEST(ConsoleApi, WithoutTokensWhatAWebPageCouldForgeIsRefused) {
  Stack s;
  const std::string before = get(s.admin(), "/api/v1/config").body();
  const std::string target = "/api/v1/flags/f/state", body = R"({"state":"DISABLED"})";
  auto rebound = call(s.admin(), http::verb::get, "/api/v1/config", "", {{"Host", "attacker.example:9901"}});
  EXPECT_EQ(rebound.result_int(), 403);
  EXPECT_NE(rebound.body().find("loopback name"), std::string::npos) << rebound.body();
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/stats/flags", "", {{"Host", "attacker.example"}}).result_int(), 403);
  EXPECT_EQ(call(s.admin(), http::verb::put, "/api/v1/log-level", R"({"level":"debug"})", {{"Host", "attacker.example"}}).result_int(), 403);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body, {{"Host", "attacker.example"}}).result_int(), 403);
  auto cross = call(s.admin(), http::verb::put, target, body, {{"Origin", "http://attacker.example"}});
  EXPECT_EQ(cross.result_int(), 403);
  EXPECT_NE(cross.body().find("another origin"), std::string::npos) << cross.body();
  EXPECT_EQ(call(s.admin(), http::verb::post, "/api/v1/batch", R"({"operations":[{"method":"PUT","path":"/api/v1/flags/f/state","body":{"state":"DISABLED"}}]})",
                 {{"Origin", "null"}}).result_int(), 403);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body, {{"Sec-Fetch-Site", "cross-site"}}).result_int(), 403);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body, {{"Sec-Fetch-Site", "same-site"}}).result_int(), 403);
  EXPECT_EQ(get(s.admin(), "/api/v1/config").body(), before);

  // The console itself (same origin), curl (no Origin) and IPv6 or localhost names are served.
  const std::string self = "127.0.0.1:" + std::to_string(s.admin());
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config", "", {{"Host", "localhost:" + std::to_string(s.admin())}}).result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config", "", {{"Host", "[::1]:" + std::to_string(s.admin())}}).result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body, {{"Origin", "http://" + self}, {"Sec-Fetch-Site", "same-origin"}}).result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, R"({"state":"ENABLED"})").result_int(), 200);
}

// With tokens the token is the proof: any Host or Origin may call with one (a reverse proxy in
// front of the admin listener, a console on another name).
TEST(ConsoleApi, WithTokensAnyHostOrOriginMayCallWithAToken) {
  auto file = writeTempFile("ops:write:w-secret\n", ".txt");
  Stack s(R"(,"tokens_file":")" + file + "\"");
  EXPECT_EQ(call(s.admin(), http::verb::put, "/api/v1/flags/f/state", R"({"state":"DISABLED"})",
                 {{"Host", "fledge-admin.example"}, {"Origin", "https://console.example"}, {"Authorization", "Bearer w-secret"}})
                .result_int(),
            200);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config", "", {{"Host", "fledge-admin.example"}}).result_int(), 401);
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace fledge::test
