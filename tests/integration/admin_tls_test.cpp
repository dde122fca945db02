// The admin and OFREP listeners over HTTPS: the real binary with "tls" blocks, certificates made
// at test time, and curl as the client (it trusts only the test CA it is given).
#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include <sys/wait.h>

#include "tests/integration/harness.hpp"
#include "tests/integration/tls_certs.hpp"

namespace fledge::test {
namespace {

std::string https(std::uint16_t port, const std::string& target) { return "'https://127.0.0.1:" + std::to_string(port) + target + "'"; }

// Fledge with HTTPS on the admin (EC certificate) and OFREP (RSA certificate) listeners.
struct TlsStack {
  TempDir dir;
  CertFiles ca = makeCa(dir.path(), "ca");
  CertFiles admin_cert = makeCert(ca, dir.path(), "admin", {"DNS:localhost", "IP:127.0.0.1"}, "ec");
  CertFiles ofrep_cert = makeCert(ca, dir.path(), "ofrep", {"DNS:localhost", "IP:127.0.0.1"}, "rsa");
  Fledge f;
  explicit TlsStack(const std::string& admin_tls_extra = "")
      : f(config("{}", "[]",
                 R"("flag_files":[")" + sourceDir() + R"(/tests/node/ofrep_flags.json"],)" +
                     R"("admin":{"listen":"127.0.0.1:0","tls":)" + serverTlsJson(admin_cert, admin_tls_extra) + "}," +
                     R"("ofrep":{"listen":"127.0.0.1:0","tls":)" + serverTlsJson(ofrep_cert) + "}")) {}
  std::string cacert() const { return "--cacert '" + ca.cert_file + "' "; }
};

TEST(AdminTls, HealthzOverHttpsOnAKeptAliveConnection) {
  TlsStack s;
  const auto port = s.f.adminPort();
  // By address (the IP subjectAltName) and by name; two requests on one connection.
  auto r = curl(s.cacert() + https(port, "/healthz") + " " + https(port, "/readyz"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200 200") << r.output;
  EXPECT_NE(r.output.find("ok\n"), std::string::npos) << r.output;
  EXPECT_EQ(r.connects, "1 0") << "the second request opened a new connection: " << r.output;
  const std::string p = std::to_string(port);
  r = curl(s.cacert() + "--resolve localhost:" + p + ":127.0.0.1 https://localhost:" + p + "/healthz");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200") << r.output;
  // Handshakes are not worth a log line at the default level.
  EXPECT_EQ(s.f.process().log().find("handshake"), std::string::npos) << s.f.process().log();
}

TEST(AdminTls, OfrepEvaluationOverHttps) {
  TlsStack s;
  auto r = curl(s.cacert() + "-X POST -H 'Content-Type: application/json' "
                             "-d '{\"context\":{\"targetingKey\":\"u1\",\"plan\":\"pro\"}}' " +
                https(s.f.ofrepPort(), "/ofrep/v1/evaluate/flags/bool-flag"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200") << r.output;
  EXPECT_NE(r.output.find(R"("value":true)"), std::string::npos) << r.output;
}

TEST(AdminTls, PlainHttpToTheHttpsPortGetsNoAnswer) {
  TlsStack s;
  for (auto port : {s.f.adminPort(), s.f.ofrepPort()}) {
    auto r = curl("'http://127.0.0.1:" + std::to_string(port) + "/healthz'");
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.status, "000") << r.output;
  }
  // The listener is still there for HTTPS clients.
  auto r = curl(s.cacert() + https(s.f.adminPort(), "/healthz"));
  EXPECT_EQ(r.status, "200") << r.output;
}

TEST(AdminTls, ClientThatDoesNotTrustTheCaFails) {
  TlsStack s;
  auto other = makeCa(s.dir.path(), "other-ca");
  for (auto port : {s.f.adminPort(), s.f.ofrepPort()}) {
    auto r = curl("--cacert '" + other.cert_file + "' " + https(port, "/healthz"));
    EXPECT_EQ(r.exit_code, 60) << r.output;  // CURLE_PEER_FAILED_VERIFICATION
    EXPECT_EQ(r.status, "000") << r.output;
    r = curl(https(port, "/healthz"));  // the system's trust store does not know the test CA either
    EXPECT_EQ(r.exit_code, 60) << r.output;
  }
  auto r = curl(s.cacert() + https(s.f.adminPort(), "/healthz"));
  EXPECT_EQ(r.status, "200") << r.output;
}

TEST(AdminTls, ClientCertificateRequired) {
  TempDir clients;
  auto client_ca = makeCa(clients.path(), "client-ca");
  auto alice = makeClientCert(client_ca, clients.path(), "alice");
  auto mallory = makeClientCert(makeCa(clients.path(), "rogue-ca"), clients.path(), "mallory");
  TlsStack s(R"(,"client_ca_file":")" + client_ca.cert_file + R"(","require_client_cert":true)");
  const auto target = https(s.f.adminPort(), "/healthz");
  auto r = curl(s.cacert() + target);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "000") << r.output;
  r = curl(s.cacert() + "--cert '" + mallory.cert_file + "' --key '" + mallory.key_file + "' " + target);
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "000") << r.output;
  r = curl(s.cacert() + "--cert '" + alice.cert_file + "' --key '" + alice.key_file + "' " + target);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200") << r.output;
}

// The certificates in use and their reloads, on /metrics (itself served over HTTPS).
TEST(AdminTls, CertificateMetrics) {
  TlsStack s;
  auto r = curl(s.cacert() + https(s.f.adminPort(), "/metrics"));
  ASSERT_EQ(r.status, "200") << r.output;
  const double now = static_cast<double>(std::time(nullptr));
  for (const auto& [listener, cert] : {std::pair{"admin", &s.admin_cert}, std::pair{"ofrep", &s.ofrep_cert}}) {
    const double expiry = metricSample(r.output, std::string(R"(fledge_tls_certificate_expiry_timestamp_seconds{listener=")") + listener +
                                                     R"(",file=")" + cert->cert_file + R"(",name="localhost"})");
    EXPECT_GT(expiry, now + 29 * 86400.0) << listener << "\n" << r.output;  // made for 30 days
    EXPECT_LT(expiry, now + 31 * 86400.0) << listener << "\n" << r.output;
  }
  EXPECT_EQ(metricSample(r.output, R"(fledge_tls_certificate_reloads_total{result="ok"})"), 0) << r.output;
  EXPECT_EQ(metricSample(r.output, R"(fledge_tls_certificate_reloads_total{result="failed"})"), 0) << r.output;
}

}  // namespace
}  // namespace fledge::test
