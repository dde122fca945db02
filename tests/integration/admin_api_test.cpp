// The admin API end to end: every endpoint, every error (and that an error changes nothing),
// ETag/If-Match, batch atomicity, tokens, durability across restarts and kill -9, and live
// application under load.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <regex>

#include "tests/integration/admin_stack.hpp"

namespace fledge::test {
namespace {

std::string armOf(std::uint16_t port, const std::string& user) {
  return echoField(get(port, "/", {{"X-User-Id", user}}).body(), "name");
}

TEST(AdminApi, ReadEndpoints) {
  Stack s;
  auto cfg = call(s.admin(), http::verb::get, "/api/v1/config");
  EXPECT_EQ(cfg.result_int(), 200);
  EXPECT_EQ(std::string(cfg[http::field::etag]), "\"1\"");
  EXPECT_EQ(echoField(cfg.body(), "version"), "1");
  EXPECT_NE(cfg.body().find("\"routes\":[{\"name\":\"web\""), std::string::npos) << cfg.body();
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/clusters").result_int(), 200);
  EXPECT_NE(call(s.admin(), http::verb::get, "/api/v1/clusters/v1").body().find(s.stable.address()), std::string::npos);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/routes").result_int(), 200);
  EXPECT_NE(call(s.admin(), http::verb::get, "/api/v1/routes/web").body().find("\"split\""), std::string::npos);
  EXPECT_NE(call(s.admin(), http::verb::get, "/api/v1/flags").body().find("\"f\""), std::string::npos);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/flags/f").body(), R"({"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"})");
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/flags/nope").result_int(), 404);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/routes/nope").result_int(), 404);
  auto audit = call(s.admin(), http::verb::get, "/api/v1/audit?since=0&limit=5");
  EXPECT_NE(audit.body().find("\"actor\":\"seed\""), std::string::npos) << audit.body();
}

TEST(AdminApi, EverydayKnobsApplyLive) {
  Stack s;
  EXPECT_EQ(armOf(s.f->port(), "u1"), "stable");
  auto res = call(s.admin(), http::verb::put, "/api/v1/routes/web/split",
                  R"({"arms":[{"name":"canary","weight":100},{"name":"stable","weight":0}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(std::string(res[http::field::etag]), "\"2\"");
  // Published before the answer is sent: a request started after the 200 sees it. The figure is
  // when the first request that saw it was sent, counted from the 200.
  auto t0 = std::chrono::steady_clock::now();
  std::string arm;
  auto sent = t0;
  while (std::chrono::steady_clock::now() - t0 < 1s) {
    sent = std::chrono::steady_clock::now();
    if ((arm = armOf(s.f->port(), "u1")) == "canary") break;
  }
  auto seen_after = sent - t0;
  EXPECT_EQ(arm, "canary");
  EXPECT_LT(seen_after, 10ms);
  std::printf("new split seen by the data plane %lld us after the 200\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(seen_after).count()));

  // Kill switch and default variant, seen in x-fledge-flags.
  auto flags_of = [&] { return echoHeader(get(s.f->port(), "/", {{"X-User-Id", "u1"}}).body(), "x-fledge-flags"); };
  EXPECT_EQ(flags_of(), "f=on");
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/flags/f/default-variant", R"({"defaultVariant":"off"})").result_int(), 200);
  EXPECT_EQ(flags_of(), "f=off");
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/flags/f/state", R"({"state":"DISABLED"})").result_int(), 200);
  EXPECT_FALSE(flags_of().has_value());

  // Clusters, routes and flags: create, replace, delete.
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/clusters/v3", R"({"endpoints":[")" + s.canary.address() + R"("]})").result_int(), 200);
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/routes/api",
                 R"({"match":{"path_prefix":"/api"},"cluster":"v3"})").result_int(), 200);
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/flags/g",
                 R"({"state":"ENABLED","variants":{"a":"A"},"defaultVariant":"a"})").result_int(), 200);
  // "web" matches "/" first: the new route only wins once web is narrowed.
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/routes/web",
                 R"({"match":{"path_prefix":"/web"},"cluster":"v1"})").result_int(), 200);
  EXPECT_EQ(echoField(get(s.f->port(), "/api/x").body(), "name"), "canary");
  EXPECT_EQ(call(s.admin(), http::verb::delete_, "/api/v1/routes/api").result_int(), 200);
  EXPECT_EQ(get(s.f->port(), "/api/x").result_int(), 404);
  EXPECT_EQ(call(s.admin(), http::verb::delete_, "/api/v1/clusters/v3").result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::delete_, "/api/v1/flags/g").result_int(), 200);
  auto audit = call(s.admin(), http::verb::get, "/api/v1/audit?since=2&limit=100").body();
  EXPECT_NE(audit.find("\"action\":\"PUT /api/v1/routes/web/split\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("\"actor\":\"local\""), std::string::npos);
  EXPECT_NE(audit.find("\"before\":"), std::string::npos);
}

TEST(AdminApi, RejectedWritesChangeNothing) {
  Stack s;
  const std::string before = call(s.admin(), http::verb::get, "/api/v1/config").body();
  struct Bad {
    http::verb method;
    std::string target, body;
    unsigned status;
    std::string field;
  };
  std::vector<Bad> bad = {
      {http::verb::put, "/api/v1/routes/web/split", R"({"arms":[{"name":"canary","weight":12.5}]})", 400, "routes.web.split.arms"},
      {http::verb::put, "/api/v1/routes/web/split", R"({"arms":[{"name":"ghost","weight":50}]})", 400, "routes.web.split.arms[0].name"},
      {http::verb::put, "/api/v1/routes/web/split", R"({"arms":[{"name":"canary","weight":"5"}]})", 400, "routes.web.split.arms[0].weight"},
      {http::verb::put, "/api/v1/routes/web/split", R"({"arms":[],"extra":1})", 400, "routes.web.split.extra"},
      {http::verb::put, "/api/v1/routes/other", R"({"match":{"path_prefix":"/o"},"cluster":"nope"})", 400, "routes.other.cluster"},
      {http::verb::put, "/api/v1/routes/other", R"({"name":"different","cluster":"v1"})", 400, "routes.other.name"},
      {http::verb::put, "/api/v1/clusters/v9", R"({"endpoints":["no-port"]})", 400, "clusters.v9.endpoints[0]"},
      {http::verb::put, "/api/v1/clusters/v9", R"({"endpoints":["127.0.0.1:1"],"color":"red"})", 400, "clusters.v9.color"},
      {http::verb::put, "/api/v1/flags/f", R"({"state":"MAYBE","variants":{"a":1}})", 400, "flags.f.state"},
      {http::verb::put, "/api/v1/flags/f/state", R"({"state":"OFF"})", 400, "flags.f.state"},
      {http::verb::put, "/api/v1/flags/f/default-variant", R"({"defaultVariant":"zz"})", 400, "flags.f.defaultVariant"},
      {http::verb::delete_, "/api/v1/clusters/v2", "", 409, "clusters.v2"},
      {http::verb::delete_, "/api/v1/flags/f", "", 400, "routes.web.flags[0]"},
      {http::verb::put, "/api/v1/clusters/v9", "{not json", 400, "body"},
      {http::verb::put, "/api/v1/clusters/v9", "[1,2]", 400, "body"},
      {http::verb::delete_, "/api/v1/routes/nope", "", 404, ""},
      {http::verb::put, "/api/v1/nothing/here", "{}", 404, ""},
  };
  for (const auto& b : bad) {
    auto res = call(s.admin(), b.method, b.target, b.body);
    EXPECT_EQ(res.result_int(), b.status) << b.target << " " << b.body << " -> " << res.body();
    if (!b.field.empty()) {
      EXPECT_EQ(echoField(res.body(), "field"), b.field) << res.body();
    }
    EXPECT_FALSE(echoField(res.body(), "error").empty()) << res.body();
  }
  // Too large a body.
  auto huge = call(s.admin(), http::verb::put, "/api/v1/clusters/v9", "{\"x\":\"" + std::string(2 << 20, 'a') + "\"}");
  EXPECT_EQ(huge.result_int(), 413);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config").body(), before);
  EXPECT_EQ(armOf(s.f->port(), "u1"), "stable");
}

TEST(AdminApi, IfMatchAndBatchAtomicity) {
  Stack s;
  const std::string split50 = R"({"arms":[{"name":"canary","weight":50},{"name":"stable","weight":50}]})";
  EXPECT_EQ(call(s.admin(), http::verb::put, "/api/v1/routes/web/split", split50, {{"If-Match", "\"7\""}}).result_int(), 412);
  auto ok = call(s.admin(), http::verb::put, "/api/v1/routes/web/split", split50, {{"If-Match", "\"1\""}});
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::put, "/api/v1/routes/web/split", split50, {{"If-Match", "\"1\""}}).result_int(), 412);
  const std::string before = call(s.admin(), http::verb::get, "/api/v1/config").body();
  auto bad = call(s.admin(), http::verb::post, "/api/v1/batch",
                  R"({"operations":[
                       {"method":"PUT","path":"/api/v1/flags/f/state","body":{"state":"DISABLED"}},
                       {"method":"PUT","path":"/api/v1/clusters/v3","body":{"endpoints":["127.0.0.1:5"]}},
                       {"method":"PUT","path":"/api/v1/routes/web/split","body":{"arms":[{"name":"canary","weight":70}]}}]})");
  EXPECT_EQ(bad.result_int(), 400) << bad.body();
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config").body(), before);  // nothing applied
  auto good = call(s.admin(), http::verb::post, "/api/v1/batch",
                   R"({"operations":[
                        {"method":"PUT","path":"/api/v1/flags/f/state","body":{"state":"DISABLED"}},
                        {"method":"PUT","path":"/api/v1/routes/web/split","body":{"arms":[{"name":"canary","weight":70},{"name":"stable","weight":30}]}}]})");
  EXPECT_EQ(good.result_int(), 200) << good.body();
  auto cfg = call(s.admin(), http::verb::get, "/api/v1/config").body();
  EXPECT_EQ(echoField(cfg, "version"), "3");  // one version for the whole batch
  EXPECT_NE(cfg.find("\"state\":\"DISABLED\""), std::string::npos);
  EXPECT_NE(cfg.find("\"weight\":70"), std::string::npos);
}

TEST(AdminApi, TokenRoles) {
  auto file = writeTempFile("ops:write:w-secret\nviewer:read:r-secret\n", ".txt");
  Stack s(R"(,"tokens_file":")" + file + "\"");
  const std::string target = "/api/v1/flags/f/state", body = R"({"state":"DISABLED"})";
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config").result_int(), 401);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config", "", {{"Authorization", "Bearer nope"}}).result_int(), 401);
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/config", "", {{"Authorization", "Bearer r-secret"}}).result_int(), 200);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body, {{"Authorization", "Bearer r-secret"}}).result_int(), 403);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body).result_int(), 401);
  EXPECT_EQ(call(s.admin(), http::verb::put, target, body, {{"Authorization", "Bearer w-secret"}}).result_int(), 200);
  auto audit = call(s.admin(), http::verb::get, "/api/v1/audit", "", {{"Authorization", "Bearer r-secret"}}).body();
  EXPECT_NE(audit.find("\"actor\":\"ops\""), std::string::npos) << audit;
  EXPECT_EQ(s.f->process().log().find("secret"), std::string::npos);
  std::filesystem::remove(file);
}

TEST(AdminApi, RefusesNonLoopbackWithoutTokens) {
  auto dir = tempDir();
  auto path = writeTempFile(config(R"({"v1":{"endpoints":["127.0.0.1:1"]}})", R"([{"name":"r","cluster":"v1"}])",
                                   R"("admin":{"listen":"0.0.0.0:0","data_dir":")" + dir + "\"}"));
  Process p({fledgeBinary(), "--config", path});
  EXPECT_EQ(p.wait(), 1);
  EXPECT_NE(p.log().find("non-loopback"), std::string::npos) << p.log();
  std::filesystem::remove(path);
  std::filesystem::remove_all(dir);
}

TEST(AdminApi, StoreIsTheTruthAcrossRestartsAndReseedIsAudited) {
  Stack s;
  ASSERT_EQ(call(s.admin(), http::verb::put, "/api/v1/routes/web/split",
                 R"({"arms":[{"name":"canary","weight":100},{"name":"stable","weight":0}]})").result_int(), 200);
  s.f.reset();
  s.start();  // same file, same store: the store wins
  EXPECT_EQ(armOf(s.f->port(), "u1"), "canary");
  EXPECT_EQ(echoField(call(s.admin(), http::verb::get, "/api/v1/config").body(), "version"), "2");
  s.f.reset();
  // --reseed: back to the file, as a new audited version.
  auto path = writeTempFile(s.cfg);
  {
    Process p({fledgeBinary(), "--config", path, "--reseed"});
    ASSERT_TRUE(p.waitForLog("\"msg\":\"started\"")) << p.log();
    std::uint16_t port = portFromLog(p.log(), "listening"), admin = portFromLog(p.log(), "admin listening");
    EXPECT_EQ(armOf(port, "u1"), "stable");
    auto audit = call(admin, http::verb::get, "/api/v1/audit?since=3").body();
    EXPECT_NE(audit.find("\"actor\":\"reseed\""), std::string::npos) << audit;
  }
  std::filesystem::remove(path);
}

TEST(AdminApi, CorruptStoreIsAStartupError) {
  Stack s;
  s.f.reset();
  for (const auto& e : std::filesystem::directory_iterator(s.data_dir)) {
    if (e.path().filename().string().rfind("MANIFEST", 0) == 0 || e.path().filename() == "CURRENT") {
      std::ofstream out(e.path(), std::ios::trunc);
      out << "garbage";
    }
  }
  auto path = writeTempFile(s.cfg);
  Process p({fledgeBinary(), "--config", path});
  EXPECT_EQ(p.wait(), 1);
  EXPECT_NE(p.log().find("cannot open the admin store"), std::string::npos) << p.log();
  std::filesystem::remove(path);
}

TEST(AdminApi, KillNineRightAfterAWriteKeepsIt) {
  Stack s;
  for (int i = 1; i <= 50; ++i) {
    const double w = i % 2 ? 100 : 0;
    char body[160];
    std::snprintf(body, sizeof body, R"({"arms":[{"name":"canary","weight":%g},{"name":"stable","weight":%g}]})", w, 100 - w);
    auto res = call(s.admin(), http::verb::put, "/api/v1/routes/web/split", body);
    ASSERT_EQ(res.result_int(), 200) << res.body();
    s.f->process().signal(SIGKILL);
    s.f->process().wait();
    s.start();
    auto cfg = call(s.admin(), http::verb::get, "/api/v1/config").body();
    ASSERT_EQ(echoField(cfg, "version"), std::to_string(i + 1)) << "iteration " << i;
    ASSERT_EQ(armOf(s.f->port(), "u1"), w == 100 ? "canary" : "stable") << "iteration " << i;
  }
}

}  // namespace
}  // namespace fledge::test
