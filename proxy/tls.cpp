#include "proxy/tls.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <map>
#include <thread>

#include "proxy/log.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using error_code = boost::system::error_code;

namespace {

// Mozilla's "intermediate" TLS 1.2 suites: forward secrecy and AEAD only. TLS 1.3 suites are
// OpenSSL's defaults, all strong.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";

// OpenSSL's queued errors, oldest first, as one line (and the queue emptied).
std::string opensslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

int versionOf(TlsVersion v) { return v == TlsVersion::k13 ? TLS1_3_VERSION : TLS1_2_VERSION; }

// What every context shares: protocol floor, modes that keep idle connections small and let a
// retried write come from a moved buffer, no compression or renegotiation, and a FIN without
// close_notify read as end of stream (HTTP framing, not the TLS alert, says whether a message is whole).
bool commonSetup(ssl::context& ctx, TlsVersion min_version, std::string& error) {
  SSL_CTX* c = ctx.native_handle();
  SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // One read() takes whatever has arrived, not a record header and then its body (two calls per
  // record). What it reads beyond the record stays in OpenSSL; SSL_has_pending() sees it.
  SSL_CTX_set_read_ahead(c, 1);
  if (SSL_CTX_set_min_proto_version(c, versionOf(min_version)) != 1 || SSL_CTX_set_cipher_list(c, kCiphers12) != 1 ||
      SSL_CTX_set1_groups_list(c, kGroups) != 1) {
    error = "cannot set TLS defaults: " + opensslErrors();
    return false;
  }
  return true;
}

bool loadKeyPair(ssl::context& ctx, const std::string& cert_file, const std::string& key_file, std::string& error) {
  SSL_CTX* c = ctx.native_handle();
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(c, cert_file.c_str()) != 1) {
    error = "cannot load certificate \"" + cert_file + "\": " + opensslErrors();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(c, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load private key \"" + key_file + "\": " + opensslErrors();
    return false;
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    error = "private key \"" + key_file + "\" does not match certificate \"" + cert_file + "\": " + opensslErrors();
    return false;
  }
  return true;
}

std::int64_t notAfter(const X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::vector<std::string> namesOf(X509* cert) {
  std::vector<std::string> names;
  if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const auto* s = gn->d.dNSName;
      std::string name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<std::size_t>(ASN1_STRING_length(s)));
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      names.push_back(std::move(name));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    char cn[256];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0) {
      std::string name(cn);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
      names.push_back(std::move(name));
    }
  }
  return names;
}

// Session tickets: sealed with the process's newest key (AES-256-CBC + HMAC-SHA256, OpenSSL's
// ticket format), opened with any kept key.
int ticketCallback(SSL*, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  // Fetched once: OpenSSL 3 would otherwise look the implementation up (locks, name compares)
  // for every ticket.
  static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (!aes) return -1;
  auto& keys = TicketKeys::process();
  TicketKeys::Key key;
  int result = 1;
  if (enc) {
    key = keys.current();
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
    if (EVP_EncryptInit_ex(cipher, aes, nullptr, key.aes.data(), iv) != 1) return -1;
  } else {
    bool renew = false;
    auto found = keys.find(key_name, renew);
    if (!found) return 0;  // unknown or expired key: a full handshake
    key = *found;
    if (EVP_DecryptInit_ex(cipher, aes, nullptr, key.aes.data(), iv) != 1) return -1;
    result = renew ? 2 : 1;
  }
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac.data(), key.hmac.size()),
                         OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0), OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  return result;
}

// ALPN: HTTP/1.1 when the client offers it; a client that offers only other protocols gets no
// ALPN answer rather than a failed handshake.
int alpnCallback(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kHttp11, sizeof kHttp11, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

std::string fileFingerprint(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ":missing;";
  return path + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + ";";
}

// SNI picks the certificate as soon as the ClientHello is in, before OpenSSL looks at a session
// ticket: the switch brings the chosen context's session id context, so a ticket made under
// another certificate or client-certificate policy does not resume (a full handshake instead).
// The extension's layout (RFC 6066 §3): list length, then type, name length, name.
int clientHelloCallback(SSL* ssl, int*, void* arg) {
  const unsigned char* p = nullptr;
  std::size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5) return SSL_CLIENT_HELLO_SUCCESS;
  const std::size_t list = (std::size_t{p[0]} << 8) | p[1];
  const std::size_t name_len = (std::size_t{p[3]} << 8) | p[4];
  if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name || name_len + 3 > list) return SSL_CLIENT_HELLO_SUCCESS;
  const std::string_view name(reinterpret_cast<const char*>(p + 5), name_len);
  if (SSL_CTX* ctx = static_cast<const ServerTls*>(arg)->select(name); ctx && ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_CLIENT_HELLO_SUCCESS;
}

// The name was acted on in clientHelloCallback; acknowledging it keeps it in the session.
int servernameCallback(SSL*, int*, void*) { return SSL_TLSEXT_ERR_OK; }

// A session resumes only where it was made: same certificate, same client-certificate policy.
std::array<unsigned char, SSL_MAX_SID_CTX_LENGTH> sessionContext(const TlsServerConfig& cfg, std::size_t cert) {
  std::string policy = "fledge\0" + cfg.certificates[cert].cert_file + '\0' + cfg.certificates[cert].key_file + '\0' +
                       (cfg.client_ca_file.empty() ? "" : fileFingerprint(cfg.client_ca_file)) + '\0' +
                       (cfg.require_client_cert ? "required" : "optional") + '\0' + (cfg.min_version == TlsVersion::k13 ? "13" : "12");
  std::array<unsigned char, SSL_MAX_SID_CTX_LENGTH> out{};
  unsigned int n = 0;
  EVP_Digest(policy.data(), policy.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}


bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Ticket keys

TicketKeys::TicketKeys(std::chrono::seconds period, std::function<Clock::time_point()> now) : now_(std::move(now)), period_(period) {}

void TicketKeys::rotateIfDue() {
  const auto now = now_();
  if (!keys_.empty() && now - keys_.front().created < period_) return;
  Key k;
  if (RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) != 1 || RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) != 1 ||
      RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) != 1)
    return;  // keep the old key rather than use a weak one
  k.created = now;
  if (!keys_.empty()) ++rotations_;
  keys_.insert(keys_.begin(), k);
  if (keys_.size() > kKept) keys_.resize(kKept);
}

TicketKeys::Key TicketKeys::current() {
  std::lock_guard lock(mu_);
  rotateIfDue();
  return keys_.front();
}

std::optional<TicketKeys::Key> TicketKeys::find(const unsigned char* name, bool& renew) {
  std::lock_guard lock(mu_);
  rotateIfDue();
  for (std::size_t i = 0; i < keys_.size(); ++i)
    if (std::memcmp(keys_[i].name.data(), name, keys_[i].name.size()) == 0) {
      renew = i != 0;
      return keys_[i];
    }
  return std::nullopt;
}

std::size_t TicketKeys::rotations() const {
  std::lock_guard lock(mu_);
  return rotations_;
}

TicketKeys& TicketKeys::process() {
  static TicketKeys keys(std::chrono::hours(1));
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Server contexts

std::shared_ptr<const ServerTls> ServerTls::create(const TlsServerConfig& cfg, std::string& error) {
  if (cfg.certificates.empty()) {
    error = "no certificate";
    return nullptr;
  }
  auto out = std::make_shared<ServerTls>();
  for (const auto& files : cfg.certificates) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    SSL_CTX* c = ctx->native_handle();
    if (!commonSetup(*ctx, cfg.min_version, error) || !loadKeyPair(*ctx, files.cert_file, files.key_file, error)) return nullptr;
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Resumption by tickets only (shared by every worker, survive a reload); no per-process cache.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(c, 1);
    const auto sid = sessionContext(cfg, out->contexts_.size());
    SSL_CTX_set_session_id_context(c, sid.data(), sid.size());
    SSL_CTX_set_timeout(c, static_cast<long>(TicketKeys::kKept - 1) * 3600);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(c, ticketCallback);
    SSL_CTX_set_alpn_select_cb(c, alpnCallback, nullptr);
    SSL_CTX_set_client_hello_cb(c, clientHelloCallback, out.get());
    SSL_CTX_set_tlsext_servername_callback(c, servernameCallback);
    SSL_CTX_set_tlsext_servername_arg(c, out.get());
    if (!cfg.client_ca_file.empty()) {
      ERR_clear_error();
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca_file.c_str());
      if (!names || SSL_CTX_load_verify_locations(c, cfg.client_ca_file.c_str(), nullptr) != 1) {
        if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
        error = "cannot load client CA file \"" + cfg.client_ca_file + "\": " + opensslErrors();
        return nullptr;
      }
      SSL_CTX_set_client_CA_list(c, names);
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER | (cfg.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    }
    X509* cert = SSL_CTX_get0_certificate(c);
    out->certs_.push_back({files.cert_file, namesOf(cert), notAfter(cert)});
    out->contexts_.push_back(std::move(ctx));
  }
  return out;
}

int nameMatch(std::string_view cert_name, std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return 0;
  if (iequal(cert_name, host)) return 2;
  if (cert_name.size() < 3 || cert_name.substr(0, 2) != "*.") return 0;
  const auto dot = host.find('.');
  if (dot == std::string_view::npos || dot == 0) return 0;
  return iequal(cert_name.substr(1), host.substr(dot)) ? 1 : 0;
}

SSL_CTX* ServerTls::select(std::string_view host) const {
  // An exact name wins over a wildcard; among equals, the certificate listed first.
  int best = 0;
  SSL_CTX* chosen = nullptr;
  for (std::size_t i = 0; i < certs_.size() && best < 2; ++i)
    for (const auto& n : certs_[i].names)
      if (int m = nameMatch(n, host); m > best) {
        best = m;
        chosen = contexts_[i]->native_handle();
      }
  return chosen;
}

ReloadableServerTls::ReloadableServerTls(std::string listener, TlsServerConfig cfg, std::shared_ptr<const ServerTls> loaded)
    : listener_(std::move(listener)), cfg_(std::move(cfg)), current_(std::move(loaded)) {
  loaded_fingerprint_ = fingerprint();
}

std::shared_ptr<ReloadableServerTls> ReloadableServerTls::create(std::string listener, const TlsServerConfig& cfg, std::string& error) {
  auto loaded = ServerTls::create(cfg, error);
  if (!loaded) return nullptr;
  return std::make_shared<ReloadableServerTls>(std::move(listener), cfg, std::move(loaded));
}

std::string ReloadableServerTls::fingerprint() const {
  std::string fp;
  for (const auto& c : cfg_.certificates) fp += fileFingerprint(c.cert_file) + fileFingerprint(c.key_file);
  if (!cfg_.client_ca_file.empty()) fp += fileFingerprint(cfg_.client_ca_file);
  return fp;
}

std::shared_ptr<const ServerTls> ReloadableServerTls::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

bool ReloadableServerTls::filesChanged() const {
  const auto fp = fingerprint();
  std::lock_guard lock(mu_);
  return fp != loaded_fingerprint_;
}

bool ReloadableServerTls::reload(std::string& error) {
  const auto fp = fingerprint();  // before reading: a change during the read shows up next time
  auto fresh = ServerTls::create(cfg_, error);
  std::lock_guard lock(mu_);
  loaded_fingerprint_ = fp;  // a bad file is reported once, not every poll
  if (!fresh) return false;
  current_ = std::move(fresh);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Registry and watcher

namespace tls_registry {
namespace {
struct Registry {
  std::mutex mu;
  std::vector<std::shared_ptr<ReloadableServerTls>> listeners;
  std::atomic<std::uint64_t> ok{0}, failed{0};
  std::mutex watch_mu;
  std::condition_variable watch_cv;
  bool watching = false;
  std::thread watcher;
};
Registry& registry() {
  static Registry r;
  return r;
}
}  // namespace

void add(std::shared_ptr<ReloadableServerTls> listener) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.listeners.push_back(std::move(listener));
}

void remove(const ReloadableServerTls* listener) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  std::erase_if(r.listeners, [&](const auto& l) { return l.get() == listener; });
}

void clear() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.listeners.clear();
}

std::size_t reload(bool force) {
  auto& r = registry();
  std::vector<std::shared_ptr<ReloadableServerTls>> all;
  {
    std::lock_guard lock(r.mu);
    all = r.listeners;
  }
  std::size_t failed = 0;
  for (const auto& l : all) {
    if (!force && !l->filesChanged()) continue;
    std::string error;
    if (l->reload(error)) {
      r.ok.fetch_add(1, std::memory_order_relaxed);
      std::string names;
      for (const auto& c : l->current()->certificates())
        for (const auto& n : c.names) names += (names.empty() ? "" : ",") + n;
      log::info("TLS certificates reloaded", {{"listener", l->listener()}, {"names", names}});
    } else {
      ++failed;
      r.failed.fetch_add(1, std::memory_order_relaxed);
      log::error("TLS certificate reload failed; the previous certificates stay in use",
                 {{"listener", l->listener()}, {"error", error}});
    }
  }
  return failed;
}

void startWatching(std::chrono::milliseconds interval) {
  auto& r = registry();
  std::lock_guard lock(r.watch_mu);
  if (r.watching) return;
  r.watching = true;
  r.watcher = std::thread([interval, &r] {
    std::unique_lock lock(r.watch_mu);
    while (!r.watch_cv.wait_for(lock, interval, [&] { return !r.watching; })) {
      lock.unlock();
      reload(false);
      lock.lock();
    }
  });
}

void stopWatching() {
  auto& r = registry();
  {
    std::lock_guard lock(r.watch_mu);
    if (!r.watching) return;
    r.watching = false;
  }
  r.watch_cv.notify_all();
  if (r.watcher.joinable()) r.watcher.join();
}

std::vector<CertificateState> certificates() {
  auto& r = registry();
  std::vector<std::shared_ptr<ReloadableServerTls>> all;
  {
    std::lock_guard lock(r.mu);
    all = r.listeners;
  }
  std::vector<CertificateState> out;
  for (const auto& l : all)
    for (const auto& c : l->current()->certificates()) out.push_back({l->listener(), c});
  return out;
}

Counts counts() {
  auto& r = registry();
  return {r.ok.load(std::memory_order_relaxed), r.failed.load(std::memory_order_relaxed)};
}
}  // namespace tls_registry

// ---------------------------------------------------------------------------------------------
// Client contexts

std::shared_ptr<const ClientTls> ClientTls::obtain(const TlsClientConfig& cfg, std::string& error) {
  // Same block, same files (by inode, size and time): the same context.
  std::string key = cfg.ca_file + '\0' + cfg.server_name + '\0' + (cfg.verify ? "1" : "0") + cfg.cert_file + '\0' + cfg.key_file + '\0' +
                    (cfg.min_version == TlsVersion::k13 ? "13" : "12") + '\0';
  for (const auto* f : {&cfg.ca_file, &cfg.cert_file, &cfg.key_file})
    if (!f->empty()) key += fileFingerprint(*f);
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const ClientTls>> cache;
  std::lock_guard lock(mu);
  if (auto it = cache.find(key); it != cache.end())
    if (auto hit = it->second.lock()) return hit;

  auto out = std::make_shared<ClientTls>();
  out->cfg_ = cfg;
  out->ctx_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX* c = out->ctx_->native_handle();
  if (!commonSetup(*out->ctx_, cfg.min_version, error)) return nullptr;
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  ERR_clear_error();
  if (!cfg.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(c, cfg.ca_file.c_str(), nullptr) != 1) {
      error = "cannot load CA file \"" + cfg.ca_file + "\": " + opensslErrors();
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
    error = "cannot load the system's trust store: " + opensslErrors();
    return nullptr;
  }
  if (!cfg.cert_file.empty() && !loadKeyPair(*out->ctx_, cfg.cert_file, cfg.key_file, error)) return nullptr;
  SSL_CTX_set_verify(c, cfg.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
  cache[key] = out;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Connections

std::unique_ptr<TlsConnection> TlsConnection::accept(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  if (!ssl) return nullptr;
  if (SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return std::unique_ptr<TlsConnection>(new TlsConnection(ssl));
}

std::unique_ptr<TlsConnection> TlsConnection::connect(const ClientTls& tls, int fd, const std::string& server_name) {
  SSL* ssl = SSL_new(tls.context());
  if (!ssl) return nullptr;
  std::unique_ptr<TlsConnection> conn(new TlsConnection(ssl));
  if (SSL_set_fd(ssl, fd) != 1) return nullptr;
  SSL_set_connect_state(ssl);
  error_code ec;
  const auto ip = asio::ip::make_address(server_name, ec);
  if (ec && !server_name.empty()) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (tls.config().verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (!ec) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str()) != 1) return nullptr;
    } else if (SSL_set1_host(ssl, server_name.c_str()) != 1) {
      return nullptr;
    }
  }
  return conn;
}

TlsConnection::~TlsConnection() { SSL_free(ssl_); }

std::size_t TlsConnection::finish(int ok, std::size_t n, error_code& ec) {
  if (ok == 1) {
    ec = {};
    return n;
  }
  const int err = SSL_get_error(ssl_, ok);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      want_ = Want::kRead;
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_WANT_WRITE:
      want_ = Want::kWrite;
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      ec = errno != 0 ? error_code(errno, asio::error::get_system_category()) : error_code(asio::error::eof);
      ERR_clear_error();
      break;
    default: {
      const unsigned long e = ERR_peek_last_error();
      if (failure_.empty()) failure_ = opensslErrors();
      ec = e ? error_code(static_cast<int>(e), asio::error::get_ssl_category()) : error_code(asio::error::fault);
      ERR_clear_error();
    }
  }
  return 0;
}

bool TlsConnection::handshake(error_code& ec) {
  ERR_clear_error();
  errno = 0;
  const int r = SSL_do_handshake(ssl_);
  finish(r, 0, ec);
  if (ec && ec != asio::error::would_block) {
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) failure_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    else if (failure_.empty()) failure_ = ec == asio::error::eof ? "peer closed the connection during the handshake" : ec.message();
  }
  return r == 1;
}

std::size_t TlsConnection::read(void* data, std::size_t size, error_code& ec) {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int r = SSL_read_ex(ssl_, data, size, &n);
  return finish(r, n, ec);
}

std::size_t TlsConnection::writeOne(const void* data, std::size_t size, error_code& ec) {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  const int r = SSL_write_ex(ssl_, data, size, &n);
  return finish(r, n, ec);
}

void TlsConnection::shutdown() {
  if (SSL_is_init_finished(ssl_) != 1) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsConnection::failure() const { return failure_.empty() ? "unknown error" : failure_; }

}  // namespace fledge::proxy
