#pragma once
// A fleet for tests: a real etcd (tests/etcd_process.hpp) and N `fledge` instances m0..mN-1
// sharing their state through it, in front of two echo upstreams. The route "shop" splits
// between arms canary (cluster v2, weight 0) and stable (v1, 100) and evaluates flag "color"
// (red, blue, green, yellow; default red), so a proxied request shows what an instance serves.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "admin/etcd_client.hpp"
#include "tests/etcd_process.hpp"
#include "tests/integration/admin_stack.hpp"

namespace fledge::test {

class FleetStack {
 public:
  EtcdProcess etcd;
  EchoUpstream stable{"stable"}, canary{"canary"};

  explicit FleetStack(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) instances_.push_back(std::make_unique<Fledge>(configFor(i)));
  }

  std::string configFor(std::size_t i) const {
    return config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
                  R"([{"name":"shop","match":{"path_prefix":"/"},"flags":["color"],
                       "split":{"arms":[{"name":"canary","cluster":"v2","weight":0},{"name":"stable","cluster":"v1","weight":100}]}}])",
                  R"("admin":{"listen":"127.0.0.1:0","store":{"etcd":{"endpoints":[")" + etcd.clientAddress() +
                      R"("],"prefix":"/fledge-test/","member":"m)" + std::to_string(i) + R"(","lease_ttl_s":3}}},
                     "evaluation_context":{"targeting_key":[{"header":"x-user-id"}]},
                     "flags":{"flags":{"color":{"state":"ENABLED","variants":{"red":"red","blue":"blue","green":"green","yellow":"yellow"},
                                                 "defaultVariant":"red"}}})");
  }

  Fledge& instance(std::size_t i) { return *instances_.at(i); }
  std::uint16_t port(std::size_t i) { return instance(i).port(); }
  std::uint16_t admin(std::size_t i) { return instance(i).adminPort(); }
  bool alive(std::size_t i) const { return instances_.at(i) != nullptr; }
  void kill(std::size_t i) {
    instances_.at(i)->process().signal(SIGKILL);
    instances_.at(i)->process().wait();
    instances_.at(i).reset();
  }

  // Polls `done` every 20 ms until it holds or `limit` passes.
  static bool await(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
      try {
        if (done()) return true;
      } catch (const std::exception&) {  // an instance between states: ask again
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // Instance i proxies a request whose x-fledge-flags contains `text`.
  bool serves(std::size_t i, const std::string& text, std::chrono::milliseconds limit) {
    return await([&] {
      auto flags = echoHeader(get(port(i), "/", {{"x-user-id", "probe"}}).body(), "x-fledge-flags");
      return flags && flags->find(text) != std::string::npos;
    }, limit);
  }
  bool awaitView(std::size_t i, const std::function<bool(const std::string&)>& pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    return await([&] { return pred(call(admin(i), http::verb::get, "/api/v1/fleet").body()); }, limit);
  }
  void waitForMembers(std::size_t n) {
    for (std::size_t i = 0; i < instances_.size(); ++i)
      if (alive(i))
        ASSERT_TRUE(awaitView(i, [&](const std::string& v) {
          std::size_t count = 0;
          for (auto at = v.find("\"admin\":"); at != std::string::npos; at = v.find("\"admin\":", at + 1)) ++count;
          return count == n && v.find("\"leader\":\"m") != std::string::npos;
        })) << call(admin(i), http::verb::get, "/api/v1/fleet").body();
  }
  // The alive instance that leads, as the fleet view of any alive instance says; size() if none.
  std::size_t leader() {
    for (std::size_t i = 0; i < instances_.size(); ++i) {
      if (!alive(i)) continue;
      const std::string v = call(admin(i), http::verb::get, "/api/v1/fleet").body();
      for (std::size_t j = 0; j < instances_.size(); ++j)
        if (v.find("\"leader\":\"m" + std::to_string(j) + "\"") != std::string::npos) return j;
    }
    return instances_.size();
  }
  bool awaitRollout(std::size_t i, const std::string& name, const std::string& text, std::chrono::milliseconds limit) {
    return await([&] { return call(admin(i), http::verb::get, "/api/v1/rollouts/" + name).body().find(text) != std::string::npos; }, limit);
  }
  bool awaitMetric(std::size_t i, const std::string& series, double value, std::chrono::milliseconds limit) {
    return await([&] { return metricSample(get(admin(i), "/metrics").body(), series) == value; }, limit);
  }
  // Compacts etcd's history up to its current revision (what a long-running etcd does).
  void compactEtcd() {
    admin::etcd::Options o;
    o.endpoints.push_back({"127.0.0.1", etcd.clientPort()});
    admin::etcd::Client client(o);
    admin::etcd::RangeResult r;
    ASSERT_TRUE(client.range("/", "", r).ok());
    ASSERT_TRUE(client.compact(r.revision).ok());
  }
  // Every alive instance answers with the same config version (ETag).
  bool sameVersion(std::chrono::milliseconds limit) {
    return await([&] {
      std::string first;
      for (std::size_t i = 0; i < instances_.size(); ++i) {
        if (!alive(i)) continue;
        const std::string etag(call(admin(i), http::verb::get, "/api/v1/flags/color")["ETag"]);
        if (first.empty()) first = etag;
        else if (etag != first) return false;
      }
      return true;
    }, limit);
  }

 private:
  std::vector<std::unique_ptr<Fledge>> instances_;
};

}  // namespace fledge::test
