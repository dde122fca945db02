// HttpServer over TLS, in process: the handshake, the request loop on a kept-alive connection,
// certificates reloaded for new connections only, and what a plain-HTTP client gets.
#include "admin/http_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <openssl/x509.h>

#include <filesystem>
#include <thread>

#include "proxy/tls.hpp"
#include "tests/integration/tls_certs.hpp"

namespace fledge::admin {
namespace {
namespace asio = boost::asio;
namespace ssl = asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using test::CertFiles;

// A blocking HTTPS client that trusts `ca_file` and checks the name "localhost".
class TlsClient {
 public:
  TlsClient(std::uint16_t port, const std::string& ca_file) : ctx_(context(ca_file)) {
    stream_.set_verify_callback(ssl::host_name_verification("localhost"));
    SSL_set_tlsext_host_name(stream_.native_handle(), "localhost");
    stream_.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    stream_.handshake(ssl::stream_base::client);
  }
  Response get(const std::string& target) { return request(http::verb::get, target, ""); }
  Response request(http::verb method, const std::string& target, std::string body) {
    Request req{method, target, 11};
    req.set(http::field::host, "localhost");
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(stream_, req);
    Response res;
    http::read(stream_, buffer_, res);
    return res;
  }
  // After the server closed: the error of the next read (eof when it sent close_notify).
  boost::system::error_code readError() {
    char buf[64];
    boost::system::error_code ec;
    stream_.read_some(asio::buffer(buf), ec);
    return ec;
  }
  // The common name of the certificate the server presented.
  std::string peerName() {
    X509* cert = SSL_get1_peer_certificate(stream_.native_handle());
    if (!cert) return {};
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }

 private:
  static ssl::context context(const std::string& ca_file) {
    ssl::context ctx(ssl::context::tls_client);
    ctx.load_verify_file(ca_file);
    ctx.set_verify_mode(ssl::verify_peer);
    return ctx;
  }
  asio::io_context ioc_;
  ssl::context ctx_;
  ssl::stream<tcp::socket> stream_{ioc_, ctx_};
  boost::beast::flat_buffer buffer_;
};

HttpServerOptions smallBodies() {
  HttpServerOptions o;
  o.max_body_bytes = 64 * 1024;
  return o;
}

struct HttpServerTls : ::testing::Test {
  test::TempDir dir;
  CertFiles ca = test::makeCa(dir.path(), "ca");
  CertFiles first = test::makeCert(ca, dir.path(), "first");
  std::shared_ptr<proxy::ReloadableServerTls> tls;
  HttpServer server{smallBodies()};
  std::uint16_t port = 0;

  void SetUp() override {
    proxy::TlsServerConfig cfg;
    cfg.certificates.push_back({first.cert_file, first.key_file});
    std::string err;
    tls = proxy::ReloadableServerTls::create("admin", cfg, err);
    ASSERT_TRUE(tls) << err;
    server.handle(http::verb::get, "/healthz", [](const Request& req) { return HttpServer::text(req, http::status::ok, "ok"); });
    server.handle(http::verb::post, "/size", [](const Request& req) {
      return HttpServer::text(req, http::status::ok, std::to_string(req.body().size()));
    });
    server.setTls(tls);
    boost::system::error_code ec;
    port = server.listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), ec).port();
    ASSERT_FALSE(ec) << ec.message();
    server.start();
  }
};

TEST_F(HttpServerTls, ServesRequestsOnAKeptAliveConnection) {
  TlsClient c(port, ca.cert_file);
  for (int i = 0; i < 3; ++i) {
    auto res = c.get("/healthz");
    EXPECT_EQ(res.result_int(), 200);
    EXPECT_EQ(res.body(), "ok\n");
  }
  EXPECT_EQ(c.get("/nope").result_int(), 404);
  EXPECT_EQ(server.tlsHandshakes(), 1u);
  EXPECT_EQ(server.tlsHandshakeFailures(), 0u);
}

// A refused body: the answer arrives whole, then close_notify (not a reset).
TEST_F(HttpServerTls, TooLargeBodyIsRefusedAndTheConnectionClosedCleanly) {
  TlsClient c(port, ca.cert_file);
  auto ok = c.request(http::verb::post, "/size", std::string(1000, 'x'));
  EXPECT_EQ(ok.result_int(), 200);
  EXPECT_EQ(ok.body(), "1000\n");
  auto res = c.request(http::verb::post, "/size", std::string(1 << 20, 'x'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(c.readError(), asio::error::eof);
}

TEST_F(HttpServerTls, PlainHttpGetsNoAnswerAndCountsAFailedHandshake) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(s, asio::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")));
  std::string got;
  char buf[1024];
  boost::system::error_code ec;
  while (!ec) got.append(buf, s.read_some(asio::buffer(buf), ec));
  EXPECT_EQ(got.find("HTTP/1.1"), std::string::npos) << got;  // at most a TLS alert, then close
  for (int i = 0; i < 200 && server.tlsHandshakeFailures() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server.tlsHandshakeFailures(), 1u);
  // The listener still serves TLS clients.
  TlsClient c(port, ca.cert_file);
  EXPECT_EQ(c.get("/healthz").result_int(), 200);
}

TEST_F(HttpServerTls, ClientNotTrustingTheCaFailsAndIsCounted) {
  auto other = test::makeCa(dir.path(), "other-ca");
  EXPECT_THROW(TlsClient(port, other.cert_file), boost::system::system_error);
  for (int i = 0; i < 200 && server.tlsHandshakeFailures() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(server.tlsHandshakeFailures(), 1u);
}

// A reload applies to connections accepted afterwards; one already open keeps its certificate.
TEST_F(HttpServerTls, ReloadedCertificateServesNewConnections) {
  TlsClient before(port, ca.cert_file);
  EXPECT_EQ(before.peerName(), "first");
  auto second = test::makeCert(ca, dir.path(), "second");
  std::filesystem::copy_file(second.cert_file, first.cert_file, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(second.key_file, first.key_file, std::filesystem::copy_options::overwrite_existing);
  std::string err;
  ASSERT_TRUE(tls->reload(err)) << err;
  TlsClient after(port, ca.cert_file);
  EXPECT_EQ(after.peerName(), "second");
  EXPECT_EQ(after.get("/healthz").result_int(), 200);
  EXPECT_EQ(before.get("/healthz").result_int(), 200);
}

}  // namespace
}  // namespace fledge::admin
