// Flags end to end: per-request evaluation in the proxy (x-fledge-flags, require_flag, stripping
// of client x-fledge-* headers) and the OFREP listener, including a real OpenFeature SDK client.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

constexpr const char* kInlineFlags = R"({
  "flags": {
    "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                     "targeting": {"if": [{"in": [{"var": "plan"}, ["pro", "enterprise"]]}, "on", "off"]}},
    "banner": {"state": "ENABLED", "variants": {"red": "r", "blue": "b"}, "defaultVariant": "red",
               "targeting": {"if": [{"==": [{"var": "targetingKey"}, "user-7"]}, "blue", null]}},
    "api-v2": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
               "targeting": {"if": [{"starts_with": [{"var": "request.path"}, "/beta"]}, "on", null]}},
    "killed": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"}
  }
})";

std::string flagsConfig(const std::string& upstream, const std::string& extra_routes = "") {
  std::string file = writeTempFile(R"({"flags": {"from-file": {"state": "ENABLED", "variants": {"x": 1, "y": 2},
      "defaultVariant": "x", "targeting": {"if": [{"==": [{"var": "country"}, "DE"]}, "y", null]}}}})");
  return config(R"({"up":{"endpoints":[")" + upstream + R"("]}})",
                "[" + extra_routes + R"({"name":"gated","match":{"path_prefix":"/gated"},"cluster":"up",
                    "require_flag":{"flag":"api-v2","variant":"on","status":403}},
                   {"name":"all-flags","match":{"path_prefix":"/all"},"cluster":"up","flags":"*"},
                   {"name":"main","match":{"path_prefix":"/"},"cluster":"up",
                    "flags":["new-checkout","banner","from-file","killed"]}])",
                std::string(R"("flags":)") + kInlineFlags + R"(,"flag_files":[")" + file + R"("],
                  "evaluation_context":{"targeting_key":[{"header":"x-user-id"},{"cookie":"uid"},{"query":"uid"}],
                    "attributes":{"plan":{"header":"x-plan"},"country":{"cookie":"country"}}})");
}

TEST(ProxyFlags, EvaluatesPerRequestAndPassesResultsUpstream) {
  EchoUpstream up("up");
  Fledge f(flagsConfig(up.address()));
  auto res = get(f.port(), "/shop", {{"X-User-Id", "user-7"}, {"X-Plan", "pro"}, {"Cookie", "a=1; country=DE"}});
  ASSERT_EQ(res.result_int(), 200);
  // Sorted by key, variant names; the disabled flag has no value and is left out.
  EXPECT_EQ(echoHeader(res.body(), "x-fledge-flags"), "banner=blue, from-file=y, new-checkout=on");

  res = get(f.port(), "/shop?uid=user-9", {{"X-Plan", "free"}});
  EXPECT_EQ(echoHeader(res.body(), "x-fledge-flags"), "banner=red, from-file=x, new-checkout=off");

  // The cookie is a later targeting-key source than the header, the query later still.
  res = get(f.port(), "/shop?uid=nobody", {{"Cookie", "uid=user-7"}});
  EXPECT_EQ(echoHeader(res.body(), "x-fledge-flags"), "banner=blue, from-file=x, new-checkout=off");
}

TEST(ProxyFlags, ClientCannotForgeFledgeHeaders) {
  EchoUpstream up("up");
  Fledge f(flagsConfig(up.address()));
  auto res = get(f.port(), "/shop",
                 {{"X-Fledge-Flags", "new-checkout=on"}, {"x-fledge-arm", "canary"}, {"X-FLEDGE-Anything", "1"}});
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(echoHeader(res.body(), "x-fledge-flags"), "banner=red, from-file=x, new-checkout=off");
  EXPECT_FALSE(echoHeader(res.body(), "x-fledge-arm").has_value());
  EXPECT_FALSE(echoHeader(res.body(), "x-fledge-anything").has_value());
}

TEST(ProxyFlags, AllFlagsRoute) {
  EchoUpstream up("up");
  Fledge f(flagsConfig(up.address()));
  auto res = get(f.port(), "/all", {{"X-User-Id", "u"}});
  EXPECT_EQ(echoHeader(res.body(), "x-fledge-flags"), "api-v2=off, banner=red, from-file=x, new-checkout=off");
}

TEST(ProxyFlags, RequireFlagIsAKillSwitchAtTheEdge) {
  EchoUpstream up("up");
  Fledge f(flagsConfig(up.address(), R"({"name":"beta","match":{"path_prefix":"/beta"},"cluster":"up",
      "require_flag":{"flag":"api-v2","variant":"on"}},
      {"name":"dead","match":{"path_prefix":"/dead"},"cluster":"up","require_flag":{"flag":"killed","variant":"on"}},)"));
  EXPECT_EQ(get(f.port(), "/gated/x").result_int(), 403);  // api-v2 is "off" outside /beta
  EXPECT_EQ(get(f.port(), "/beta/x").result_int(), 200);   // request.path starts with /beta
  EXPECT_EQ(get(f.port(), "/dead").result_int(), 404);     // a disabled flag never matches
}

TEST(ProxyFlags, UnknownFlagInRouteIsAConfigError) {
  auto path = writeTempFile(config(R"({"up":{"endpoints":["127.0.0.1:1"]}})",
                                   R"([{"name":"r","cluster":"up","flags":["nope"],"require_flag":{"flag":"x","variant":"y"}}])",
                                   R"("flags":{"flags":{"x":{"state":"ENABLED","variants":{"z":true}}}})"));
  Process p({fledgeBinary(), "--check-config", path});
  EXPECT_EQ(p.wait(), 2);
  EXPECT_NE(p.log().find("routes[0].flags[0]: unknown flag \"nope\""), std::string::npos) << p.log();
  EXPECT_NE(p.log().find("routes[0].require_flag.variant: flag \"x\" has no variant \"y\""), std::string::npos) << p.log();
  std::filesystem::remove(path);
}

TEST(ProxyFlags, BadFlagFileNeverHalfLoads) {
  auto bad = writeTempFile(R"({"flags": {"good": {"state": "ENABLED", "variants": {"a": 1}},
                                          "bad": {"state": "MAYBE", "variants": {"a": 1}}}})");
  auto path = writeTempFile(config(R"({"up":{"endpoints":["127.0.0.1:1"]}})", "[]", R"("flag_files":[")" + bad + "\"]"));
  Process p({fledgeBinary(), "--config", path});
  EXPECT_EQ(p.wait(), 2);
  EXPECT_NE(p.log().find("flags.bad.state"), std::string::npos) << p.log();
  std::filesystem::remove(path);
  std::filesystem::remove(bad);
}

// ------------------------------------------------------------------------------------------------
// OFREP

std::string ofrepConfig(const std::string& extra = "") {
  return config("{}", "[]",
                R"("flag_files":[")" + sourceDir() + R"(/tests/node/ofrep_flags.json"],"ofrep":{"listen":"127.0.0.1:0")" +
                    extra + "}");
}

http::response<http::string_body> ofrep(std::uint16_t port, const std::string& target, const std::string& body,
                                        const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  Client c(port);
  std::vector<std::pair<std::string, std::string>> h = headers;
  h.emplace_back("Content-Type", "application/json");
  return c.request(http::verb::post, target, h, body);
}

TEST(Ofrep, SingleFlagEvaluation) {
  Fledge f(ofrepConfig());
  auto r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag", R"({"context":{"targetingKey":"u1","plan":"pro"}})");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_EQ(r.body(), R"({"key":"bool-flag","value":true,"variant":"on","reason":"TARGETING_MATCH","metadata":{}})");

  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag", R"({"context":{"plan":"free"}})");
  EXPECT_EQ(r.body(), R"({"key":"bool-flag","value":false,"variant":"off","reason":"DEFAULT","metadata":{}})");

  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/string-flag", "{}");
  EXPECT_EQ(r.body(), R"({"key":"string-flag","value":"#f00","variant":"red","reason":"STATIC","metadata":{}})");

  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/number-flag", R"({"context":{"email":"x@corp.example"}})");
  EXPECT_EQ(r.body(), R"({"key":"number-flag","value":1000.5,"variant":"big","reason":"TARGETING_MATCH","metadata":{}})");

  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/disabled-flag", R"({"context":{}})");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), R"({"key":"disabled-flag","reason":"DISABLED","metadata":{}})");
}

TEST(Ofrep, ErrorsAndMalformedBodies) {
  Fledge f(ofrepConfig());
  auto r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/no-such-flag", R"({"context":{}})");
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(r.body(), R"({"key":"no-such-flag","errorCode":"FLAG_NOT_FOUND","errorDetails":"flag not found"})");

  for (std::string bad : {"{", "[1,2]", "\"context\"", "{\"context\": {\"a\": }"}) {
    r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag", bad);
    EXPECT_EQ(r.result_int(), 400) << bad;
    EXPECT_NE(r.body().find("\"errorCode\":\"PARSE_ERROR\""), std::string::npos) << bad << " -> " << r.body();
  }
  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag", R"({"context": [1]})");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_NE(r.body().find("\"errorCode\":\"INVALID_CONTEXT\""), std::string::npos) << r.body();
  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag", R"({"context": {"targetingKey": 5}})");
  EXPECT_NE(r.body().find("\"errorCode\":\"INVALID_CONTEXT\""), std::string::npos) << r.body();
  // Oversized body: refused, and the server keeps serving.
  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag", std::string(2 << 20, ' '));
  EXPECT_EQ(r.result_int(), 413);
  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags/string-flag", "{}");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_TRUE(f.process().running());
}

TEST(Ofrep, BulkEvaluationWithEtag) {
  Fledge f(ofrepConfig());
  auto r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags", R"({"context":{"targetingKey":"u1","plan":"pro"}})");
  ASSERT_EQ(r.result_int(), 200);
  std::string etag(r[http::field::etag]);
  ASSERT_FALSE(etag.empty());
  EXPECT_NE(r.body().find(R"({"key":"bool-flag","value":true,"variant":"on","reason":"TARGETING_MATCH","metadata":{}})"),
            std::string::npos)
      << r.body();
  EXPECT_EQ(r.body().find("disabled-flag"), std::string::npos);  // as flagd: disabled flags are left out
  EXPECT_EQ(r.body().rfind("{\"flags\":[", 0), 0u);

  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags", R"({"context":{"targetingKey":"u1","plan":"pro"}})",
            {{"If-None-Match", etag}});
  EXPECT_EQ(r.result_int(), 304);
  EXPECT_TRUE(r.body().empty());
  // Another context is another ETag.
  r = ofrep(f.ofrepPort(), "/ofrep/v1/evaluate/flags", R"({"context":{"targetingKey":"u2"}})", {{"If-None-Match", etag}});
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_NE(std::string(r[http::field::etag]), etag);
}

TEST(Ofrep, TokenAuthentication) {
  auto tokens = writeTempFile("# ofrep tokens\nsecret-one\n  secret-two  \n", ".txt");
  Fledge f(ofrepConfig(R"(,"tokens_file":")" + tokens + "\""));
  const std::string target = "/ofrep/v1/evaluate/flags/string-flag";
  EXPECT_EQ(ofrep(f.ofrepPort(), target, "{}").result_int(), 401);
  EXPECT_EQ(ofrep(f.ofrepPort(), target, "{}", {{"Authorization", "Bearer wrong"}}).result_int(), 401);
  EXPECT_EQ(ofrep(f.ofrepPort(), target, "{}", {{"Authorization", "Bearer secret-one"}}).result_int(), 200);
  EXPECT_EQ(ofrep(f.ofrepPort(), target, "{}", {{"X-API-Key", "secret-two"}}).result_int(), 200);
  EXPECT_EQ(f.process().log().find("secret-"), std::string::npos);  // never logged
  std::filesystem::remove(tokens);
}

TEST(Ofrep, OpenFeatureNodeSdkClient) {
  Fledge f(ofrepConfig());
  std::string cmd = "node " + sourceDir() + "/tests/node/ofrep_client.mjs http://127.0.0.1:" +
                    std::to_string(f.ofrepPort()) + " 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(pipe);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  int status = pclose(pipe.release());
  std::printf("%s", out.c_str());
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find(" 0 failed"), std::string::npos) << out;
}

}  // namespace
}  // namespace fledge::test
