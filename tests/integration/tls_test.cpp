// HTTPS on the proxy's listeners and TLS to upstreams, end to end: the real binary, a throw-away
// CA and certificates made with `openssl` at test time, and real clients (curl, openssl s_client,
// wrk) that trust only the test CA. Upstream TLS runs against a second Fledge that terminates TLS
// in front of an echo upstream.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/harness.hpp"
#include "tests/integration/tls_certs.hpp"

namespace fledge::test {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Clients and helpers

std::string quote(const std::string& s) { return tls_certs_detail::quote(s); }

std::string url(std::uint16_t port, const std::string& target = "/", const std::string& host = "127.0.0.1") {
  return quote("https://" + host + ":" + std::to_string(port) + target);
}
std::string cacert(const CertFiles& ca) { return "--cacert " + quote(ca.cert_file) + " "; }
std::string clientCert(const CertFiles& c) { return "--cert " + quote(c.cert_file) + " --key " + quote(c.key_file) + " "; }
// curl connects to 127.0.0.1 for `host` (so SNI and the name verified are `host`).
std::string resolve(const std::string& host, std::uint16_t port) {
  return "--resolve " + quote(host + ":" + std::to_string(port) + ":127.0.0.1") + " ";
}

// A certificate's identity: its common name and serial number (hex).
struct CertId {
  std::string cn, serial;
  bool operator==(const CertId&) const = default;
};
std::ostream& operator<<(std::ostream& os, const CertId& c) { return os << "CN=" << c.cn << " serial=" << c.serial; }

// The first PEM certificate in `text`, or an empty id.
CertId certIdOf(const std::string& text) {
  const auto begin = text.find("-----BEGIN CERTIFICATE-----");
  if (begin == std::string::npos) return {};
  BIO* bio = BIO_new_mem_buf(text.data() + begin, static_cast<int>(text.size() - begin));
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!x) return {};
  CertId id;
  char cn[256] = {};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) > 0) id.cn = cn;
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(x), nullptr);
  char* hex = BN_bn2hex(bn);
  id.serial = hex;
  OPENSSL_free(hex);
  BN_free(bn);
  X509_free(x);
  return id;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

CertId certIdOfFile(const std::string& path) { return certIdOf(readFile(path)); }

// One `openssl s_client` connection to 127.0.0.1:port with `options`. Without `input` it closes
// right after the handshake; with it, it sends `input` (printf escapes) and reads until the
// server closes.
struct Handshake {
  int exit_code = -1;
  std::string output;
  CertId peer;           // the certificate the server presented
  std::string protocol;  // "TLSv1.3", ...
  bool reused = false;   // a resumed session
  bool verified = false;  // "Verify return code: 0 (ok)"
};

Handshake sClient(std::uint16_t port, const std::string& options, const std::string& input = "") {
  std::string cmd = "timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " " + options;
  cmd = input.empty() ? cmd + " </dev/null" : "printf " + quote(input) + " | " + cmd + " -ign_eof";
  Handshake h;
  const ShellResult run = sh(cmd);
  h.exit_code = run.exit_code;
  h.output = run.output;
  h.peer = certIdOf(h.output);
  for (const char* kind : {"New, ", "Reused, "}) {
    const auto at = h.output.find(std::string("\n") + kind);
    if (at == std::string::npos) continue;
    h.reused = kind[0] == 'R';
    const auto start = at + 1 + std::string(kind).size();
    h.protocol = h.output.substr(start, h.output.find(',', start) - start);
  }
  h.verified = h.output.find("Verify return code: 0 (ok)") != std::string::npos;
  return h;
}

std::string sni(const std::string& name) { return "-servername " + quote(name) + " "; }
std::string trust(const CertFiles& ca) { return "-CAfile " + quote(ca.cert_file) + " -verify_return_error "; }

const std::string kCloseRequest = "GET /resume HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n";

// Polls `done` every 50 ms until it holds or `timeout` passes; returns its last value.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 8s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// The port of the listener called `name`, from its "listening" log line.
std::uint16_t listenerPort(const Process& p, const std::string& name) {
  std::istringstream in(p.log());
  for (std::string line; std::getline(in, line);) {
    if (line.find(R"("msg":"listening")") == std::string::npos || line.find(R"("listener":")" + name + "\"") == std::string::npos) continue;
    const auto addr = line.find(R"("address":")");
    const auto end = line.find('"', addr + 11);
    const auto colon = line.rfind(':', end);
    return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1, end - colon - 1)));
  }
  return 0;
}

// Every log line containing `needle`.
std::vector<std::string> logLines(const Process& p, const std::string& needle) {
  std::vector<std::string> out;
  std::istringstream in(p.log());
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) out.push_back(line);
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

double metric(std::uint16_t admin_port, const std::string& series) { return metricSample(get(admin_port, "/metrics").body(), series); }

const std::string kHandshakesOk = R"(fledge_tls_handshakes_total{result="ok"})";
const std::string kHandshakesFailed = R"(fledge_tls_handshakes_total{result="failed"})";
const std::string kReloadsOk = R"(fledge_tls_certificate_reloads_total{result="ok"})";
const std::string kReloadsFailed = R"(fledge_tls_certificate_reloads_total{result="failed"})";
const std::string kReloadFailedLog = "TLS certificate reload failed; the previous certificates stay in use";

// ---------------------------------------------------------------------------------------------
// Configurations

// A "tls" block listing `certs` (the first is the default), with `extra` members appended.
std::string tlsBlock(const std::vector<CertFiles>& certs, const std::string& extra = "") {
  std::string s = R"({"certificates":[)";
  for (std::size_t i = 0; i < certs.size(); ++i)
    s += std::string(i ? "," : "") + R"({"cert_file":")" + certs[i].cert_file + R"(","key_file":")" + certs[i].key_file + "\"}";
  return s + "]" + extra + "}";
}

std::string listener(const std::string& name, const std::string& more = "", const std::string& address = "127.0.0.1:0") {
  return R"({"name":")" + name + R"(","address":")" + address + "\"" + (more.empty() ? "" : "," + more) + "}";
}
std::string httpsListener(const std::string& name, const std::string& tls, const std::string& address = "127.0.0.1:0") {
  return listener(name, R"("tls":)" + tls, address);
}

const std::string kRouteAll = R"([{"name":"all","match":{"path_prefix":"/"},"cluster":"echo"}])";

// A whole config: `listeners` (comma-separated objects), cluster "echo" at `echo` and more
// (`clusters_extra`: ",NAME:{...}..."), `routes` (default: everything to "echo"), admin on a free
// port (unless `extra` has one), no OFREP, and `extra` top-level members.
std::string proxyConfig(const std::string& listeners, const std::string& echo, int workers = 2, const std::string& clusters_extra = "",
                        const std::string& routes = kRouteAll, const std::string& extra = "") {
  const std::string admin = extra.find("\"admin\"") == std::string::npos ? R"("admin":{"listen":"127.0.0.1:0"},)" : "";
  return R"({"listeners":[)" + listeners + R"(],"workers":)" + std::to_string(workers) + "," + admin +
         R"("ofrep":{"enabled":false},"clusters":{"echo":{"endpoints":[")" + echo + "\"]}" + clusters_extra + R"(},"routes":)" + routes +
         (extra.empty() ? "" : "," + extra) + "}";
}

// Files that replace a listener's certificate by rename(2), as deployment tools do.
void installFile(const std::string& from, const std::string& to) {
  fs::copy_file(from, to + ".new", fs::copy_options::overwrite_existing);
  fs::rename(to + ".new", to);
}

void writeFileAtomically(const std::string& path, const std::string& content) {
  tls_certs_detail::writeFile(path + ".new", content);
  fs::rename(path + ".new", path);
}

// A certificate with its private key, and a listener serving `live` copies of them.
CertFiles liveCopy(const CertFiles& from, const std::string& dir, const std::string& name) {
  CertFiles live{dir + "/" + name + ".crt", dir + "/" + name + ".key"};
  fs::copy_file(from.cert_file, live.cert_file);
  fs::copy_file(from.key_file, live.key_file);
  return live;
}

// An HTTPS listener ("https", certificate `certs`) and a plain one ("http") in front of an echo
// upstream.
struct TlsProxy {
  EchoUpstream echo{"echo"};
  std::unique_ptr<Fledge> f;
  std::uint16_t https = 0, http = 0;

  explicit TlsProxy(const std::string& tls, int workers = 2)
      : f(std::make_unique<Fledge>(proxyConfig(httpsListener("https", tls) + "," + listener("http"), echo.address(), workers))) {
    https = listenerPort(f->process(), "https");
    http = listenerPort(f->process(), "http");
    if (!https || !http) throw std::runtime_error("no listener ports in: " + f->process().log());
  }
  Process& process() { return f->process(); }
  std::uint16_t admin() const { return f->adminPort(); }
};

// ---------------------------------------------------------------------------------------------
// HTTPS listener basics

// Certificate paths relative to the config file's directory (the harness writes configs to /tmp).
TEST(TlsListener, CurlTrustingTheCaGets200) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto cert = makeCert(ca, dir.path(), "server");
  const CertFiles relative{fs::relative(cert.cert_file, "/tmp").string(), fs::relative(cert.key_file, "/tmp").string()};
  ASSERT_NE(relative.cert_file.front(), '/') << relative.cert_file;  // "fledge-tls-XXXXXX/server.crt"
  TlsProxy p(tlsBlock({relative}));

  // Two requests on one kept-alive connection, over HTTP/1.1 (Fledge's ALPN picks http/1.1).
  auto r = curl(cacert(ca) + url(p.https, "/hello?x=1") + " " + url(p.https, "/again"), "HTTP_VERSION=%{http_version};");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200 200") << r.output;
  EXPECT_EQ(r.connects, "1 0") << "the second request opened a new connection: " << r.output;
  EXPECT_EQ(echoField(r.body, "target"), "/hello?x=1") << r.output;
  EXPECT_NE(r.output.find("HTTP_VERSION=1.1;"), std::string::npos) << r.output;
  // By name too (DNS:localhost), with the certificate the client saw.
  r = curl(cacert(ca) + resolve("localhost", p.https) + url(p.https, "/", "localhost"));
  EXPECT_EQ(r.status, "200") << r.output;
  const auto h = sClient(p.https, trust(ca) + sni("localhost"));
  EXPECT_TRUE(h.verified) << h.output;
  EXPECT_EQ(h.peer, certIdOfFile(cert.cert_file)) << h.output;
  EXPECT_EQ(h.peer.cn, "server");
  // ALPN: http/1.1 when offered; a client offering only h2 gets none.
  auto alpn = sClient(p.https, trust(ca) + sni("localhost") + "-alpn h2,http/1.1");
  EXPECT_NE(alpn.output.find("ALPN protocol: http/1.1"), std::string::npos) << alpn.output;
  alpn = sClient(p.https, trust(ca) + sni("localhost") + "-alpn h2");
  EXPECT_NE(alpn.output.find("No ALPN negotiated"), std::string::npos) << alpn.output;
  EXPECT_TRUE(alpn.verified) << alpn.output;
}

TEST(TlsListener, XForwardedProtoTellsTheUpstreamHowTheClientCame) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  TlsProxy p(serverTlsJson(makeCert(ca, dir.path(), "server")));
  auto r = curl(cacert(ca) + url(p.https, "/"));
  ASSERT_EQ(r.status, "200") << r.output;
  EXPECT_EQ(echoHeader(r.body, "X-Forwarded-Proto"), "https") << r.body;
  // What the client claims is replaced, either way.
  r = curl(cacert(ca) + "-H 'X-Forwarded-Proto: http' " + url(p.https, "/"));
  ASSERT_EQ(r.status, "200") << r.output;
  EXPECT_EQ(echoHeader(r.body, "X-Forwarded-Proto"), "https") << r.body;
  r = curl("-H 'X-Forwarded-Proto: https' 'http://127.0.0.1:" + std::to_string(p.http) + "/'");
  ASSERT_EQ(r.status, "200") << r.output;
  EXPECT_EQ(echoHeader(r.body, "X-Forwarded-Proto"), "http") << r.body;
}

TEST(TlsListener, ClientThatDoesNotTrustTheCaFailsTheHandshake) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto other = makeCa(dir.path(), "other-ca");
  TlsProxy p(serverTlsJson(makeCert(ca, dir.path(), "server")));
  auto r = curl(cacert(other) + url(p.https, "/"));
  EXPECT_EQ(r.exit_code, 60) << r.output;  // CURLE_PEER_FAILED_VERIFICATION
  EXPECT_EQ(r.status, "000") << r.output;
  r = curl(url(p.https, "/"));  // the system's trust store does not know the test CA either
  EXPECT_EQ(r.exit_code, 60) << r.output;
  const auto h = sClient(p.https, trust(other) + sni("localhost"));
  EXPECT_NE(h.exit_code, 0) << h.output;
  EXPECT_FALSE(h.verified) << h.output;
  // The server counted the handshakes the clients abandoned.
  EXPECT_TRUE(eventually([&] { return metric(p.admin(), kHandshakesFailed) == 3; })) << get(p.admin(), "/metrics").body();
  EXPECT_EQ(metric(p.admin(), kHandshakesOk), 0);
  // And still serves a client that trusts the CA.
  EXPECT_EQ(curl(cacert(ca) + url(p.https, "/")).status, "200");
}

TEST(TlsListener, HandshakeMetricCountsEachResult) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  TlsProxy p(serverTlsJson(makeCert(ca, dir.path(), "server")));
  EXPECT_EQ(metric(p.admin(), kHandshakesOk), 0);
  EXPECT_EQ(metric(p.admin(), kHandshakesFailed), 0);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(curl(cacert(ca) + url(p.https, "/")).status, "200");
  // Two requests on one connection: one handshake.
  ASSERT_EQ(curl(cacert(ca) + url(p.https, "/a") + " " + url(p.https, "/b")).status, "200 200");
  // Failed: an untrusting client, plain HTTP to the HTTPS port, a connection closed without a byte.
  EXPECT_EQ(curl(cacert(makeCa(dir.path(), "other")) + url(p.https, "/")).exit_code, 60);
  auto plain = curl("'http://127.0.0.1:" + std::to_string(p.https) + "/'");
  EXPECT_EQ(plain.status, "000") << plain.output;
  { Client silent(p.https); }
  EXPECT_TRUE(eventually([&] { return metric(p.admin(), kHandshakesOk) == 4 && metric(p.admin(), kHandshakesFailed) == 3; }))
      << get(p.admin(), "/metrics").body();
  // Plain HTTP on the other listener is no handshake at all.
  ASSERT_EQ(get(p.http, "/").result_int(), 200);
  EXPECT_EQ(metric(p.admin(), kHandshakesOk), 4);
  EXPECT_EQ(metric(p.admin(), kHandshakesFailed), 3);
}

// A client that opens a connection and never finishes its handshake is closed after
// timeouts.header_read_ms.
TEST(TlsListener, HandshakeMustFinishWithinHeaderReadTimeout) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  EchoUpstream echo("echo");
  Fledge f(proxyConfig(httpsListener("https", serverTlsJson(makeCert(ca, dir.path(), "server"))), echo.address(), 2, "", kRouteAll,
                       R"("timeouts":{"header_read_ms":500})"));
  const auto port = listenerPort(f.process(), "https");
  const auto start = std::chrono::steady_clock::now();
  Client c(port, 5s);
  c.send(std::string("\x16\x03\x01\x02\x00\x01", 6));  // the start of a ClientHello, and no more
  EXPECT_TRUE(c.closedByPeer());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 3s);
  EXPECT_TRUE(eventually([&] { return metric(f.adminPort(), kHandshakesFailed) == 1; })) << get(f.adminPort(), "/metrics").body();
  // A complete client is unaffected.
  EXPECT_EQ(curl(cacert(ca) + url(port, "/")).status, "200");
}

// ---------------------------------------------------------------------------------------------
// SNI

TEST(TlsSni, PicksTheCertificateByExactOrWildcardName) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto a = makeCert(ca, dir.path(), "site-a", {"DNS:a.example.test"});
  const auto b = makeCert(ca, dir.path(), "site-b", {"DNS:b.example.test"}, "rsa");
  const auto wild = makeCert(ca, dir.path(), "site-wild", {"DNS:*.wild.example.test"});
  const auto exact = makeCert(ca, dir.path(), "site-exact", {"DNS:exact.wild.example.test"});  // listed after the wildcard
  TlsProxy p(tlsBlock({a, b, wild, exact}));
  const CertId ida = certIdOfFile(a.cert_file), idb = certIdOfFile(b.cert_file), idw = certIdOfFile(wild.cert_file),
               ide = certIdOfFile(exact.cert_file);
  ASSERT_NE(ida.serial, idb.serial);

  const std::vector<std::pair<std::string, CertId>> cases = {
      {sni("a.example.test"), ida},
      {sni("b.example.test"), idb},
      {sni("B.Example.TEST"), idb},                 // names are case-insensitive
      {sni("x.wild.example.test"), idw},            // one label under the wildcard
      {sni("exact.wild.example.test"), ide},        // an exact name wins over a wildcard listed first
      {sni("y.x.wild.example.test"), ida},          // two labels: no match, the default
      {sni("wild.example.test"), ida},              // the wildcard's parent: no match
      {sni("unknown.test"), ida},                   // unknown: the default (first)
      {"-noservername ", ida},                      // no SNI: the default
  };
  for (const auto& [opts, want] : cases) {
    const auto h = sClient(p.https, trust(ca) + opts);
    EXPECT_EQ(h.peer, want) << opts << "\n" << h.output;
    EXPECT_TRUE(h.verified) << opts << "\n" << h.output;
  }
  // curl checks the name it asked for against the certificate it got.
  for (const std::string host : {"a.example.test", "b.example.test", "x.wild.example.test", "exact.wild.example.test"}) {
    const auto r = curl(cacert(ca) + resolve(host, p.https) + url(p.https, "/", host));
    EXPECT_EQ(r.exit_code, 0) << host << ": " << r.output;
    EXPECT_EQ(r.status, "200") << host << ": " << r.output;
  }
  // A name only the default lacks: the default answers, and curl refuses it.
  const auto r = curl(cacert(ca) + resolve("unknown.test", p.https) + url(p.https, "/", "unknown.test"));
  EXPECT_EQ(r.exit_code, 60) << r.output;
}

// RFC 6066, section 3: a server "MUST NOT accept the request to resume the session if the
// server_name extension contains a different name"; it does a full handshake (and so presents
// the certificate for the name asked).
TEST(TlsSni, SessionDoesNotResumeUnderAnotherName) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto a = makeCert(ca, dir.path(), "site-a", {"DNS:a.example.test"});
  const auto b = makeCert(ca, dir.path(), "site-b", {"DNS:b.example.test"});
  TlsProxy p(tlsBlock({a, b}), 1);
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    const std::string sess = dir.path() + "/a" + version + ".pem";
    const auto first = sClient(p.https, trust(ca) + sni("a.example.test") + version + " -sess_out " + quote(sess), kCloseRequest);
    ASSERT_EQ(first.peer, certIdOfFile(a.cert_file)) << first.output;
    ASSERT_TRUE(fs::exists(sess)) << first.output;
    EXPECT_TRUE(sClient(p.https, trust(ca) + sni("a.example.test") + version + " -sess_in " + quote(sess), kCloseRequest).reused);
    const auto other = sClient(p.https, trust(ca) + sni("b.example.test") + version + " -sess_in " + quote(sess), kCloseRequest);
    EXPECT_FALSE(other.reused) << version << ": a session for a.example.test resumed for b.example.test\n" << other.output;
    EXPECT_EQ(other.peer, certIdOfFile(b.cert_file)) << version << "\n" << other.output;
  }
}

// ---------------------------------------------------------------------------------------------
// Client certificates

TEST(TlsClientCert, RequiredAndOptional) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto client_ca = makeCa(dir.path(), "client-ca");
  const auto alice = makeClientCert(client_ca, dir.path(), "alice");
  const auto mallory = makeClientCert(makeCa(dir.path(), "rogue-ca"), dir.path(), "mallory");
  const auto server = makeCert(ca, dir.path(), "server");
  EchoUpstream echo("echo");
  Fledge f(proxyConfig(
      httpsListener("required", serverTlsJson(server, R"(,"client_ca_file":")" + client_ca.cert_file + R"(","require_client_cert":true)")) +
          "," + httpsListener("optional", serverTlsJson(server, R"(,"client_ca_file":")" + client_ca.cert_file + "\"")),
      echo.address()));
  const auto required = listenerPort(f.process(), "required"), optional = listenerPort(f.process(), "optional");
  ASSERT_TRUE(required && optional) << f.process().log();

  // Required: no certificate and a certificate from another CA fail; alice's passes.
  auto r = curl(cacert(ca) + url(required, "/"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "000") << r.output;
  r = curl(cacert(ca) + clientCert(mallory) + url(required, "/"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "000") << r.output;
  r = curl(cacert(ca) + clientCert(alice) + url(required, "/"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200") << r.output;

  // Optional: no certificate and alice's pass; one that does not verify still fails.
  r = curl(cacert(ca) + url(optional, "/"));
  EXPECT_EQ(r.status, "200") << r.output;
  r = curl(cacert(ca) + clientCert(alice) + url(optional, "/"));
  EXPECT_EQ(r.status, "200") << r.output;
  r = curl(cacert(ca) + clientCert(mallory) + url(optional, "/"));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "000") << r.output;

  // The server asks for certificates signed by the client CA.
  const auto h = sClient(required, trust(ca) + sni("localhost"));
  EXPECT_NE(h.output.find("Acceptable client certificate CA names"), std::string::npos) << h.output;
  EXPECT_NE(h.output.find("CN = client-ca"), std::string::npos) << h.output;
}

// Session tickets are sealed with process-wide keys: one from a listener that asks for no client
// certificate must not resume on a listener that requires one (that would skip the check) —
// neither on a proxy listener nor on the admin listener.
TEST(TlsClientCert, TicketFromAnotherListenerDoesNotSkipTheClientCertificate) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto client_ca = makeCa(dir.path(), "client-ca");
  const auto alice = makeClientCert(client_ca, dir.path(), "alice");
  const auto server = makeCert(ca, dir.path(), "server");
  const std::string require = R"(,"client_ca_file":")" + client_ca.cert_file + R"(","require_client_cert":true)";
  EchoUpstream echo("echo");
  Fledge f(proxyConfig(httpsListener("open", serverTlsJson(server)) + "," + httpsListener("required", serverTlsJson(server, require)),
                       echo.address(), 1, "", kRouteAll, R"("admin":{"listen":"127.0.0.1:0","tls":)" + serverTlsJson(server, require) + "}"));
  const auto open = listenerPort(f.process(), "open"), required = listenerPort(f.process(), "required");
  ASSERT_TRUE(open && required && f.adminPort()) << f.process().log();
  const std::string healthz = "GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n";
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    const std::string sess = dir.path() + "/open" + version + ".pem";
    const std::string opts = trust(ca) + sni("localhost") + version + " ";
    const auto first = sClient(open, opts + "-sess_out " + quote(sess), kCloseRequest);
    ASSERT_NE(first.output.find("HTTP/1.1 200"), std::string::npos) << first.output;
    ASSERT_TRUE(fs::exists(sess)) << first.output;
    // The ticket does resume where it came from...
    EXPECT_TRUE(sClient(open, opts + "-sess_in " + quote(sess), kCloseRequest).reused) << version;
    // ...but not where a client certificate is required, and no request passes there.
    for (const auto& [name, port] : {std::pair{"required", required}, std::pair{"admin", f.adminPort()}}) {
      const auto other = sClient(port, opts + "-sess_in " + quote(sess), healthz);
      EXPECT_FALSE(other.reused) << version << ": a session from listener \"open\" resumed on \"" << name << "\"\n" << other.output;
      EXPECT_EQ(other.output.find("HTTP/1.1 200"), std::string::npos)
          << version << ": a request passed listener \"" << name << "\" without a client certificate\n" << other.output;
      // With alice's certificate, a full handshake there works.
      const auto with_cert = sClient(port, opts + "-cert " + quote(alice.cert_file) + " -key " + quote(alice.key_file), healthz);
      EXPECT_NE(with_cert.output.find("HTTP/1.1 200"), std::string::npos) << name << "\n" << with_cert.output;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Versions and resumption

TEST(TlsVersions, MinVersion13RefusesATls12OnlyClient) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto server = makeCert(ca, dir.path(), "server");
  EchoUpstream echo("echo");
  Fledge f(proxyConfig(httpsListener("tls13", serverTlsJson(server, R"(,"min_version":"1.3")")) + "," +
                           httpsListener("tls12", serverTlsJson(server, R"(,"min_version":"1.2")")),
                       echo.address()));
  const auto tls13 = listenerPort(f.process(), "tls13"), tls12 = listenerPort(f.process(), "tls12");
  ASSERT_TRUE(tls13 && tls12) << f.process().log();

  auto r = curl(cacert(ca) + "--tls-max 1.2 " + url(tls13, "/"));
  EXPECT_EQ(r.exit_code, 35) << r.output;  // CURLE_SSL_CONNECT_ERROR
  EXPECT_EQ(r.status, "000") << r.output;
  r = curl(cacert(ca) + "--tlsv1.3 " + url(tls13, "/"));
  EXPECT_EQ(r.status, "200") << r.output;
  auto h = sClient(tls13, trust(ca) + sni("localhost") + "-tls1_2");
  EXPECT_NE(h.exit_code, 0) << h.output;
  EXPECT_EQ(h.peer.serial, "") << h.output;
  h = sClient(tls13, trust(ca) + sni("localhost"));
  EXPECT_EQ(h.protocol, "TLSv1.3") << h.output;

  // The default (1.2) takes both.
  r = curl(cacert(ca) + "--tls-max 1.2 " + url(tls12, "/"));
  EXPECT_EQ(r.status, "200") << r.output;
  h = sClient(tls12, trust(ca) + sni("localhost") + "-tls1_2");
  EXPECT_EQ(h.protocol, "TLSv1.2") << h.output;
  EXPECT_TRUE(h.verified) << h.output;
  // TLS 1.2 only with AEAD suites: CBC is refused.
  h = sClient(tls12, trust(ca) + sni("localhost") + "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA");
  EXPECT_NE(h.exit_code, 0) << h.output;
  EXPECT_EQ(h.peer.serial, "") << h.output;
  h = sClient(tls12, trust(ca) + sni("localhost") + "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(h.protocol, "TLSv1.2") << h.output;
  EXPECT_NE(h.output.find("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), std::string::npos) << h.output;
  // Older than 1.2 is never spoken.
  h = sClient(tls12, trust(ca) + sni("localhost") + "-tls1_1 -cipher 'DEFAULT:@SECLEVEL=0'");
  EXPECT_NE(h.exit_code, 0) << h.output;
  EXPECT_EQ(h.peer.serial, "") << h.output;
}

TEST(TlsVersions, SessionResumption) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  TlsProxy p(serverTlsJson(makeCert(ca, dir.path(), "server")));
  for (const std::string version : {"-tls1_3", "-tls1_2"}) {
    const std::string sess = dir.path() + "/session" + version + ".pem";
    const std::string opts = trust(ca) + sni("localhost") + version + " ";
    auto first = sClient(p.https, opts + "-sess_out " + quote(sess), kCloseRequest);
    EXPECT_FALSE(first.reused) << first.output;
    EXPECT_TRUE(first.verified) << first.output;
    EXPECT_NE(first.output.find("HTTP/1.1 200"), std::string::npos) << first.output;
    ASSERT_TRUE(fs::exists(sess)) << version << ": no session was saved\n" << first.output;
    // Resumed more than once (with two workers, on either of them).
    for (int i = 0; i < 3; ++i) {
      auto again = sClient(p.https, opts + "-sess_in " + quote(sess), kCloseRequest);
      EXPECT_TRUE(again.reused) << version << " try " << i << "\n" << again.output;
      EXPECT_EQ(again.protocol, version == "-tls1_3" ? "TLSv1.3" : "TLSv1.2") << again.output;
      EXPECT_NE(again.output.find("HTTP/1.1 200"), std::string::npos) << again.output;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Redirect to HTTPS

TEST(TlsRedirect, PlainListenerAnswers308ToTheHttpsPort) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto server = makeCert(ca, dir.path(), "server");
  // The HTTPS listener's port must be known before the config is written.
  const std::string https_address = deadAddress();
  const std::string https_port = https_address.substr(https_address.find(':') + 1);
  EchoUpstream echo("echo");
  Fledge f(proxyConfig(httpsListener("https", serverTlsJson(server), https_address) + "," +
                           listener("http", R"("redirect_https":{"port":)" + https_port + "}") + "," +
                           listener("http443", R"("redirect_https":{})"),
                       echo.address()));
  const auto http = listenerPort(f.process(), "http"), http443 = listenerPort(f.process(), "http443");
  ASSERT_TRUE(http && http443) << f.process().log();

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"shop.example.test", "https://shop.example.test:" + https_port + "/a/b?x=1&y=%20"},
      {"shop.example.test:8080", "https://shop.example.test:" + https_port + "/a/b?x=1&y=%20"},  // the port is replaced
      {"[::1]:8080", "https://[::1]:" + https_port + "/a/b?x=1&y=%20"},
  };
  for (const auto& [host, location] : cases) {
    Client c(http);
    c.send("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: " + host + "\r\n\r\n");
    const auto res = c.read();
    EXPECT_EQ(res.result_int(), 308) << host;
    EXPECT_EQ(res[http::field::location], location) << host;
  }
  {
    Client c(http443);
    const auto res = c.request(http::verb::post, "/form", {{"Host", "example.test"}}, "a=1");
    EXPECT_EQ(res.result_int(), 308);
    EXPECT_EQ(res[http::field::location], "https://example.test/form");  // no ":443"
  }
  // curl follows it to the HTTPS listener and gets the upstream's answer.
  const auto r = curl(cacert(ca) + "-L 'http://127.0.0.1:" + std::to_string(http) + "/followed?q=1'",
                      "REDIRECTS=%{num_redirects};URL=%{url_effective};");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.status, "200") << r.output;
  EXPECT_NE(r.output.find("REDIRECTS=1;URL=https://127.0.0.1:" + https_port + "/followed?q=1;"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(R"("target":"/followed?q=1")"), std::string::npos) << r.output;
}

// ---------------------------------------------------------------------------------------------
// Certificate rotation

// The wrk part: every request a new connection (a new handshake), 8 at a time, while the
// certificate directory is swapped the way a Kubernetes secret volume does it (one symlink
// renamed, so certificate and key change together). A curl on one kept-alive connection spans
// the swap too.
TEST(TlsRotation, FilesChangedUnderWrkLoad) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  fs::create_directory(dir.path() + "/gen1");
  fs::create_directory(dir.path() + "/gen2");
  const auto old_cert = makeCert(ca, dir.path() + "/gen1", "tls");
  const auto new_cert = makeCert(ca, dir.path() + "/gen2", "tls");
  const CertId old_id = certIdOfFile(old_cert.cert_file), new_id = certIdOfFile(new_cert.cert_file);
  ASSERT_NE(old_id.serial, new_id.serial);
  const std::string live = dir.path() + "/live";
  fs::create_directory_symlink("gen1", live);
  TlsProxy p(tlsBlock({{live + "/tls.crt", live + "/tls.key"}}));
  ASSERT_EQ(sClient(p.https, trust(ca) + sni("localhost")).peer, old_id);

  auto wrk = std::async(std::launch::async, [&] {
    return sh("timeout 30 wrk -t1 -c8 -d5s --timeout 5s -H 'Connection: close' 'https://127.0.0.1:" + std::to_string(p.https) + "/'");
  });
  // One connection, a request every 250 ms across the swap.
  std::string urls;
  for (int i = 0; i < 12; ++i) urls += url(p.https, "/kept/" + std::to_string(i)) + " ";
  auto kept = std::async(std::launch::async, [&] { return curl(cacert(ca) + "--rate 4/s " + urls); });

  ASSERT_TRUE(eventually([&] { return metric(p.admin(), kHandshakesOk) >= 100; }, 10s)) << get(p.admin(), "/metrics").body();
  const std::string next = dir.path() + "/live.next";
  fs::create_directory_symlink("gen2", next);
  fs::rename(next, live);
  const auto swapped = std::chrono::steady_clock::now();
  Handshake seen;
  EXPECT_TRUE(eventually([&] { return (seen = sClient(p.https, trust(ca) + sni("localhost"))).peer == new_id; }, 5s))
      << "still " << seen.peer << "\n" << p.process().log();
  std::printf("new certificate served %lld ms after the swap\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - swapped).count()));
  const double ok_at_swap = metric(p.admin(), kHandshakesOk);
  // Every new handshake from now on gets the new certificate, on both workers.
  for (int i = 0; i < 6; ++i) {
    const auto h = sClient(p.https, trust(ca) + sni("localhost"));
    EXPECT_EQ(h.peer, new_id) << h.output;
    EXPECT_TRUE(h.verified) << h.output;
  }

  const ShellResult w = wrk.get();
  std::printf("wrk:\n%s\n", w.output.c_str());
  EXPECT_EQ(w.exit_code, 0) << w.output;
  ASSERT_NE(w.output.find("Requests/sec"), std::string::npos) << w.output;
  EXPECT_EQ(w.output.find("Non-2xx"), std::string::npos) << w.output;
  EXPECT_EQ(w.output.find("Socket errors"), std::string::npos) << w.output;
  // Handshakes went on after the swap (wrk kept connecting), with the new certificate.
  EXPECT_GT(metric(p.admin(), kHandshakesOk), ok_at_swap + 20) << get(p.admin(), "/metrics").body();

  const auto k = kept.get();
  EXPECT_EQ(k.exit_code, 0) << k.output;
  EXPECT_EQ(k.status, "200 200 200 200 200 200 200 200 200 200 200 200") << k.output;
  EXPECT_EQ(k.connects, "1 0 0 0 0 0 0 0 0 0 0 0") << "the kept-alive connection was dropped by the swap: " << k.output;

  EXPECT_EQ(logLines(p.process(), "TLS certificates reloaded").size(), 1u) << p.process().log();
  EXPECT_TRUE(logLines(p.process(), kReloadFailedLog).empty()) << p.process().log();
  EXPECT_EQ(metric(p.admin(), kReloadsOk), 1);
  EXPECT_EQ(metric(p.admin(), kReloadsFailed), 0);
}

// A certificate and key of exactly `size` bytes each (EC keys always are; a certificate's length
// varies by a byte or two with its serial number and signature).
CertFiles certOfSize(const CertFiles& ca, const std::string& dir, const std::string& name, std::uintmax_t cert_size,
                     std::uintmax_t key_size) {
  for (int i = 0; i < 100; ++i) {
    auto c = makeCert(ca, dir, name);
    if (fs::file_size(c.cert_file) == cert_size && fs::file_size(c.key_file) == key_size) return c;
  }
  throw std::runtime_error("no certificate of " + std::to_string(cert_size) + " bytes in 100 tries");
}

// Rewrites `path` in place with `content` of the same size and puts its modification time back:
// inode, size and mtime stay what they were.
void overwriteKeepingStat(const std::string& path, const std::string& content) {
  struct stat before {};
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  ASSERT_EQ(static_cast<std::uintmax_t>(before.st_size), content.size());
  const int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, content.data(), content.size(), 0), static_cast<ssize_t>(content.size()));
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::futimens(fd, times), 0);
  ::close(fd);
  struct stat after {};
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  ASSERT_EQ(after.st_ino, before.st_ino);
  ASSERT_EQ(after.st_size, before.st_size);
  ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}

// SIGHUP reloads even what the watcher cannot see: the new certificate is written over the old
// one in place, same size, modification time restored (the watcher compares inode, size and
// mtime), so only the signal can load it.
TEST(TlsRotation, SighupReloads) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto first = makeCert(ca, dir.path(), "sighup-a");
  const auto live = liveCopy(first, dir.path(), "live");
  const auto second = certOfSize(ca, dir.path(), "sighup-b", fs::file_size(first.cert_file), fs::file_size(first.key_file));
  const CertId first_id = certIdOfFile(first.cert_file), second_id = certIdOfFile(second.cert_file);
  TlsProxy p(serverTlsJson(live));
  ASSERT_EQ(sClient(p.https, trust(ca) + sni("localhost")).peer, first_id);

  overwriteKeepingStat(live.key_file, readFile(second.key_file));
  overwriteKeepingStat(live.cert_file, readFile(second.cert_file));
  // Longer than the watcher's 1 s poll: it saw no change, so the old certificate still serves.
  std::this_thread::sleep_for(2200ms);
  auto h = sClient(p.https, trust(ca) + sni("localhost"));
  EXPECT_EQ(h.peer, first_id) << "the watcher reloaded a file whose inode, size and mtime did not change\n" << h.output;

  p.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return (h = sClient(p.https, trust(ca) + sni("localhost"))).peer == second_id; }, 5s))
      << h.output << "\n" << p.process().log();
  EXPECT_TRUE(h.verified) << h.output;
  EXPECT_TRUE(p.process().running()) << p.process().log();
  EXPECT_TRUE(p.process().waitForLog("TLS certificates reloaded", 2s)) << p.process().log();
  EXPECT_EQ(metric(p.admin(), kReloadsOk), 1);
  EXPECT_EQ(curl(cacert(ca) + url(p.https, "/")).status, "200");

  // A second SIGHUP with nothing changed reloads again, harmlessly.
  p.process().signal(SIGHUP);
  EXPECT_TRUE(eventually([&] { return metric(p.admin(), kReloadsOk) == 2; }, 5s)) << p.process().log();
  EXPECT_EQ(sClient(p.https, trust(ca) + sni("localhost")).peer, second_id);
  EXPECT_TRUE(p.process().running());
}

TEST(TlsRotation, BadReplacementKeepsTheOldCertificate) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto first = makeCert(ca, dir.path(), "first");
  const auto second = makeCert(ca, dir.path(), "second");
  const CertId first_id = certIdOfFile(first.cert_file), second_id = certIdOfFile(second.cert_file);
  const auto live = liveCopy(first, dir.path(), "live");
  TlsProxy p(serverTlsJson(live));
  ASSERT_EQ(sClient(p.https, trust(ca) + sni("localhost")).peer, first_id);
  auto stillFirst = [&](const std::string& when) {
    const auto h = sClient(p.https, trust(ca) + sni("localhost"));
    EXPECT_EQ(h.peer, first_id) << when << "\n" << h.output;
    EXPECT_TRUE(h.verified) << when << "\n" << h.output;
    const auto r = curl(cacert(ca) + url(p.https, "/"));
    EXPECT_EQ(r.status, "200") << when << "\n" << r.output;
  };

  // 1. Not a certificate at all.
  writeFileAtomically(live.cert_file, "this is not a certificate\n");
  ASSERT_TRUE(p.process().waitForLog(kReloadFailedLog, 8s)) << p.process().log();
  auto lines = logLines(p.process(), kReloadFailedLog);
  ASSERT_EQ(lines.size(), 1u) << p.process().log();
  EXPECT_NE(lines[0].find(live.cert_file), std::string::npos) << "the error does not name the file: " << lines[0];
  EXPECT_NE(lines[0].find(R"("listener":"https")"), std::string::npos) << lines[0];
  stillFirst("after a garbage certificate");
  EXPECT_TRUE(p.process().running());
  EXPECT_EQ(metric(p.admin(), kReloadsFailed), 1);
  EXPECT_EQ(metric(p.admin(), kReloadsOk), 0);

  // 2. A good certificate whose key is not the one beside it.
  installFile(second.cert_file, live.cert_file);
  ASSERT_TRUE(eventually([&] { return logLines(p.process(), kReloadFailedLog).size() == 2; })) << p.process().log();
  stillFirst("after a certificate that does not match its key");
  // 3. SIGHUP with the bad files still there: the same.
  p.process().signal(SIGHUP);
  ASSERT_TRUE(eventually([&] { return logLines(p.process(), kReloadFailedLog).size() == 3; })) << p.process().log();
  stillFirst("after SIGHUP with bad files");
  EXPECT_TRUE(p.process().running()) << p.process().log();
  EXPECT_EQ(metric(p.admin(), kReloadsFailed), 3);

  // 4. The matching key arrives: the new certificate is taken.
  installFile(second.key_file, live.key_file);
  Handshake h;
  EXPECT_TRUE(eventually([&] { return (h = sClient(p.https, trust(ca) + sni("localhost"))).peer == second_id; })) << h.output;
  EXPECT_TRUE(h.verified) << h.output;
  EXPECT_EQ(metric(p.admin(), kReloadsOk), 1);
  EXPECT_EQ(metric(p.admin(), kReloadsFailed), 3);
}

TEST(TlsConfig, RefusesToStartWithAMissingOrMismatchedCertificate) {
  TempDir dir;
  const auto ca = makeCa(dir.path(), "ca");
  const auto a = makeCert(ca, dir.path(), "a");
  const auto b = makeCert(ca, dir.path(), "b");
  EchoUpstream echo("echo");
  // The error names the file (for a mismatch, either of the two).
  for (const auto& [files, needles] : {std::pair{CertFiles{dir.path() + "/missing.crt", a.key_file}, std::vector{dir.path() + "/missing.crt"}},
                                       std::pair{CertFiles{a.cert_file, b.key_file}, std::vector{a.cert_file, b.key_file}}}) {
    const std::string path = dir.path() + "/config.json";
    tls_certs_detail::writeFile(path, proxyConfig(httpsListener("https", serverTlsJson(files)), echo.address()));
    Process fledge({fledgeBinary(), "--config", path});
    const int code = fledge.wait(15s);
    EXPECT_NE(code, 0) << fledge.log();
    EXPECT_NE(code, -1) << "still running: " << fledge.log();
    EXPECT_TRUE(std::any_of(needles.begin(), needles.end(), [&](const std::string& n) { return fledge.log().find(n) != std::string::npos; }))
        << "the error does not name " << needles.front() << ": " << fledge.log();
    EXPECT_EQ(fledge.log().find(R"("msg":"started")"), std::string::npos) << fledge.log();
    // --check-config loads the files too.
    const auto check = sh(quote(fledgeBinary()) + " --check-config " + quote(path));
    EXPECT_EQ(check.exit_code, 2) << check.output;
    EXPECT_TRUE(std::any_of(needles.begin(), needles.end(), [&](const std::string& n) { return check.output.find(n) != std::string::npos; }))
        << check.output;
  }
  // A cluster's ca_file too.
  const std::string path = dir.path() + "/config.json";
  tls_certs_detail::writeFile(path, proxyConfig(listener("main"), echo.address(), 1,
                                                R"(,"secure":{"endpoints":[")" + echo.address() + R"("],"tls":{"ca_file":")" + dir.path() +
                                                    R"(/no-ca.crt"}})"));
  const auto check = sh(quote(fledgeBinary()) + " --check-config " + quote(path));
  EXPECT_EQ(check.exit_code, 2) << check.output;
  EXPECT_NE(check.output.find(dir.path() + "/no-ca.crt"), std::string::npos) << check.output;
  // And a good one passes.
  tls_certs_detail::writeFile(path, proxyConfig(httpsListener("https", serverTlsJson(a)), echo.address()));
  EXPECT_EQ(sh(quote(fledgeBinary()) + " --check-config " + quote(path)).exit_code, 0);
}

// ---------------------------------------------------------------------------------------------
// TLS to upstreams: a second Fledge terminates TLS in front of an echo upstream.

struct UpstreamTls {
  TempDir dir;
  CertFiles ca = makeCa(dir.path(), "ca");
  CertFiles other_ca = makeCa(dir.path(), "other-ca");
  // The backend's default certificate (no SNI, unknown names) and the one SNI "upstream.test" picks.
  CertFiles default_cert = makeCert(ca, dir.path(), "backend-default", {"DNS:default.test", "IP:127.0.0.1"});
  CertFiles upstream_cert = makeCert(ca, dir.path(), "backend-upstream", {"DNS:upstream.test"});
  CertFiles front_client = makeClientCert(ca, dir.path(), "fledge-front");
  EchoUpstream echo{"secure-echo"};
  Fledge backend{proxyConfig(httpsListener("tls", tlsBlock({default_cert, upstream_cert})) + "," +
                                 httpsListener("mtls", tlsBlock({default_cert, upstream_cert},
                                                                R"(,"client_ca_file":")" + ca.cert_file + R"(","require_client_cert":true)")),
                             echo.address())};
  std::uint16_t tls_port = listenerPort(backend.process(), "tls");
  std::uint16_t mtls_port = listenerPort(backend.process(), "mtls");
  std::unique_ptr<Fledge> front;

  struct Cluster {
    std::string name, endpoint, tls, extra;  // tls: the block's members; extra: more cluster members
  };
  std::string ca_file = R"("ca_file":")" + ca.cert_file + "\"";
  std::string other = R"("ca_file":")" + other_ca.cert_file + "\"";
  std::string tls = "127.0.0.1:" + std::to_string(tls_port), mtls = "127.0.0.1:" + std::to_string(mtls_port);

  // With `front_too`, the front with one cluster per way of reaching the backend.
  explicit UpstreamTls(bool front_too = true) {
    if (!tls_port || !mtls_port) throw std::runtime_error("backend ports: " + backend.process().log());
    if (!front_too) return;
    startFront({
        {"right", tls, ca_file + R"(,"server_name":"upstream.test")", ""},
        {"by-ip", tls, ca_file, ""},  // no server_name: the endpoint's address is verified (IP SAN)
        {"default-name", tls, ca_file + R"(,"server_name":"default.test")", ""},
        {"wrong-ca", tls, other + R"(,"server_name":"upstream.test")", ""},
        {"wrong-name", tls, ca_file + R"(,"server_name":"wrong.test")", ""},
        {"no-verify", tls, other + R"(,"server_name":"upstream.test","verify":false)", ""},
        {"mtls", mtls, ca_file + R"(,"server_name":"upstream.test","cert_file":")" + front_client.cert_file + R"(","key_file":")" +
                           front_client.key_file + "\"", ""},
        {"mtls-nocert", mtls, ca_file + R"(,"server_name":"upstream.test")", ""},
        {"tls13", tls, ca_file + R"(,"server_name":"upstream.test","min_version":"1.3")", ""},
        {"plain", echo.address(), ca_file, ""},  // an endpoint that speaks plain HTTP
    });
  }

  // The front: one worker (one upstream pool); each cluster is routed by its path prefix "/NAME/".
  void startFront(const std::vector<Cluster>& clusters) {
    std::string cl, routes = "[";
    for (const auto& c : clusters) {
      cl += ",\"" + c.name + R"(":{"endpoints":[")" + c.endpoint + R"("],"tls":{)" + c.tls + "}" + (c.extra.empty() ? "" : "," + c.extra) + "}";
      routes += std::string(routes.size() > 1 ? "," : "") + R"({"name":")" + c.name + R"(","match":{"path_prefix":"/)" + c.name +
                R"(/"},"cluster":")" + c.name + "\"}";
    }
    front = std::make_unique<Fledge>(proxyConfig(listener("main"), echo.address(), 1, cl, routes + "]"));
  }

  std::uint16_t port() const { return front->port(); }
  std::string upstreamTlsLines() const {
    std::string out;
    for (const auto& l : logLines(front->process(), "upstream TLS handshake failed")) out += l + "\n";
    return out;
  }
};

TEST(TlsUpstream, RightCaGets200) {
  UpstreamTls s;
  for (const std::string name : {"right", "by-ip", "default-name", "tls13"}) {
    const auto res = get(s.port(), "/" + name + "/x?y=1");
    EXPECT_EQ(res.result_int(), 200) << name << ": " << res.body() << "\n" << s.front->process().log();
    EXPECT_EQ(echoField(res.body(), "name"), "secure-echo") << name << ": " << res.body();
    EXPECT_EQ(echoField(res.body(), "target"), "/" + name + "/x?y=1") << res.body();
    // The backend got it over TLS (its listener tells its upstream so).
    EXPECT_EQ(echoHeader(res.body(), "X-Forwarded-Proto"), "https") << res.body();
    EXPECT_EQ(echoHeader(res.body(), "Via"), "1.1 fledge, 1.1 fledge") << res.body();
  }
  EXPECT_EQ(s.upstreamTlsLines(), "");
  // The TLS connections to the backend are kept alive: more requests, no more handshakes.
  const double before = metric(s.backend.adminPort(), kHandshakesOk);
  EXPECT_EQ(before, 4) << "one connection per cluster";
  for (int i = 0; i < 5; ++i) ASSERT_EQ(get(s.port(), "/right/again").result_int(), 200);
  EXPECT_EQ(metric(s.backend.adminPort(), kHandshakesOk), before);
  EXPECT_EQ(metric(s.backend.adminPort(), kHandshakesFailed), 0);
  // A body both ways through the TLS connection.
  Client c(s.port());
  const std::string body(100000, 'b');
  const auto res = c.request(http::verb::post, "/right/upload?bytes=70000", {}, body);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body().size(), 70000u);
}

TEST(TlsUpstream, WrongCaGets502) {
  UpstreamTls s;
  const auto res = get(s.port(), "/wrong-ca/x");
  EXPECT_EQ(res.result_int(), 502) << res.body();
  EXPECT_NE(res.body().find("upstream TLS handshake failed"), std::string::npos) << res.body();
  ASSERT_TRUE(s.front->process().waitForLog("upstream TLS handshake failed", 5s)) << s.front->process().log();
  const std::string lines = s.upstreamTlsLines();
  EXPECT_NE(lower(lines).find("certificate verify failed"), std::string::npos) << lines;
  EXPECT_NE(lower(lines).find("unable to get local issuer certificate"), std::string::npos) << "no verification reason: " << lines;
  EXPECT_NE(lines.find(R"("cluster":"wrong-ca")"), std::string::npos) << lines;
  EXPECT_EQ(metric(s.front->adminPort(), R"(fledge_upstream_errors_total{cluster="wrong-ca",kind="tls"})"), 1)
      << get(s.front->adminPort(), "/metrics").body();
  // The backend saw a client give up its handshake.
  EXPECT_TRUE(eventually([&] { return metric(s.backend.adminPort(), kHandshakesFailed) == 1; }, 5s));
  // verify:false with the same untrusting CA goes through; the right CA too.
  EXPECT_EQ(get(s.port(), "/no-verify/x").result_int(), 200);
  EXPECT_EQ(get(s.port(), "/right/x").result_int(), 200);
  // And it stays refused (no connection was pooled for it).
  EXPECT_EQ(get(s.port(), "/wrong-ca/again").result_int(), 502);
}

TEST(TlsUpstream, WrongServerNameGets502) {
  UpstreamTls s;
  const auto res = get(s.port(), "/wrong-name/x");
  EXPECT_EQ(res.result_int(), 502) << res.body();
  EXPECT_NE(res.body().find("upstream TLS handshake failed"), std::string::npos) << res.body();
  ASSERT_TRUE(s.front->process().waitForLog("upstream TLS handshake failed", 5s)) << s.front->process().log();
  const std::string lines = s.upstreamTlsLines();
  EXPECT_NE(lower(lines).find("hostname mismatch"), std::string::npos) << "no verification reason: " << lines;
  EXPECT_NE(lines.find(R"("cluster":"wrong-name")"), std::string::npos) << lines;
  EXPECT_NE(lines.find(R"("server_name":"wrong.test")"), std::string::npos) << lines;
  EXPECT_NE(lines.find(R"("endpoint":")" + s.tls + "\""), std::string::npos) << lines;
  EXPECT_EQ(metric(s.front->adminPort(), R"(fledge_upstream_errors_total{cluster="wrong-name",kind="tls"})"), 1)
      << get(s.front->adminPort(), "/metrics").body();
  EXPECT_EQ(get(s.port(), "/right/x").result_int(), 200);
}

TEST(TlsUpstream, ClientCertificateForAnUpstreamThatRequiresOne) {
  UpstreamTls s;
  auto res = get(s.port(), "/mtls/x");
  EXPECT_EQ(res.result_int(), 200) << res.body() << "\n" << s.front->process().log();
  EXPECT_EQ(echoField(res.body(), "name"), "secure-echo") << res.body();
  res = get(s.port(), "/mtls-nocert/x");
  EXPECT_EQ(res.result_int(), 502) << res.body();
}

// A plain-HTTP endpoint behind a TLS cluster: refused, never spoken to in plain text.
TEST(TlsUpstream, PlainHttpEndpointGets502) {
  UpstreamTls s;
  const auto res = get(s.port(), "/plain/x");
  EXPECT_EQ(res.result_int(), 502) << res.body();
  EXPECT_NE(res.body().find("upstream TLS handshake failed"), std::string::npos) << res.body();
  ASSERT_TRUE(s.front->process().waitForLog("upstream TLS handshake failed", 5s)) << s.front->process().log();
  EXPECT_NE(s.upstreamTlsLines().find(R"("cluster":"plain")"), std::string::npos) << s.upstreamTlsLines();
  EXPECT_EQ(metric(s.front->adminPort(), R"(fledge_upstream_errors_total{cluster="plain",kind="tls"})"), 1)
      << get(s.front->adminPort(), "/metrics").body();
  // The echo upstream never answered a request of ours: no JSON description came back.
  EXPECT_EQ(res.body().find("secure-echo"), std::string::npos) << res.body();
}

// Active health checks to a TLS cluster speak TLS with the cluster's settings: they pass against
// the right CA and fail against the wrong one.
TEST(TlsUpstream, HealthChecksSpeakTls) {
  // A generous timeout: a TLS handshake under ASan on a busy 2-core machine can take 100 ms, and
  // a timed-out check of the right cluster would say nothing about TLS.
  const std::string hc = R"("health_check":{"path":"/healthz","interval_ms":400,"timeout_ms":400,)"
                         R"("unhealthy_threshold":2,"healthy_threshold":1,"jitter_ms":0})";
  UpstreamTls s(false);
  s.startFront({{"hc-right", s.tls, s.ca_file + R"(,"server_name":"upstream.test")", hc},
                {"hc-wrong-ca", s.tls, s.other + R"(,"server_name":"upstream.test")", hc}});
  const std::string endpoint = s.tls;
  const auto admin = s.front->adminPort();
  auto series = [&](const std::string& name, const std::string& cluster, const std::string& more = "") {
    return name + R"({cluster=")" + cluster + R"(",endpoint=")" + endpoint + "\"" + more + "}";
  };
  EXPECT_TRUE(eventually([&] {
    const auto text = get(admin, "/metrics").body();
    return metricSample(text, series("fledge_health_checks_total", "hc-right", R"(,result="pass")")) >= 3 &&
           metricSample(text, series("fledge_health_checks_total", "hc-wrong-ca", R"(,result="fail")")) >= 3;
  })) << get(admin, "/metrics").body();
  const auto text = get(admin, "/metrics").body();
  EXPECT_EQ(metricSample(text, series("fledge_endpoint_healthy", "hc-right")), 1) << text;
  EXPECT_EQ(metricSample(text, series("fledge_endpoint_healthy", "hc-wrong-ca")), 0) << text;
  EXPECT_LE(metricSample(text, series("fledge_health_checks_total", "hc-right", R"(,result="fail")")), 0) << text;
  // The backend saw the checks arrive over TLS.
  EXPECT_GE(metric(s.backend.adminPort(), kHandshakesOk), 1);
  EXPECT_EQ(get(s.port(), "/hc-right/x").result_int(), 200);
}

}  // namespace
}  // namespace fledge::test
