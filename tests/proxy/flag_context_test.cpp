#include "proxy/flag_context.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>

namespace fledge::proxy {
namespace {
namespace http = boost::beast::http;

struct Req {
  Head head;
  std::string target;
  Req(std::string t, std::initializer_list<std::pair<std::string_view, std::string_view>> fields) : target(std::move(t)) {
    head.setStartLine("GET", target);
    for (auto [k, v] : fields) head.addField(http::string_to_field(k), k, v);
  }
  RequestView view() const { return RequestView{head, target, "GET", "shop.example", "10.1.2.3"}; }
};

ContextSpec spec() {
  ContextSpec s;
  s.targeting_key = {{ValueSource::Kind::kHeader, "x-user-id"},
                     {ValueSource::Kind::kCookie, "uid"},
                     {ValueSource::Kind::kQuery, "uid"}};
  s.attributes = {{"plan", {ValueSource::Kind::kHeader, "x-plan"}},
                  {"country", {ValueSource::Kind::kCookie, "country"}},
                  {"q", {ValueSource::Kind::kQuery, "q"}}};
  s.prepare();
  return s;
}

std::string str(const flags::Value& ctx, std::string_view key) {
  const flags::Value* v = ctx.get(key);
  return v && v->isString() ? std::string(v->sv()) : "<absent>";
}

TEST(FlagContext, HeadersCookiesQueryAndBuiltins) {
  ContextSpec s = spec();
  Req r("/shop/cart?q=red+shoes%21&x=1",
        {{"Host", "shop.example"}, {"X-PLAN", "pro"}, {"Cookie", "a=1;  country=\"DE\" ; uid=cookie-user"}});
  flags::Arena arena;
  flags::Value ctx = buildContext(s, r.view(), arena);
  EXPECT_EQ(str(ctx, "targetingKey"), "cookie-user");  // no x-user-id header: the cookie is next
  EXPECT_EQ(str(ctx, "plan"), "pro");                   // header names are case-insensitive
  EXPECT_EQ(str(ctx, "country"), "DE");                 // quoted cookie values are unquoted
  EXPECT_EQ(str(ctx, "q"), "red shoes!");               // query values are URL-decoded
  const flags::Value* req = ctx.get("request");
  ASSERT_TRUE(req);
  EXPECT_EQ(str(*req, "ip"), "10.1.2.3");
  EXPECT_EQ(str(*req, "method"), "GET");
  EXPECT_EQ(str(*req, "path"), "/shop/cart");
  EXPECT_EQ(str(*req, "host"), "shop.example");
}

TEST(FlagContext, FirstTargetingKeySourceWinsAndEmptyIsSkipped) {
  ContextSpec s = spec();
  flags::Arena arena;
  Req both("/?uid=query-user", {{"X-User-Id", "header-user"}, {"Cookie", "uid=cookie-user"}});
  EXPECT_EQ(str(buildContext(s, both.view(), arena), "targetingKey"), "header-user");
  Req empty_header("/?uid=query-user", {{"X-User-Id", ""}});
  EXPECT_EQ(str(buildContext(s, empty_header.view(), arena), "targetingKey"), "query-user");
  Req none("/", {});
  flags::Value ctx = buildContext(s, none.view(), arena);
  EXPECT_EQ(str(ctx, "targetingKey"), "<absent>");
  EXPECT_EQ(str(ctx, "plan"), "<absent>");
}

TEST(FlagContext, FirstOccurrenceOfARepeatedHeaderWins) {
  ContextSpec s = spec();
  flags::Arena arena;
  Req r("/", {{"X-Plan", "first"}, {"x-plan", "second"}});
  EXPECT_EQ(str(buildContext(s, r.view(), arena), "plan"), "first");
}

TEST(FlagContext, ManyHeaderSourcesStillResolve) {
  // More sources than the hashed index holds: the builder falls back to a scan.
  ContextSpec s;
  Req r("/", {});
  for (int i = 0; i < 40; ++i) {
    std::string name = "x-h" + std::to_string(i);
    s.attributes.push_back({"a" + std::to_string(i), {ValueSource::Kind::kHeader, name}});
  }
  s.prepare();
  r.head.addField(http::field::unknown, "X-H37", "v37");
  flags::Arena arena;
  EXPECT_EQ(str(buildContext(s, r.view(), arena), "a37"), "v37");
}

}  // namespace
}  // namespace fledge::proxy
