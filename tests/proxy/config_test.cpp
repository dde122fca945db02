#include "proxy/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace fledge::proxy {
namespace {

constexpr const char* kFull = R"({
  "listeners": [{"name": "main", "address": "0.0.0.0:8080"}, {"address": "[::1]:8081"}],
  "workers": 4,
  "log_level": "warn",
  "admin": {"listen": "127.0.0.1:9901"},
  "timeouts": {"header_read_ms": 5000, "idle_ms": 30000, "body_read_ms": 20000,
               "upstream_connect_ms": 1000, "upstream_response_ms": 15000, "drain_ms": 3000},
  "limits": {"max_request_line": 4096, "max_header_bytes": 32768, "max_headers": 50,
             "max_body_bytes": 1048576, "max_connections": 1000},
  "clusters": {
    "web-v1": {"endpoints": ["127.0.0.1:9001", "localhost:9002"], "lb": "least_request",
               "max_connections": 100, "max_idle": 10, "idle_timeout_ms": 5000, "eject_ms": 1000},
    "web-v2": {"endpoints": ["[::1]:9003"]}
  },
  "routes": [
    {"name": "api", "match": {"host": "API.example.com", "path_prefix": "/api"}, "cluster": "web-v2"},
    {"name": "wild", "match": {"host": "*.example.com"}, "cluster": "web-v1"},
    {"name": "default", "cluster": "web-v1"}
  ]
})";

bool hasError(const ConfigResult& r, const std::string& path, const std::string& needle) {
  return std::any_of(r.errors.begin(), r.errors.end(), [&](const ConfigError& e) {
    return e.path == path && e.message.find(needle) != std::string::npos;
  });
}

std::string allErrors(const ConfigResult& r) {
  std::string s;
  for (const auto& e : r.errors) s += e.str() + "\n";
  return s;
}

TEST(Config, ParsesFullExample) {
  auto r = parseConfig(kFull);
  ASSERT_TRUE(r.ok()) << allErrors(r);
  const Config& c = *r.config;
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "main");
  EXPECT_EQ(c.listeners[0].address.port, 8080);
  EXPECT_EQ(c.listeners[1].name, "listener-1");
  EXPECT_EQ(c.listeners[1].address.host, "::1");
  EXPECT_EQ(c.workers, 4u);
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.timeouts.header_read.count(), 5000);
  EXPECT_EQ(c.timeouts.drain.count(), 3000);
  EXPECT_EQ(c.limits.max_headers, 50u);
  EXPECT_EQ(c.limits.max_body_bytes, 1048576u);
  ASSERT_EQ(c.clusters.size(), 2u);
  EXPECT_EQ(c.clusters[0].name, "web-v1");
  EXPECT_EQ(c.clusters[0].lb, LbPolicy::kLeastRequest);
  EXPECT_EQ(c.clusters[0].endpoints[1].host, "localhost");
  EXPECT_EQ(c.clusters[0].max_idle, 10u);
  ASSERT_EQ(c.routes.size(), 3u);
  EXPECT_EQ(c.routes[0].host, "api.example.com");  // lowercased
  EXPECT_EQ(c.routes[0].cluster_index, 1u);
  EXPECT_EQ(c.routes[2].cluster_index, 0u);
}

TEST(Config, DefaultsAreSane) {
  auto r = parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}]})");
  ASSERT_TRUE(r.ok()) << allErrors(r);
  EXPECT_EQ(r.config->workers, 0u);  // = number of cores
  EXPECT_EQ(r.config->admin.listen.str(), "127.0.0.1:9901");
  EXPECT_GT(r.config->timeouts.header_read.count(), 0);
  EXPECT_EQ(r.config->limits.max_body_bytes, 0u);
}

TEST(Config, ReportsEveryProblemWithItsPath) {
  auto r = parseConfig(R"({
    "listeners": [{"address": "nope"}],
    "workers": -1,
    "clusters": {"c": {"endpoints": ["127.0.0.1:0", "::1:80"], "lb": "random"}, "bad name!": {"endpoints": []}},
    "routes": [
      {"name": "a", "match": {"path_prefix": "/ok"}, "cluster": "c"},
      {"name": "b", "match": {"path_prefix": "api"}, "cluster": "missing"},
      {"name": "a", "match": {"host": "x.*.com"}, "cluster": "c", "weight": 3},
      {"match": {}}
    ],
    "timeouts": {"idle_ms": 0},
    "limits": {"max_headers": "many"},
    "extra": true
  })");
  ASSERT_FALSE(r.ok());
  const std::string all = allErrors(r);
  EXPECT_TRUE(hasError(r, "listeners[0].address", "port missing")) << all;
  EXPECT_TRUE(hasError(r, "workers", "must be >=")) << all;
  EXPECT_TRUE(hasError(r, "clusters.c.endpoints[0]", "port must be between 1 and 65535")) << all;
  EXPECT_TRUE(hasError(r, "clusters.c.endpoints[1]", "IPv6")) << all;
  EXPECT_TRUE(hasError(r, "clusters.c.lb", "round_robin")) << all;
  EXPECT_TRUE(hasError(r, "clusters.bad name!", "cluster name")) << all;
  EXPECT_TRUE(hasError(r, "clusters.bad name!.endpoints", "at least one")) << all;
  EXPECT_TRUE(hasError(r, "routes[1].match.path_prefix", "must start with \"/\"")) << all;
  EXPECT_TRUE(hasError(r, "routes[1].cluster", "unknown cluster \"missing\"")) << all;
  EXPECT_TRUE(hasError(r, "routes[2].name", "duplicate route name")) << all;
  EXPECT_TRUE(hasError(r, "routes[2].match.host", "wildcard")) << all;
  EXPECT_TRUE(hasError(r, "routes[2].weight", "unknown field")) << all;
  EXPECT_TRUE(hasError(r, "routes[3].name", "is required")) << all;
  EXPECT_TRUE(hasError(r, "routes[3].cluster", "is required")) << all;
  EXPECT_TRUE(hasError(r, "timeouts.idle_ms", "between 1")) << all;
  EXPECT_TRUE(hasError(r, "limits.max_headers", "must be an integer, got string")) << all;
  EXPECT_TRUE(hasError(r, "extra", "unknown field")) << all;
}

TEST(Config, EtcdStoreBlock) {
  auto ok = parseConfig(R"({"listeners": [{"address": "127.0.0.1:0"}], "clusters": {}, "routes": [],
    "admin": {"store": {"etcd": {"endpoints": ["127.0.0.1:2379", "[::1]:2379"], "prefix": "/shop/", "member": "edge-1",
                                 "lease_ttl_s": 5, "username": "fledge", "password_env": "ETCD_PW"}}}})");
  ASSERT_TRUE(ok.ok()) << allErrors(ok);
  const auto& e = *ok.config->admin.etcd;
  ASSERT_EQ(e.endpoints.size(), 2u);
  EXPECT_EQ(e.endpoints[1].host, "::1");
  EXPECT_EQ(e.prefix, "/shop/");
  EXPECT_EQ(e.member, "edge-1");
  EXPECT_EQ(e.lease_ttl_s, 5u);
  auto r = parseConfig(R"({"listeners": [{"address": "127.0.0.1:0"}], "clusters": {}, "routes": [],
    "admin": {"data_dir": "/tmp/x", "store": {"etcd": {"endpoints": [], "prefix": "fledge", "lease_ttl_s": 1,
                                                       "username": "u", "member": "a b", "color": 1}}}})");
  ASSERT_FALSE(r.ok());
  const std::string all = allErrors(r);
  EXPECT_TRUE(hasError(r, "admin.store", "two stores: choose one")) << all;
  EXPECT_TRUE(hasError(r, "admin.store.etcd.endpoints", "at least one etcd endpoint")) << all;
  EXPECT_TRUE(hasError(r, "admin.store.etcd.prefix", "ending in \"/\"")) << all;
  EXPECT_TRUE(hasError(r, "admin.store.etcd.lease_ttl_s", "between 2")) << all;
  EXPECT_TRUE(hasError(r, "admin.store.etcd", "username and password_env go together")) << all;
  EXPECT_TRUE(hasError(r, "admin.store.etcd.member", "1-128 characters")) << all;
  EXPECT_TRUE(hasError(r, "admin.store.etcd.color", "unknown field")) << all;
}

TEST(Config, FlagOutcomesNameKnownFlags) {
  const std::string flags = R"("flags":{"flags":{"f":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"off"}}})";
  auto base = [&](const std::string& metrics) {
    return parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],"clusters":{"c":{"endpoints":["127.0.0.1:1"]}},
                          "routes":[{"name":"r","cluster":"c"}],)" + flags + R"(,"metrics":)" + metrics + "}");
  };
  auto ok = base(R"({"flag_outcomes":["f","f"]})");
  ASSERT_TRUE(ok.ok()) << allErrors(ok);
  EXPECT_EQ(ok.config->metrics.flag_outcomes, std::vector<std::string>{"f"});
  auto unknown = base(R"({"flag_outcomes":["f","g"]})");
  EXPECT_TRUE(hasError(unknown, "metrics.flag_outcomes[1]", "unknown flag \"g\"")) << allErrors(unknown);
  auto wrong = base(R"({"flag_outcomes":"f"})");
  EXPECT_TRUE(hasError(wrong, "metrics.flag_outcomes", "must be an array")) << allErrors(wrong);
}

TEST(Config, RejectsInvalidJsonAndWrongTypes) {
  EXPECT_TRUE(hasError(parseConfig("{"), "", "invalid JSON"));
  EXPECT_TRUE(hasError(parseConfig("[]"), "", "must be an object"));
  EXPECT_TRUE(hasError(parseConfig(R"({"listeners": {}})"), "listeners", "must be an array"));
  EXPECT_TRUE(hasError(parseConfig(R"({})"), "listeners", "is required"));
  EXPECT_TRUE(hasError(parseConfig(R"({"listeners": []})"), "listeners", "at least one"));
  EXPECT_TRUE(hasError(parseConfig(R"({"listeners":[{"address":"127.0.0.1:1"}],"listeners":[]})"), "listeners",
                       "duplicate field"));
  EXPECT_TRUE(hasError(parseConfig(R"({"listeners":[{"address":"127.0.0.1:1"}],"clusters":{"c":{}}})"),
                       "clusters.c.endpoints", "is required"));
  EXPECT_TRUE(hasError(parseConfig(R"({"listeners":[{"address":"127.0.0.1:1"}],"limits":{"max_request_line":9000,"max_header_bytes":4096}})"),
                       "limits.max_request_line", "must not exceed"));
}

TEST(Config, HostPortForms) {
  HostPort hp;
  EXPECT_EQ(parseHostPort("example.com:80", hp, false), "");
  EXPECT_EQ(hp.host, "example.com");
  EXPECT_EQ(hp.port, 80);
  EXPECT_EQ(parseHostPort("[2001:db8::1]:443", hp, false), "");
  EXPECT_EQ(hp.host, "2001:db8::1");
  EXPECT_EQ(hp.str(), "[2001:db8::1]:443");
  EXPECT_NE(parseHostPort("host:70000", hp, false), "");
  EXPECT_NE(parseHostPort("host:", hp, false), "");
  EXPECT_NE(parseHostPort(":80", hp, false), "");
  EXPECT_NE(parseHostPort("[::1]80", hp, false), "");
  EXPECT_EQ(parseHostPort("127.0.0.1:0", hp, true), "");
}

}  // namespace
}  // namespace fledge::proxy
