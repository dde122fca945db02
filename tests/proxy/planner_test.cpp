// Request planning without sockets: a parsed head, a snapshot and a seeded random source in,
// the decision and the composed upstream head out.
#include "proxy/planner.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>

#include <map>

#include "proxy/config.hpp"

namespace fledge::proxy {
namespace {
namespace http = boost::beast::http;

std::shared_ptr<const Snapshot> snapshot(const std::string& extra = "") {
  auto r = parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],
    "clusters":{"v1":{"endpoints":["127.0.0.1:9001"]},"v2":{"endpoints":["127.0.0.1:9002"]},"shadow":{"endpoints":["127.0.0.1:9003"]}},
    "flags":{"flags":{
      "beta-gate":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off",
                   "targeting":{"if":[{"==":[{"var":"user"},"tester"]},"on","off"]}},
      "color":{"state":"ENABLED","variants":{"x, beta-gate=on":"red","plain":"blue"},"defaultVariant":"x, beta-gate=on"}}},
    "evaluation_context":{"targeting_key":[{"header":"x-user-id"}],"attributes":{"user":{"header":"x-user-id"}}},
    "routes":[
      {"name":"beta","match":{"path_prefix":"/beta"},"cluster":"v2","require_flag":{"flag":"beta-gate","variant":"on"}},
      {"name":"gated-host","match":{"host":"internal.example.com"},"cluster":"v2"},
      {"name":"shop","match":{"host":"a.test"},"flags":"*",
       "split":{"arms":[{"name":"canary","cluster":"v2","weight":30},{"name":"stable","cluster":"v1","weight":70}],
                "sticky":[{"header":"x-user-id"}],
                "overrides":{"header":"x-arm","allow":["canary"],"token":"s3cret"}},
       "mirror":{"cluster":"shadow","percent":25}},
      {"name":"cookie","match":{"host":"c.test"},
       "split":{"arms":[{"name":"canary","cluster":"v2","weight":50},{"name":"stable","cluster":"v1","weight":50}],
                "assign_cookie":{"name":"uid"}}},
      {"name":"default","cluster":"v1"}])" + extra + "}");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].str());
  std::string err;
  auto s = Snapshot::create(std::move(*r.config), err);
  EXPECT_TRUE(s) << err;
  return s;
}

struct Planned {
  Plan plan;
  Exchange x;
  Head head;
};

// Parses `raw` as Fledge's session does and plans it.
std::unique_ptr<Planned> run(const Snapshot& snap, const std::string& raw, std::uint64_t seed = 1,
                             WorkerMetrics* metrics = nullptr, bool secure = false, std::uint16_t redirect_https_port = 0) {
  auto out = std::make_unique<Planned>();
  HeadParser<true> parser(out->head, out->x.sink);
  parser.underscores(snap.config.http.underscores_in_headers);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::system::error_code ec;
  parser.put(boost::asio::buffer(raw), ec);
  if (ec == http::error::need_more) ec = {};
  EXPECT_FALSE(ec) << ec.message() << " parsing " << raw;
  EXPECT_TRUE(parser.is_header_done());
  const auto len = parser.content_length();
  RequestFacts facts{parser.version(), parser.method(), parser.chunked(), len ? std::optional(*len) : std::nullopt,
                     !parser.is_done(), parser.keep_alive(), secure, redirect_https_port};
  Random random(seed);
  PlanScratch scratch;
  out->plan = plan(out->head, facts, snap, "10.0.0.7", "0123456789abcdef0123456789abcdef", random, scratch, out->x, metrics,
                   1'700'000'000);
  return out;
}

std::string get(const std::string& target, const std::string& host = "a.test", const std::string& more = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + more + "\r\n";
}

TEST(Planner, RefusalsCarryTheirStatus) {
  auto snap = snapshot();
  std::map<std::string, unsigned> cases = {
      {get("/x", "a.test/evil"), 400},
      {get("/x", "a b"), 400},
      {get("/a#b"), 400},
      {get("/%2Fbeta"), 400},
      {get("/a%zz"), 400},
      {"GET http://u@a.test/x HTTP/1.1\r\nHost: a.test\r\n\r\n", 400},
      {"POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 1\r\nExpect: magic\r\n\r\n", 417},
      {get("/beta/x", "z.test"), 404},
  };
  for (const auto& [raw, status] : cases) {
    auto p = run(*snap, raw);
    EXPECT_EQ(p->plan.status, status) << raw;
    EXPECT_TRUE(p->x.out_head.empty()) << raw;
  }
}

TEST(Planner, GateCannotBeWalkedAroundByPathForms) {
  auto snap = snapshot();
  for (auto target : {"/beta/x", "//beta/x", "/./beta/x", "/x/../beta/x", "/%62eta/x", "/%2e/beta/x"}) {
    auto p = run(*snap, get(target, "z.test"));
    EXPECT_EQ(p->plan.status, 404u) << target;
    EXPECT_EQ(p->plan.route, 0u) << target;  // the gated route, not the default one
  }
  auto tester = run(*snap, get("//beta/./x?q=%2e", "z.test", "x-user-id: tester\r\n"));
  EXPECT_EQ(tester->plan.status, 0u);
  EXPECT_EQ(tester->plan.target, "/beta/x?q=%2e");  // forwarded normalized, query untouched
  EXPECT_EQ(tester->x.out_head.rfind("GET /beta/x?q=%2e HTTP/1.1\r\nHost: z.test\r\n", 0), 0u) << tester->x.out_head;
}

TEST(Planner, RedirectListenerSendsEveryRequestToHttpsOnItsPort) {
  auto snap = snapshot();
  auto p = run(*snap, get("/cart?id=7", "shop.example:8080"), 1, nullptr, false, 8443);
  EXPECT_EQ(p->plan.status, 308u);
  EXPECT_EQ(p->plan.location, "https://shop.example:8443/cart?id=7");
  p = run(*snap, get("/", "shop.example"), 1, nullptr, false, 443);
  EXPECT_EQ(p->plan.location, "https://shop.example/");  // the default port is left out
  p = run(*snap, get("/x", "[::1]:80"), 1, nullptr, false, 443);
  EXPECT_EQ(p->plan.location, "https://[::1]/x");
  p = run(*snap, "GET http://other.example/y HTTP/1.1\r\nHost: shop.example\r\n\r\n", 1, nullptr, false, 443);
  EXPECT_EQ(p->plan.location, "https://other.example/y");  // absolute-form names the host
  p = run(*snap, get("/x", "bad host"), 1, nullptr, false, 443);
  EXPECT_EQ(p->plan.status, 400u);  // an invalid Host is refused, never echoed into Location
  EXPECT_TRUE(p->plan.location.empty());
}

TEST(Planner, ForwardedProtoSaysHowTheClientCame) {
  auto snap = snapshot();
  auto plain = run(*snap, get("/"));
  auto tls = run(*snap, get("/"), 1, nullptr, true);
  EXPECT_NE(plain->x.out_head.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << plain->x.out_head;
  EXPECT_NE(tls->x.out_head.find("X-Forwarded-Proto: https\r\n"), std::string::npos) << tls->x.out_head;
  // A client's own value never reaches the upstream.
  auto spoof = run(*snap, get("/", "a.test", "X-Forwarded-Proto: https\r\n"));
  EXPECT_NE(spoof->x.out_head.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << spoof->x.out_head;
  EXPECT_EQ(spoof->x.out_head.find("X-Forwarded-Proto: https"), std::string::npos);
}

TEST(Planner, AbsoluteFormReplacesHost) {
  auto snap = snapshot();
  auto p = run(*snap, "GET http://a.test/x?y=1 HTTP/1.1\r\nHost: internal.example.com\r\nx-user-id: u1\r\n\r\n");
  ASSERT_EQ(p->plan.status, 0u);
  EXPECT_EQ(snap->config.routes[p->plan.route].name, "shop");
  EXPECT_EQ(p->plan.host, "a.test");
  EXPECT_EQ(p->x.out_head.rfind("GET /x?y=1 HTTP/1.1\r\nHost: a.test\r\n", 0), 0u) << p->x.out_head;
  EXPECT_NE(p->x.out_head.find("X-Forwarded-Host: a.test\r\n"), std::string::npos);
  EXPECT_EQ(p->x.out_head.find("internal"), std::string::npos);
}

TEST(Planner, FlagsGoUpstreamPercentEncodedAndCounted) {
  auto snap = snapshot();
  MetricsRegistry reg;
  WorkerMetrics metrics(*snap, reg);
  auto p = run(*snap, get("/", "a.test", "x-user-id: u1\r\nx-fledge-flags: forged=1\r\nx_fledge_flags: forged=2\r\n"), 1, &metrics);
  ASSERT_EQ(p->plan.status, 0u);
  EXPECT_EQ(p->x.flags_value, "beta-gate=off, color=x%2C%20beta-gate%3Don");
  EXPECT_NE(p->x.out_head.find("\r\nx-fledge-flags: beta-gate=off, color=x%2C%20beta-gate%3Don\r\n"), std::string::npos)
      << p->x.out_head;
  EXPECT_EQ(p->x.out_head.find("forged"), std::string::npos) << p->x.out_head;
  EXPECT_EQ(read(metrics.variant("color", "x, beta-gate=on")->evals[0]), 1u);  // STATIC
}

// metrics.flag_outcomes: the request remembers the variants it got of the observed flags, and
// the response is counted under each (flag rollouts judge a variant by these counts).
TEST(Planner, ObservedFlagsRecordTheVariantForTheResponseCount) {
  auto snap = snapshot(R"(,"metrics":{"flag_outcomes":["color"]})");
  MetricsRegistry reg;
  WorkerMetrics metrics(*snap, reg);
  auto p = run(*snap, get("/", "a.test", "x-user-id: u1\r\n"), 1, &metrics);
  ASSERT_EQ(p->plan.status, 0u);
  ASSERT_EQ(p->x.outcome_count, 1u);  // color only: beta-gate is evaluated but not observed
  EXPECT_EQ(p->x.outcomes[0].slot, 0u);
  EXPECT_EQ(p->x.outcomes[0].variant, 0);  // "x, beta-gate=on", the default
  metrics.flagOutcome(p->x.outcomes[0].slot, p->x.outcomes[0].variant, 503, std::chrono::microseconds(1500));
  const ArmCounters* c = metrics.outcome("color", "x, beta-gate=on");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(read(c->requests[4]), 1u);
  EXPECT_EQ(read(metrics.outcome("color", "plain")->requests[4]), 0u);
  EXPECT_EQ(metrics.outcome("beta-gate", "on"), nullptr);
  // Without the option nothing is recorded.
  auto plain = snapshot();
  auto q = run(*plain, get("/", "a.test", "x-user-id: u1\r\n"));
  EXPECT_EQ(q->x.outcome_count, 0u);
}

TEST(Planner, StickyKeyDecidesTheArmWhateverTheRandomSource) {
  auto snap = snapshot();
  std::map<std::string, std::size_t> first;
  for (std::uint64_t seed = 1; seed <= 5; ++seed)
    for (int u = 0; u < 50; ++u) {
      const std::string user = "user-" + std::to_string(u);
      auto p = run(*snap, get("/", "a.test", "x-user-id: " + user + "\r\n"), seed);
      ASSERT_EQ(p->plan.status, 0u);
      auto [it, fresh] = first.emplace(user, p->plan.arm);
      EXPECT_EQ(it->second, p->plan.arm) << user;
      EXPECT_EQ(p->plan.cluster, snap->config.routes[p->plan.route].split->arms[p->plan.arm].cluster_index);
      EXPECT_NE(p->x.out_head.find("x-fledge-arm: " + snap->config.routes[p->plan.route].split->arms[p->plan.arm].name + "\r\n"),
                std::string::npos);
    }
}

TEST(Planner, OverridesNeedTheToken) {
  auto snap = snapshot();
  MetricsRegistry reg;
  WorkerMetrics metrics(*snap, reg);
  int canary_with_token = 0, canary_without = 0;
  for (int u = 0; u < 40; ++u) {
    const std::string user = "x-user-id: o" + std::to_string(u) + "\r\n";
    canary_with_token += run(*snap, get("/", "a.test", user + "x-arm: canary;token=s3cret\r\n"), 1, &metrics)->plan.arm == 0;
    canary_without += run(*snap, get("/", "a.test", user + "x-arm: canary;token=wrong\r\n"), 1, &metrics)->plan.arm == 0;
  }
  EXPECT_EQ(canary_with_token, 40);
  EXPECT_LT(canary_without, 40);
  EXPECT_EQ(read(metrics.arm("shop", "canary")->overrides), 40u);
}

TEST(Planner, NewVisitorGetsAnAssignedCookieFromTheRandomSource) {
  auto snap = snapshot();
  auto a = run(*snap, get("/", "c.test"), 42);
  auto b = run(*snap, get("/", "c.test"), 42);
  ASSERT_EQ(a->plan.status, 0u);
  EXPECT_EQ(a->x.down_extra.rfind("Set-Cookie: uid=", 0), 0u) << a->x.down_extra;
  EXPECT_EQ(a->x.down_extra, b->x.down_extra);  // same seed, same id
  EXPECT_EQ(a->plan.arm, b->plan.arm);
  // The cookie it was given keeps the visitor on that arm.
  const std::string cookie = a->x.down_extra.substr(12, a->x.down_extra.find(';') - 12);
  for (std::uint64_t seed = 1; seed < 6; ++seed)
    EXPECT_EQ(run(*snap, get("/", "c.test", "Cookie: " + cookie + "\r\n"), seed)->plan.arm, a->plan.arm);
}

TEST(Planner, MirrorSampleFollowsThePercentage) {
  auto snap = snapshot();
  int mirrored = 0;
  for (std::uint64_t seed = 1; seed <= 2000; ++seed) mirrored += run(*snap, get("/", "a.test", "x-user-id: m\r\n"), seed)->plan.mirror != nullptr;
  EXPECT_NEAR(mirrored / 2000.0, 0.25, 0.04);
  // A declared body over the mirror limit is never sampled.
  auto big = run(*snap, "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2000000\r\n\r\n", 3);
  EXPECT_EQ(big->plan.mirror, nullptr);
}

TEST(Planner, Http10WithoutHostGetsTheClusterEndpointAsHost) {
  auto snap = snapshot();
  auto p = run(*snap, "GET /x HTTP/1.0\r\nConnection: Host\r\n\r\n");
  ASSERT_EQ(p->plan.status, 0u);
  EXPECT_TRUE(p->plan.client_close);
  EXPECT_EQ(p->x.out_head.rfind("GET /x HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n", 0), 0u) << p->x.out_head;
  EXPECT_EQ(p->x.out_head.find("X-Forwarded-Host"), std::string::npos);
}

TEST(Planner, PolicyOptionsChangeWhatIsForwardedOrRefused) {
  auto match_only = snapshot(R"(,"http":{"path_normalization":"match_only"})");
  auto p = run(*match_only, get("/a/./b/../c//d?x=%2e", "z.test"));
  EXPECT_EQ(p->plan.target, "/a/./b/../c//d?x=%2e");
  auto reject = snapshot(R"(,"http":{"path_normalization":"reject","encoded_slashes":"decode"})");
  EXPECT_EQ(run(*reject, get("/a//b", "z.test"))->plan.status, 400u);
  EXPECT_EQ(run(*reject, get("/a/b", "z.test"))->plan.status, 0u);
  auto decode = snapshot(R"(,"http":{"encoded_slashes":"decode"})");
  EXPECT_EQ(run(*decode, get("/%2Fbeta/x", "z.test"))->plan.route, 0u);
}

}  // namespace
}  // namespace fledge::proxy
