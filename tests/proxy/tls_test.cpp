#include "proxy/tls.hpp"

#include <gtest/gtest.h>

#include "proxy/config.hpp"

namespace fledge::proxy {
namespace {

TEST(TlsNames, ExactBeatsWildcardAndWildcardsCoverOneLabel) {
  EXPECT_EQ(nameMatch("shop.example.com", "shop.example.com"), 2);
  EXPECT_EQ(nameMatch("shop.example.com", "SHOP.Example.com."), 2);  // any case, trailing dot
  EXPECT_EQ(nameMatch("*.example.com", "shop.example.com"), 1);
  EXPECT_EQ(nameMatch("*.example.com", "a.b.example.com"), 0);  // one label only
  EXPECT_EQ(nameMatch("*.example.com", "example.com"), 0);
  EXPECT_EQ(nameMatch("*.example.com", ".example.com"), 0);
  EXPECT_EQ(nameMatch("shop.example.com", "other.example.com"), 0);
  EXPECT_EQ(nameMatch("*.", "a."), 0);
  EXPECT_EQ(nameMatch("shop.example.com", ""), 0);
}

TEST(TicketKeys, RotateOnTheClockAndKeepTheLastFew) {
  TicketKeys::Clock::time_point now{};
  TicketKeys keys(std::chrono::seconds(3600), [&] { return now; });
  const auto first = keys.current();
  EXPECT_EQ(keys.current().name, first.name);  // within the period: the same key
  bool renew = true;
  ASSERT_TRUE(keys.find(first.name.data(), renew));
  EXPECT_FALSE(renew);

  now += std::chrono::seconds(3600);
  const auto second = keys.current();
  EXPECT_NE(second.name, first.name);  // rotated
  EXPECT_NE(second.aes, first.aes);
  EXPECT_EQ(keys.rotations(), 1u);
  // A ticket sealed with the previous key still opens, and is renewed with the newest.
  auto old = keys.find(first.name.data(), renew);
  ASSERT_TRUE(old);
  EXPECT_TRUE(renew);
  EXPECT_EQ(old->hmac, first.hmac);

  // kKept keys are kept: after kKept rotations the first key is gone (a full handshake).
  for (std::size_t i = 1; i < TicketKeys::kKept; ++i) {
    now += std::chrono::seconds(3600);
    keys.current();
  }
  EXPECT_FALSE(keys.find(first.name.data(), renew));
  EXPECT_TRUE(keys.find(second.name.data(), renew));
  unsigned char unknown[16] = {};
  EXPECT_FALSE(keys.find(unknown, renew));
}

TEST(ServerTls, RefusesWhatCannotLoadAndSaysWhich) {
  std::string err;
  TlsServerConfig cfg;
  EXPECT_FALSE(ServerTls::create(cfg, err));
  EXPECT_EQ(err, "no certificate");
  cfg.certificates.push_back({"/nonexistent/cert.pem", "/nonexistent/key.pem"});
  EXPECT_FALSE(ServerTls::create(cfg, err));
  EXPECT_NE(err.find("cannot load certificate \"/nonexistent/cert.pem\""), std::string::npos) << err;
}

TEST(ClientTls, SharesAContextForTheSameBlockAndRefusesAMissingCa) {
  std::string err;
  TlsClientConfig cfg;  // the system trust store
  auto a = ClientTls::obtain(cfg, err);
  ASSERT_TRUE(a) << err;
  EXPECT_EQ(ClientTls::obtain(cfg, err), a);
  cfg.server_name = "api.internal";
  auto b = ClientTls::obtain(cfg, err);
  ASSERT_TRUE(b) << err;
  EXPECT_NE(b, a);
  cfg.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(ClientTls::obtain(cfg, err));
  EXPECT_NE(err.find("cannot load CA file \"/nonexistent/ca.pem\""), std::string::npos) << err;
}

bool hasError(const ConfigResult& r, const std::string& path, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.path == path && e.message.find(needle) != std::string::npos) return true;
  return false;
}

TEST(TlsConfig, ParsesEveryBlockWithPathsRelativeToTheConfig) {
  auto r = parseConfig(R"({
    "listeners": [{"name": "https", "address": "127.0.0.1:8443",
                   "tls": {"certificates": [{"cert_file": "a.pem", "key_file": "/etc/a.key"}, {"cert_file": "b.pem", "key_file": "b.key"}],
                           "min_version": "1.3", "client_ca_file": "clients.pem", "require_client_cert": true}},
                  {"name": "http", "address": "127.0.0.1:8080", "redirect_https": {"port": 8443}},
                  {"name": "http2", "address": "127.0.0.1:8081", "redirect_https": {}}],
    "admin": {"tls": {"certificates": [{"cert_file": "adm.pem", "key_file": "adm.key"}]}},
    "ofrep": {"tls": {"certificates": [{"cert_file": "of.pem", "key_file": "of.key"}]}},
    "clusters": {"api": {"endpoints": ["10.0.0.1:443"],
                         "tls": {"ca_file": "ca.pem", "server_name": "api.internal", "verify": false,
                                 "cert_file": "me.pem", "key_file": "me.key", "min_version": "1.3"}}},
    "routes": [{"name": "all", "cluster": "api"}]})",
                       "/srv/fledge");
  ASSERT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0].str());
  const auto& l = r.config->listeners;
  ASSERT_TRUE(l[0].tls);
  EXPECT_EQ(l[0].tls->certificates.size(), 2u);
  EXPECT_EQ(l[0].tls->certificates[0].cert_file, "/srv/fledge/a.pem");
  EXPECT_EQ(l[0].tls->certificates[0].key_file, "/etc/a.key");
  EXPECT_EQ(l[0].tls->min_version, TlsVersion::k13);
  EXPECT_EQ(l[0].tls->client_ca_file, "/srv/fledge/clients.pem");
  EXPECT_TRUE(l[0].tls->require_client_cert);
  EXPECT_EQ(l[1].redirect_https_port, 8443);
  EXPECT_EQ(l[2].redirect_https_port, 443);
  EXPECT_FALSE(l[1].tls);
  ASSERT_TRUE(r.config->admin.tls);
  ASSERT_TRUE(r.config->ofrep.tls);
  const auto& c = *r.config->clusters[0].tls;
  EXPECT_EQ(c.ca_file, "/srv/fledge/ca.pem");
  EXPECT_EQ(c.server_name, "api.internal");
  EXPECT_FALSE(c.verify);
  EXPECT_EQ(c.cert_file, "/srv/fledge/me.pem");
  EXPECT_EQ(c.min_version, TlsVersion::k13);
}

TEST(TlsConfig, NamesEveryProblem) {
  auto r = parseConfig(R"({
    "listeners": [{"address": "127.0.0.1:8443", "tls": {"certificates": [], "min_version": "1.1", "require_client_cert": true}},
                  {"address": "127.0.0.1:8444", "tls": {"certificates": [{"cert_file": ""}]}, "redirect_https": {"port": 0}},
                  {"address": "127.0.0.1:8445", "tls": {"min_version": "1.2", "ciphers": "ALL"}}],
    "clusters": {"api": {"endpoints": ["10.0.0.1:443"], "tls": {"server_name": "bad name", "cert_file": "me.pem"}}},
    "routes": [{"name": "all", "cluster": "api"}]})");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(hasError(r, "listeners[0].tls.certificates", "at least one certificate"));
  EXPECT_TRUE(hasError(r, "listeners[0].tls.min_version", "\"1.2\", \"1.3\""));
  EXPECT_TRUE(hasError(r, "listeners[0].tls.require_client_cert", "needs client_ca_file"));
  EXPECT_TRUE(hasError(r, "listeners[1].tls.certificates[0].cert_file", "must name a file"));
  EXPECT_TRUE(hasError(r, "listeners[1].tls.certificates[0].key_file", "is required"));
  EXPECT_TRUE(hasError(r, "listeners[1].redirect_https.port", "between 1 and 65535"));
  EXPECT_TRUE(hasError(r, "listeners[1].redirect_https", "plain listener"));
  EXPECT_TRUE(hasError(r, "listeners[2].tls.certificates", "is required"));
  EXPECT_TRUE(hasError(r, "listeners[2].tls.ciphers", "unknown field"));
  EXPECT_TRUE(hasError(r, "clusters.api.tls.server_name", "host name or IP address"));
  EXPECT_TRUE(hasError(r, "clusters.api.tls", "cert_file and key_file go together"));
}

}  // namespace
}  // namespace fledge::proxy
