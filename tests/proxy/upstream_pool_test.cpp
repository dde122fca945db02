// The upstream pool across configuration changes: settings come from the new configuration,
// endpoints that survive keep their connections and counts, removed ones are retired.
#include "proxy/upstream_pool.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include "proxy/config.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {
namespace {
using namespace std::chrono_literals;
using tcp = boost::asio::ip::tcp;

std::shared_ptr<const Snapshot> snap(const std::string& clusters) {
  auto r = parseConfig(R"({"listeners":[{"address":"127.0.0.1:0"}],"clusters":)" + clusters +
                       R"(,"routes":[{"name":"all","cluster":"up"}]})");
  EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].str());
  std::string err;
  auto s = Snapshot::create(std::move(*r.config), err);
  EXPECT_TRUE(s) << err;
  return s;
}

struct Pools {
  MetricsRegistry registry;
  std::shared_ptr<const Snapshot> s1, s2;
  std::shared_ptr<WorkerMetrics> m1, m2;
  std::unique_ptr<UpstreamPool> p1, p2;
  void first(const std::string& clusters) {
    s1 = snap(clusters);
    m1 = std::make_shared<WorkerMetrics>(*s1, registry);
    p1 = std::make_unique<UpstreamPool>(*s1, *m1, nullptr);
  }
  void change(const std::string& clusters) {
    s2 = snap(clusters);
    m2 = std::make_shared<WorkerMetrics>(*s2, registry);
    p2 = std::make_unique<UpstreamPool>(*s2, *m2, p1.get());
  }
};

// A connected pair of loopback sockets: `client` goes into the pool, `server` plays the upstream.
struct Pair {
  boost::asio::io_context ioc;
  UpstreamConnection client{ioc};
  tcp::socket server{ioc};
  Pair() {
    tcp::acceptor acc(ioc, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    client.socket().connect(acc.local_endpoint());
    acc.accept(server);
  }
};

TEST(UpstreamPool, SettingsChangedAtRuntimeApplyToNewRequests) {
  Pools p;
  p.first(R"({"up":{"endpoints":["127.0.0.1:9001"]}})");
  auto now = UpstreamPool::Clock::now();
  ASSERT_EQ(p.p1->pick(0, 0, now), 0u);
  UpstreamPool::acquired(*p.p1->endpoint(0, 0));  // a request holds a connection
  EXPECT_TRUE(p.p1->canOpen(0, 0));
  // The same endpoint with "max_connections": 1: the busy connection counts against it.
  p.change(R"({"up":{"endpoints":["127.0.0.1:9001"],"max_connections":1}})");
  EXPECT_EQ(p.p1->endpoint(0, 0), p.p2->endpoint(0, 0));
  EXPECT_EQ(p.p2->settings(0).max_connections, 1u);
  EXPECT_FALSE(p.p2->canOpen(0, 0));
  EXPECT_EQ(read(p.m2->cluster("up")->busy), 1);
  // The request pinned on the old generation releases into the shared endpoint state.
  UpstreamPool::release(*p.p1->endpoint(0, 0), nullptr, p.p1->settings(0).max_idle, now);
  EXPECT_TRUE(p.p2->canOpen(0, 0));
  EXPECT_EQ(read(p.m2->cluster("up")->busy), 0);
}

TEST(UpstreamPool, SurvivingEndpointsKeepIdleConnectionsRemovedOnesAreRetired) {
  Pools p;
  p.first(R"({"up":{"endpoints":["127.0.0.1:9001","127.0.0.1:9002"]}})");
  auto now = UpstreamPool::Clock::now();
  Pair a, b;
  for (std::size_t e : {0u, 1u}) UpstreamPool::acquired(*p.p1->endpoint(0, e));
  UpstreamPool::release(*p.p1->endpoint(0, 0), &a.client, 64, now);
  UpstreamPool::release(*p.p1->endpoint(0, 1), &b.client, 64, now);
  EXPECT_EQ(read(p.m1->cluster("up")->idle), 2);
  // 9001 stays (now second in the list), 9002 goes, 9003 arrives.
  p.change(R"({"up":{"endpoints":["127.0.0.1:9003","127.0.0.1:9001"],"idle_timeout_ms":60000}})");
  EXPECT_EQ(p.p2->endpoint(0, 1), p.p1->endpoint(0, 0));
  EXPECT_TRUE(p.p1->endpoint(0, 1)->retired);
  EXPECT_TRUE(p.p1->endpoint(0, 1)->idle.empty());
  EXPECT_EQ(read(p.m2->cluster("up")->idle), 1);
  auto kept = p.p2->takeIdle(0, 1, now);
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->is_open());
  // The retired endpoint is never picked again, and a connection released to it is closed.
  for (int i = 0; i < 4; ++i) EXPECT_NE(p.p1->pick(0, 0, now), std::optional<std::size_t>(1));
  Pair c;
  UpstreamPool::acquired(*p.p1->endpoint(0, 1));
  UpstreamPool::release(*p.p1->endpoint(0, 1), &c.client, 64, now);
  EXPECT_TRUE(p.p1->endpoint(0, 1)->idle.empty());
}

TEST(UpstreamPool, ARenamedClusterStartsAfresh) {
  Pools p;
  p.first(R"({"up":{"endpoints":["127.0.0.1:9001"]}})");
  UpstreamPool::acquired(*p.p1->endpoint(0, 0));
  p.change(R"({"up":{"endpoints":["127.0.0.1:9002"]},"other":{"endpoints":["127.0.0.1:9001"]}})");
  EXPECT_NE(p.p2->endpoint(1, 0), p.p1->endpoint(0, 0));
  EXPECT_EQ(p.p2->endpoint(1, 0)->busy, 0u);
  EXPECT_TRUE(p.p1->endpoint(0, 0)->retired);
}

TEST(UpstreamPool, IdleConnectionWithStrayBytesOrEofIsNeverReused) {
  Pools p;
  p.first(R"({"up":{"endpoints":["127.0.0.1:9001"]}})");
  auto now = UpstreamPool::Clock::now();
  auto& ep = *p.p1->endpoint(0, 0);
  Pair stray, eof, good;
  for (auto* pair : {&good, &eof, &stray}) {
    UpstreamPool::acquired(ep);
    UpstreamPool::release(ep, &pair->client, 64, now);
  }
  boost::asio::write(stray.server, boost::asio::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY")));
  eof.server.close();
  std::this_thread::sleep_for(20ms);  // let loopback deliver the bytes and the FIN
  auto s = p.p1->takeIdle(0, 0, now);  // fresh (idle for 0 s) and still checked
  ASSERT_TRUE(s);
  EXPECT_EQ(s->socket().remote_endpoint().port(), good.server.local_endpoint().port());
  EXPECT_EQ(s->socket().local_endpoint().port(), good.server.remote_endpoint().port());
  EXPECT_FALSE(p.p1->takeIdle(0, 0, now));
  EXPECT_EQ(read(p.m1->cluster("up")->idle), 0);
}

}  // namespace
}  // namespace fledge::proxy
