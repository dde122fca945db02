// Flag-engine micro-benchmarks. The flag definitions (bench/flags/bench_flags.json) and the
// contexts match bench/flagd_core_bench.mjs, so bench/flags_compare can put the two side by side.
#include <benchmark/benchmark.h>

#include <boost/beast/http/field.hpp>

#include <fstream>
#include <sstream>

#include "flags/flag_set.hpp"
#include "flags/murmur3.hpp"
#include "proxy/flag_context.hpp"
#include "proxy/router.hpp"
#include "proxy/split.hpp"

namespace {
using namespace fledge;
using flags::Member;
using flags::Value;

std::shared_ptr<const flags::FlagSet> benchFlags() {
  static auto set = [] {
    std::ifstream in(std::string(FLEDGE_SOURCE_DIR) + "/bench/flags/bench_flags.json");
    std::stringstream ss;
    ss << in.rdbuf();
    std::vector<flags::FlagSetError> errors;
    auto s = flags::FlagSet::load({{"bench_flags.json", ss.str()}}, errors);
    if (!s) std::abort();
    return s;
  }();
  return set;
}

struct Fixture {
  std::shared_ptr<const flags::FlagSet> set = benchFlags();
  flags::EvalScratch scratch;
};

void BM_StaticBool(benchmark::State& state) {
  Fixture fx;
  const flags::Flag* f = fx.set->find("static-bool");
  Member m[] = {{"targetingKey", Value::string("user-1")}};
  Value ctx = Value::object(m, 1);
  for (auto _ : state) benchmark::DoNotOptimize(fx.set->evaluate(*f, ctx, fx.scratch, 0));
}
BENCHMARK(BM_StaticBool);

void BM_ThreeConditions(benchmark::State& state) {
  Fixture fx;
  const flags::Flag* f = fx.set->find("three-conditions");
  Member m[] = {{"targetingKey", Value::string("user-1")},
                {"email", Value::string("alice@example.com")},
                {"plan", Value::string("pro")},
                {"age", Value::number(30)}};
  Value ctx = Value::object(m, 4);
  auto check = fx.set->evaluate(*f, ctx, fx.scratch, 0);
  if (!check.variant || check.variant->name != "on") state.SkipWithError("wrong variant");
  for (auto _ : state) benchmark::DoNotOptimize(fx.set->evaluate(*f, ctx, fx.scratch, 0));
}
BENCHMARK(BM_ThreeConditions);

void BM_Fractional3(benchmark::State& state) {
  Fixture fx;
  const flags::Flag* f = fx.set->find("fractional-3");
  std::vector<std::string> keys;
  for (int i = 0; i < 1024; ++i) keys.push_back("user-" + std::to_string(i));
  std::vector<Member> members;
  for (const auto& k : keys) members.push_back({"targetingKey", Value::string(k)});
  std::size_t i = 0;
  for (auto _ : state) {
    Value ctx = Value::object(&members[i++ & 1023], 1);
    benchmark::DoNotOptimize(fx.set->evaluate(*f, ctx, fx.scratch, 0));
  }
}
BENCHMARK(BM_Fractional3);

void BM_TwentyFlags(benchmark::State& state) {
  Fixture fx;
  std::vector<const flags::Flag*> list;
  for (const auto& f : fx.set->flags())
    if (f.key.rfind("req-", 0) == 0) list.push_back(&f);
  if (list.size() != 20) state.SkipWithError("expected 20 req-* flags");
  Member m[] = {{"targetingKey", Value::string("user-42")},
                {"email", Value::string("bob@example.com")},
                {"plan", Value::string("enterprise")},
                {"age", Value::number(40)}};
  Value ctx = Value::object(m, 4);
  for (auto _ : state)
    for (const auto* f : list) benchmark::DoNotOptimize(fx.set->evaluate(*f, ctx, fx.scratch, 0));
}
BENCHMARK(BM_TwentyFlags);

void BM_ContextFrom10Headers(benchmark::State& state) {
  namespace http = boost::beast::http;
  proxy::Head head;
  head.setStartLine("GET", "/shop/cart");
  const std::pair<const char*, const char*> headers[] = {
      {"Host", "shop.example"},   {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"},
      {"Accept", "*/*"},          {"X-User-Id", "user-42"},
      {"X-Plan", "pro"},          {"X-Country", "DE"},
      {"X-App-Version", "1.2.3"}, {"X-Forwarded-For", "10.0.0.1"},
      {"Cookie", "uid=abc; theme=dark"}, {"X-Email", "a@example.com"}};
  for (auto [k, v] : headers) head.addField(http::string_to_field(k), k, v);
  proxy::ContextSpec spec;
  spec.targeting_key = {{proxy::ValueSource::Kind::kHeader, "x-user-id"}, {proxy::ValueSource::Kind::kCookie, "uid"}};
  spec.attributes = {{"plan", {proxy::ValueSource::Kind::kHeader, "x-plan"}},
                     {"country", {proxy::ValueSource::Kind::kHeader, "x-country"}},
                     {"version", {proxy::ValueSource::Kind::kHeader, "x-app-version"}},
                     {"email", {proxy::ValueSource::Kind::kHeader, "x-email"}},
                     {"theme", {proxy::ValueSource::Kind::kCookie, "theme"}}};
  spec.prepare();
  flags::Arena arena;
  proxy::RequestView req{head, "/shop/cart?x=1", "GET", "shop.example", "10.0.0.1"};
  for (auto _ : state) {
    arena.reset();
    Value ctx = proxy::buildContext(spec, req, arena);
    benchmark::DoNotOptimize(ctx);
  }
}
BENCHMARK(BM_ContextFrom10Headers);

// Picking a canary arm as the proxy does: sticky key from a request header (among 10), murmur3
// of salt + key, walk of the cumulative weights.
void BM_PickArm(benchmark::State& state) {
  namespace http = boost::beast::http;
  std::vector<proxy::Head> heads(64);
  for (std::size_t i = 0; i < heads.size(); ++i) {
    auto& head = heads[i];
    head.setStartLine("GET", "/shop/cart");
    std::string user = "user-" + std::to_string(1000 + i);
    const std::pair<std::string_view, std::string_view> headers[] = {
        {"Host", "shop.example"}, {"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"}, {"Accept", "*/*"},
        {"Accept-Encoding", "gzip"}, {"X-Forwarded-For", "10.0.0.1"}, {"X-User-Id", user},
        {"X-Plan", "pro"}, {"Cookie", "theme=dark"}, {"X-App-Version", "1.2.3"}, {"Referer", "https://shop.example/"}};
    for (auto [k, v] : headers) head.addField(http::string_to_field(k), k, v);
  }
  const proxy::ValueSource sticky{proxy::ValueSource::Kind::kHeader, "x-user-id"};
  proxy::SplitTable table({50'000, 950'000});
  flags::Arena arena;
  std::size_t i = 0, canary = 0;
  for (auto _ : state) {
    const proxy::Head& head = heads[i++ & 63];
    proxy::RequestView req{head, "/shop/cart", "GET", "shop.example", "10.0.0.1"};
    bool found = false;
    std::string_view key = proxy::findSource(sticky, req, arena, found);
    std::size_t arm = table.pick(proxy::splitPoint("web", key));
    canary += arm == 0;
    benchmark::DoNotOptimize(arm);
  }
  benchmark::DoNotOptimize(canary);
}
BENCHMARK(BM_PickArm);

void BM_Murmur3_24Bytes(benchmark::State& state) {
  std::string key = "route-web/user-1234567890";
  for (auto _ : state) benchmark::DoNotOptimize(flags::murmur3_x86_32(key));
}
BENCHMARK(BM_Murmur3_24Bytes);

void BM_RouteMatch(benchmark::State& state) {
  std::vector<proxy::RouteConfig> routes(8);
  for (int i = 0; i < 8; ++i) {
    routes[static_cast<std::size_t>(i)].name = "r" + std::to_string(i);
    routes[static_cast<std::size_t>(i)].path_prefix = "/svc" + std::to_string(i);
  }
  routes[7].path_prefix = "/";
  proxy::RouteTable table(routes);
  for (auto _ : state) benchmark::DoNotOptimize(table.match("shop.example:8080", "/checkout/cart"));
}
BENCHMARK(BM_RouteMatch);

}  // namespace


BENCHMARK_MAIN();
