// End-to-end tests: the real fledge binary between a real client socket and real upstreams.
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <future>
#include <map>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

std::string oneRoute(const std::string& cluster_name) {
  return R"([{"name":"all","match":{"path_prefix":"/"},"cluster":")" + cluster_name + "\"}]";
}

// A config with a single cluster "up" of the given endpoints and a catch-all route.
std::string simple(const std::vector<std::string>& endpoints, const std::string& extra = "",
                   const std::string& cluster_extra = "") {
  return config("{" + cluster("up", endpoints, cluster_extra) + "}", oneRoute("up"), extra);
}

std::uint64_t requestsTotal(std::uint16_t port) {
  auto res = get(port, "/count");
  return std::stoull(echoField(res.body(), "requests_total"));
}

// An upstream that accepts connections and closes them at once (or after reading a request).
class ClosingUpstream {
 public:
  ClosingUpstream() : acceptor_(ioc_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] {
      while (!stop_) {
        boost::system::error_code ec;
        tcp::socket s(ioc_);
        acceptor_.accept(s, ec);
        if (ec || stop_) return;
        char buf[4096];
        s.read_some(boost::asio::buffer(buf), ec);  // take the request, answer nothing
        s.set_option(boost::asio::socket_base::linger(true, 0), ec);
        s.close(ec);  // RST
      }
    });
  }
  ~ClosingUpstream() {
    stop_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    // Unblock accept() with a throwaway connection.
    try {
      tcp::socket s(ioc_);
      s.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port_), ec);
    } catch (...) {
    }
    thread_.join();
  }
  std::uint16_t port() const { return port_; }

 private:
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// ------------------------------------------------------------------------------------------------

TEST(CheckConfig, ShippedExamplesAreValid) {
  int checked = 0;
  for (const auto& entry : std::filesystem::directory_iterator(sourceDir() + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    if (entry.path().filename() == "flags.json") continue;  // fledge.example.json's flag file (loaded with it), not a config
    Process p({fledgeBinary(), "--check-config", entry.path().string()});
    EXPECT_EQ(p.wait(), 0) << entry.path() << "\n" << p.log();
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

TEST(CheckConfig, PrintsEveryProblemAndExits2) {
  auto path = writeTempFile(R"({"listeners":[{"address":"127.0.0.1:80"}],"clusters":{"c":{"endpoints":["x:1"]}},
    "routes":[{"name":"a","cluster":"c"},{"name":"b","match":{"path_prefix":"nope"},"cluster":"zzz"}],"bogus":1})");
  Process p({fledgeBinary(), "--check-config", path});
  EXPECT_EQ(p.wait(), 2);
  auto log = p.log();
  EXPECT_NE(log.find("routes[1].match.path_prefix: must start with \"/\""), std::string::npos) << log;
  EXPECT_NE(log.find("routes[1].cluster: unknown cluster \"zzz\""), std::string::npos) << log;
  EXPECT_NE(log.find("bogus: unknown field"), std::string::npos) << log;
  std::filesystem::remove(path);
}

TEST(Proxy, RefusesToStartOnBadConfig) {
  auto path = writeTempFile(R"({"listeners":[{"address":"127.0.0.1:0"}],"routes":[{"name":"a","cluster":"nope"}]})");
  Process p({fledgeBinary(), "--config", path});
  EXPECT_EQ(p.wait(), 2);
  EXPECT_NE(p.log().find("\"field\":\"routes[0].cluster\""), std::string::npos) << p.log();
  std::filesystem::remove(path);
}

TEST(Admin, HealthAndReadiness) {
  EchoUpstream up("stable");
  Fledge f(simple({up.address()}));
  auto h = get(f.adminPort(), "/healthz");
  EXPECT_EQ(h.result_int(), 200);
  auto r = get(f.adminPort(), "/readyz");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(get(f.adminPort(), "/nope").result_int(), 404);
}

TEST(Proxy, RoutesByHostAndPath) {
  EchoUpstream a("a"), b("b"), c("c");
  Fledge f(config("{" + cluster("a", {a.address()}) + "," + cluster("b", {b.address()}) + "," +
                      cluster("c", {c.address()}) + "}",
                  R"([{"name":"api-host","match":{"host":"api.test","path_prefix":"/v2"},"cluster":"b"},
                      {"name":"wild","match":{"host":"*.shop.test"},"cluster":"c"},
                      {"name":"api","match":{"path_prefix":"/api"},"cluster":"a"}])"));
  auto name = [&](const std::string& host, const std::string& path) {
    auto res = get(f.port(), path, {{"Host", host}});
    return res.result_int() == 200 ? echoField(res.body(), "name") : std::to_string(res.result_int());
  };
  EXPECT_EQ(name("api.test", "/v2/users"), "b");
  EXPECT_EQ(name("API.TEST:8080", "/v2"), "b");
  EXPECT_EQ(name("api.test", "/api/x"), "a");
  EXPECT_EQ(name("eu.shop.test", "/anything"), "c");
  EXPECT_EQ(name("other.test", "/api"), "a");
  EXPECT_EQ(name("other.test", "/"), "404");
}

TEST(Proxy, AddsForwardingHeadersAndStripsHopByHop) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  Client c(f.port());
  auto res = c.request(http::verb::get, "/h",
                       {{"Connection", "keep-alive, X-Drop-Me"},
                        {"X-Drop-Me", "1"},
                        {"Keep-Alive", "timeout=5"},
                        {"TE", "trailers"},
                        {"Proxy-Authorization", "Basic abc"},
                        {"Upgrade", "h2c"},
                        {"X-Forwarded-For", "203.0.113.7"},
                        {"X-Keep", "kept"},
                        {"Host", "test.local"}});
  ASSERT_EQ(res.result_int(), 200);
  const auto& body = res.body();
  for (auto h : {"X-Drop-Me", "Keep-Alive", "TE", "Proxy-Authorization", "Upgrade"})
    EXPECT_FALSE(echoHeader(body, h).has_value()) << h;
  EXPECT_EQ(echoHeader(body, "X-Keep"), "kept");
  EXPECT_EQ(echoHeader(body, "X-Forwarded-For"), "203.0.113.7, 127.0.0.1");
  EXPECT_EQ(echoHeader(body, "X-Forwarded-Proto"), "http");
  EXPECT_EQ(echoHeader(body, "X-Forwarded-Host"), "test.local");
  EXPECT_EQ(echoHeader(body, "Via"), "1.1 fledge");
  auto rid = echoHeader(body, "X-Request-Id");
  ASSERT_TRUE(rid.has_value());
  EXPECT_EQ(rid->size(), 32u);
  // A second request gets a different id; a client-supplied id is passed on unchanged.
  auto res2 = c.request(http::verb::get, "/h");
  EXPECT_NE(echoHeader(res2.body(), "X-Request-Id"), rid);
  auto res3 = c.request(http::verb::get, "/h", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(echoHeader(res3.body(), "X-Request-Id"), "abc-123");
}

TEST(Proxy, ReusesUpstreamConnections) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}, R"("workers":1)"));
  for (int conn = 0; conn < 5; ++conn) {
    Client c(f.port());
    for (int i = 0; i < 20; ++i) ASSERT_EQ(c.request(http::verb::get, "/r").result_int(), 200);
  }
  auto last = get(f.port(), "/r");
  // 101 requests over 6 client connections, one upstream connection.
  EXPECT_EQ(echoField(last.body(), "connections_accepted"), "1") << last.body();
  EXPECT_EQ(echoField(last.body(), "request_on_connection"), "101") << last.body();
}

TEST(Proxy, StaleKeptAliveConnectionIsRetriedForBodylessRequests) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}, R"("workers":1)"));
  Client c(f.port());
  for (int i = 0; i < 5; ++i) {
    // The upstream silently closes each connection after answering; the next request finds the
    // pooled connection dead and is resent once on a fresh one.
    auto res = c.request(http::verb::get, "/x?hangup=1");
    ASSERT_EQ(res.result_int(), 200) << i;
    EXPECT_EQ(echoField(res.body(), "request_on_connection"), "1");
  }
  // Announced closes are never reused in the first place.
  EXPECT_EQ(c.request(http::verb::get, "/x?close=1").result_int(), 200);
  EXPECT_EQ(c.request(http::verb::get, "/x").result_int(), 200);
}

TEST(Proxy, ChunkedBothWays) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  Client c(f.port());
  c.send("POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto res = c.read();
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(echoField(res.body(), "body_length"), "11");
  EXPECT_EQ(echoField(res.body(), "chunked"), "true");
  EXPECT_EQ(echoHeader(res.body(), "Transfer-Encoding"), "chunked");

  // Chunked response from the upstream stays chunked to an HTTP/1.1 client.
  auto r2 = c.request(http::verb::get, "/x?bytes=100000&chunked=1");
  ASSERT_EQ(r2.result_int(), 200);
  EXPECT_TRUE(r2.chunked());
  EXPECT_EQ(r2.body().size(), 100000u);
  // A close-delimited upstream response is re-framed as chunked; the client connection survives.
  auto r3 = c.request(http::verb::get, "/x?bytes=70000&no_length=1");
  ASSERT_EQ(r3.result_int(), 200);
  EXPECT_TRUE(r3.chunked());
  EXPECT_EQ(r3.body().size(), 70000u);
  EXPECT_EQ(c.request(http::verb::get, "/after").result_int(), 200);
}

TEST(Proxy, PipelinedRequestsAnsweredInOrder) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  Client c(f.port());
  std::string batch;
  for (int i = 1; i <= 5; ++i) {
    // Mix delays so a reordering bug would show.
    batch += "GET /p" + std::to_string(i) + "?delay_ms=" + std::to_string((5 - i) * 20) + " HTTP/1.1\r\nHost: t\r\n\r\n";
  }
  batch += "POST /p6 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /p7 HTTP/1.1\r\nHost: t\r\n\r\n";
  c.send(batch);
  for (int i = 1; i <= 7; ++i) {
    auto res = c.read();
    ASSERT_EQ(res.result_int(), 200);
    EXPECT_EQ(echoField(res.body(), "target").substr(0, 3), "/p" + std::to_string(i));
    if (i == 6) {
      EXPECT_EQ(echoField(res.body(), "body_length"), "3");
    }
  }
}

TEST(Proxy, ConnectionCloseAndHttp10) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  {
    Client c(f.port());
    auto res = c.request(http::verb::get, "/c", {{"Connection", "close"}});
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.closedByPeer());
  }
  {
    // HTTP/1.0 without keep-alive: close-delimited, no chunking even if the upstream chunks.
    Client c(f.port());
    c.send("GET /x?bytes=5000&chunked=1 HTTP/1.0\r\n\r\n");
    std::string all = c.readAll();
    EXPECT_EQ(all.rfind("HTTP/1.0 200", 0), 0u) << all.substr(0, 200);
    EXPECT_EQ(all.find("chunked"), std::string::npos);
    EXPECT_EQ(all.size() - all.find("\r\n\r\n") - 4, 5000u);
  }
  {
    // HTTP/1.0 with keep-alive stays open.
    Client c(f.port());
    c.send("GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto r1 = c.read();
    EXPECT_EQ(r1.result_int(), 200);
    EXPECT_TRUE(r1.keep_alive());
    c.send("GET /k2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    EXPECT_EQ(c.read().result_int(), 200);
  }
}

// A response that ends the connection is written without waiting where the socket takes it,
// its last piece with MSG_MORE so that the FIN rides along; a client that does not read for a
// while must still get every byte, in order, and then EOF (the rest goes out asynchronously).
TEST(Proxy, ClosingResponseReachesASlowReaderWhole) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  for (const char* target : {"/big?bytes=16000000", "/big?bytes=16000000&chunked=1", "/small?bytes=10"}) {
    Client c(f.port());
    c.send(std::string("GET ") + target + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the socket buffers fill
    std::string all = c.readAll();  // to EOF
    ASSERT_EQ(all.rfind("HTTP/1.1 200", 0), 0u) << target;
    const auto body = all.find("\r\n\r\n") + 4;
    const bool chunked = std::string_view(target).find("chunked") != std::string_view::npos;
    const std::size_t want = std::string_view(target).find("16000000") != std::string_view::npos ? 16000000 : 10;
    if (chunked) {
      EXPECT_NE(all.find("Transfer-Encoding: chunked"), std::string::npos);
      EXPECT_EQ(all.substr(all.size() - 5), "0\r\n\r\n") << target;
      EXPECT_GT(all.size() - body, want);
    } else {
      EXPECT_EQ(all.size() - body, want) << target;
    }
  }
}

// A connection is taken before its request arrives (the read after accept finds nothing and the
// socket joins epoll only then); connections that never send anything cost nothing and harm no one.
TEST(Proxy, RequestArrivingLongAfterTheConnectionIsServed) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  {
    Client silent(f.port());  // connects, never sends, closes
  }
  Client c(f.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto res = c.request(http::verb::get, "/late", {});
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_TRUE(res.keep_alive());
  auto again = c.request(http::verb::get, "/late2", {{"Connection", "close"}});
  EXPECT_EQ(again.result_int(), 200);
  EXPECT_TRUE(c.closedByPeer());
}

TEST(Proxy, ExpectContinue) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  Client c(f.port());
  c.send("PUT /e HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  http::response_parser<http::empty_body> interim;
  http::read_header(c.socket(), c.buffer(), interim);
  EXPECT_EQ(interim.get().result_int(), 100);
  c.send("data");
  auto res = c.read();
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(echoField(res.body(), "body_length"), "4");
  EXPECT_FALSE(echoHeader(res.body(), "Expect").has_value());
}

TEST(Proxy, HeadAndBodylessStatuses) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  Client c(f.port());
  auto head = c.request(http::verb::head, "/x?bytes=1234");
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(head[http::field::content_length], "1234");
  EXPECT_TRUE(head.body().empty());
  auto head_chunked = c.request(http::verb::head, "/x?bytes=1234&chunked=1");
  EXPECT_EQ(head_chunked.result_int(), 200);
  auto no_content = c.request(http::verb::get, "/x?status=204");
  EXPECT_EQ(no_content.result_int(), 204);
  auto not_modified = c.request(http::verb::get, "/x?status=304");
  EXPECT_EQ(not_modified.result_int(), 304);
  // The connection is still in sync: a normal request after the bodyless ones works.
  auto after = c.request(http::verb::get, "/after");
  EXPECT_EQ(after.result_int(), 200);
  EXPECT_EQ(echoField(after.body(), "target"), "/after");
}

TEST(Proxy, UpstreamStatusPassesThrough) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  EXPECT_EQ(get(f.port(), "/x?status=503").result_int(), 503);
  EXPECT_EQ(get(f.port(), "/x?status=404").result_int(), 404);
}

TEST(Proxy, LocalReplyAfterProxiedResponseOnOneConnection) {
  // A keep-alive connection alternates proxied answers and Fledge's own (404 no route).
  EchoUpstream up("up");
  Fledge f(config(R"({"up":{"endpoints":[")" + up.address() + R"("]}})",
                  R"([{"name":"a","match":{"path_prefix":"/a"},"cluster":"up"}])"));
  Client c(f.port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.request(http::verb::get, "/a?status=503").result_int(), 503);
    EXPECT_EQ(c.request(http::verb::get, "/nowhere").result_int(), 404);
    EXPECT_EQ(c.request(http::verb::head, "/nowhere").result_int(), 404);  // no body follows a HEAD answer
    EXPECT_EQ(c.request(http::verb::get, "/a").result_int(), 200);
  }
}

TEST(LoadBalancing, RoundRobinAndRefusedEndpointSkipped) {
  EchoUpstream a("a"), b("b");
  const std::string dead = deadAddress();
  Fledge f(simple({a.address(), dead, b.address()}, R"("workers":1)"));
  std::map<std::string, int> seen;
  Client c(f.port());
  for (int i = 0; i < 40; ++i) {
    auto res = c.request(http::verb::get, "/lb");
    ASSERT_EQ(res.result_int(), 200) << "request " << i;  // the refused endpoint is retried elsewhere
    ++seen[echoField(res.body(), "name")];
  }
  EXPECT_EQ(seen["a"], 20);
  EXPECT_EQ(seen["b"], 20);
  EXPECT_NE(f.process().log().find("upstream connect failed"), std::string::npos);
}

TEST(LoadBalancing, LeastRequestAvoidsBusyEndpoint) {
  EchoUpstream a("a"), b("b");
  Fledge f(simple({a.address(), b.address()}, R"("workers":1)", R"("lb":"least_request")"));
  // Hold one request on whichever endpoint it lands on, then send more: they go to the other.
  auto slow = std::async(std::launch::async, [&] { return get(f.port(), "/slow?delay_ms=1500"); });
  std::this_thread::sleep_for(300ms);
  std::map<std::string, int> seen;
  for (int i = 0; i < 10; ++i) ++seen[echoField(get(f.port(), "/fast").body(), "name")];
  auto slow_res = slow.get();
  std::string busy = echoField(slow_res.body(), "name");
  EXPECT_EQ(seen[busy], 0) << "busy endpoint " << busy;
  EXPECT_EQ(seen[busy == "a" ? "b" : "a"], 10);
}

TEST(Errors, MalformedRequestIs400AndCloses) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  for (std::string bad : {"GARBAGE\r\n\r\n", "GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
                          "GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n", "GET / HTTP/1.1\r\n\r\n",
                          "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"}) {
    Client c(f.port());
    c.send(bad);
    auto res = c.read();
    EXPECT_EQ(res.result_int(), 400) << bad;
    EXPECT_FALSE(res.keep_alive());
    EXPECT_TRUE(c.closedByPeer()) << bad;
  }
}

TEST(Errors, SmugglingShapesRejectedAndNeverForwarded) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}));
  const std::uint64_t before = requestsTotal(f.port());
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
  std::vector<std::string> shapes = {
      "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd" + smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: 4, 5\r\n\r\nabcd" + smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n" + smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n" + smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
          smuggled,
      "POST /s HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n" + smuggled,
  };
  for (const auto& shape : shapes) {
    Client c(f.port());
    c.send(shape);
    auto res = c.read();
    EXPECT_EQ(res.result_int(), 400) << shape;
    EXPECT_TRUE(c.closedByPeer()) << shape;
  }
  // Invalid chunk size: 400 (or a reset if bytes already went upstream), and the request is never
  // completed upstream.
  EXPECT_EQ(requestsTotal(f.port()), before + 1) << "a smuggled request reached the upstream";
}

TEST(Errors, LimitsGive413_414_431) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}, R"("limits":{"max_body_bytes":1000,"max_request_line":512,"max_header_bytes":4096,"max_headers":20})"));
  {
    Client c(f.port());
    c.send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    EXPECT_EQ(c.read().result_int(), 413);
    EXPECT_TRUE(c.closedByPeer());
  }
  {
    Client c(f.port());
    std::string body(2000, 'x');
    c.send("POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + body + "\r\n0\r\n\r\n");
    EXPECT_EQ(c.read().result_int(), 413);
  }
  {
    Client c(f.port());
    c.send("GET /" + std::string(600, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n");
    EXPECT_EQ(c.read().result_int(), 414);
  }
  {
    Client c(f.port());
    c.send("GET /" + std::string(3000, 'a'));  // no line end yet: already too long
    EXPECT_EQ(c.read().result_int(), 414);
  }
  {
    Client c(f.port());
    std::string req = "GET / HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 30; ++i) req += "X-H" + std::to_string(i) + ": v\r\n";
    c.send(req + "\r\n");
    EXPECT_EQ(c.read().result_int(), 431);
  }
  {
    Client c(f.port());
    c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(5000, 'b') + "\r\n\r\n");
    EXPECT_EQ(c.read().result_int(), 431);
  }
  // Within limits still works.
  Client c(f.port());
  EXPECT_EQ(c.request(http::verb::post, "/ok", {}, std::string(1000, 'y')).result_int(), 200);
}

TEST(Errors, HeaderTimeoutIs408AndIdleKeepAliveCloses) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}, R"("timeouts":{"header_read_ms":300,"idle_ms":400})"));
  {
    Client c(f.port());
    c.send("GET / HTTP/1.1\r\nHost: t\r\n");  // never finished: slowloris
    auto start = std::chrono::steady_clock::now();
    auto res = c.read();
    EXPECT_EQ(res.result_int(), 408);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    EXPECT_TRUE(c.closedByPeer());
  }
  {
    // Trickling bytes does not extend the header deadline.
    Client c(f.port());
    c.send("GET / HTTP/1.1\r\n");
    for (int i = 0; i < 6; ++i) {
      std::this_thread::sleep_for(100ms);
      boost::system::error_code ec;
      boost::asio::write(c.socket(), boost::asio::buffer(std::string("X-A: b\r\n")), ec);
    }
    EXPECT_EQ(c.read().result_int(), 408);
  }
  {
    Client c(f.port());
    EXPECT_EQ(c.request(http::verb::get, "/").result_int(), 200);
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.closedByPeer());  // closed silently after idle_ms
    EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  }
}

TEST(Errors, Upstream502_503_504) {
  ClosingUpstream closing;
  EchoUpstream slow("slow");
  const std::string dead = deadAddress();
  Fledge f(config("{" + cluster("dead", {dead}, R"("eject_ms":60000)") + "," +
                      cluster("reset", {"127.0.0.1:" + std::to_string(closing.port())}) + "," +
                      cluster("slow", {slow.address()}) + "}",
                  R"([{"name":"d","match":{"path_prefix":"/dead"},"cluster":"dead"},
                      {"name":"r","match":{"path_prefix":"/reset"},"cluster":"reset"},
                      {"name":"s","match":{"path_prefix":"/slow"},"cluster":"slow"}])",
                  R"("workers":1,"timeouts":{"upstream_response_ms":300})"));
  EXPECT_EQ(get(f.port(), "/dead").result_int(), 502);  // refused
  EXPECT_EQ(get(f.port(), "/dead").result_int(), 503);  // endpoint ejected: no healthy upstream
  EXPECT_EQ(get(f.port(), "/reset").result_int(), 502);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(get(f.port(), "/slow?delay_ms=2000").result_int(), 504);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(get(f.port(), "/slow?delay_ms=10").result_int(), 200);
  auto log = f.process().log();
  EXPECT_NE(log.find("upstream failed"), std::string::npos);
  EXPECT_NE(log.find("upstream response timeout"), std::string::npos);
}

TEST(Drain, SigtermFinishesInFlightRequestThenExits0) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}, R"("timeouts":{"drain_ms":5000})"));
  Client idle(f.port());
  EXPECT_EQ(idle.request(http::verb::get, "/warm").result_int(), 200);
  auto inflight = std::async(std::launch::async, [&] {
    Client c(f.port());
    return c.request(http::verb::get, "/slow?delay_ms=800");
  });
  std::this_thread::sleep_for(200ms);
  f.process().signal(SIGTERM);
  EXPECT_TRUE(idle.closedByPeer());  // idle keep-alive connections close at once
  auto res = inflight.get();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(f.process().wait(5s), 0);
  auto log = f.process().log();
  EXPECT_NE(log.find("\"msg\":\"draining\""), std::string::npos);
  EXPECT_NE(log.find("\"msg\":\"stopped\",\"clean\":\"true\""), std::string::npos) << log;
}

TEST(Drain, DrainTimeLimitIsEnforced) {
  EchoUpstream up("up");
  Fledge f(simple({up.address()}, R"("timeouts":{"drain_ms":300})"));
  auto inflight = std::async(std::launch::async, [&] {
    Client c(f.port());
    boost::system::error_code ec;
    c.send("GET /slow?delay_ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    return c.closedByPeer();
  });
  std::this_thread::sleep_for(200ms);
  auto start = std::chrono::steady_clock::now();
  f.process().signal(SIGINT);
  EXPECT_EQ(f.process().wait(5s), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_TRUE(inflight.get());
}

}  // namespace
}  // namespace fledge::test
