#include "proxy/router.hpp"

#include <gtest/gtest.h>

namespace fledge::proxy {
namespace {

RouteConfig route(std::string host, std::string prefix) {
  RouteConfig r;
  r.name = "r";
  r.host = std::move(host);
  r.path_prefix = std::move(prefix);
  return r;
}

TEST(RouteTable, FirstMatchWins) {
  RouteTable t({route("", "/api/v2"), route("", "/api"), route("", "")});
  EXPECT_EQ(t.match("x", "/api/v2/users"), 0u);
  EXPECT_EQ(t.match("x", "/api/v1"), 1u);
  EXPECT_EQ(t.match("x", "/other"), 2u);
}

TEST(RouteTable, HostIsCaseInsensitiveAndIgnoresPort) {
  RouteTable t({route("api.example.com", ""), route("", "/fallback")});
  EXPECT_EQ(t.match("API.Example.com:8080", "/x"), 0u);
  EXPECT_EQ(t.match("api.example.com.", "/x"), 0u);
  EXPECT_FALSE(t.match("www.example.com", "/x").has_value());
  EXPECT_EQ(t.match("www.example.com", "/fallback/a"), 1u);
}

TEST(RouteTable, WildcardMatchesSubdomainsOnly) {
  RouteTable t({route("*.example.com", "")});
  EXPECT_EQ(t.match("a.example.com", "/"), 0u);
  EXPECT_EQ(t.match("a.b.EXAMPLE.com:81", "/"), 0u);
  EXPECT_FALSE(t.match("example.com", "/").has_value());
  EXPECT_FALSE(t.match("badexample.com", "/").has_value());
}

TEST(RouteTable, HostAndPathMustBothMatch) {
  RouteTable t({route("a.test", "/x"), route("b.test", "/")});
  EXPECT_EQ(t.match("a.test", "/x/1"), 0u);
  EXPECT_FALSE(t.match("a.test", "/y").has_value());
  EXPECT_EQ(t.match("b.test", "/x"), 1u);
}

TEST(RouteTable, HostWithoutPort) {
  EXPECT_EQ(RouteTable::hostWithoutPort("a.b:80"), "a.b");
  EXPECT_EQ(RouteTable::hostWithoutPort("[::1]:80"), "[::1]");
  EXPECT_EQ(RouteTable::hostWithoutPort("[::1]"), "[::1]");
  EXPECT_EQ(RouteTable::hostWithoutPort("a.b"), "a.b");
}

}  // namespace
}  // namespace fledge::proxy
