// What bench/'s own load clients (fledge_idle_conns, fledge_tls_handshakes) share: an HTTP/1.1
// response parser just good enough for the proxies' "hello world" answers, and OpenSSL client
// set-up that never resumes a session. No project code: these clients measure the proxies.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace fledge_bench {

inline bool iequalsPrefix(std::string_view line, std::string_view lower_name) {
  if (line.size() < lower_name.size()) return false;
  for (size_t i = 0; i < lower_name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != lower_name[i]) return false;
  return true;
}

// Length of the complete chunked body at the start of `body`, or nullopt if not all there yet.
inline std::optional<size_t> chunkedLength(std::string_view body) {
  size_t pos = 0;
  for (;;) {
    size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    unsigned long size = std::strtoul(std::string(body.substr(pos, eol - pos)).c_str(), nullptr, 16);
    pos = eol + 2;
    if (size == 0) {
      // Trailers, then an empty line.
      for (;;) {
        eol = body.find("\r\n", pos);
        if (eol == std::string_view::npos) return std::nullopt;
        bool empty = eol == pos;
        pos = eol + 2;
        if (empty) return pos;
      }
    }
    if (body.size() < pos + size + 2) return std::nullopt;
    pos += size + 2;
  }
}

enum class Parse { Incomplete, Done, Bad };

struct Response {
  Parse state = Parse::Incomplete;
  int status = 0;
  bool close = false;  // the server said Connection: close
  std::string why;     // for Bad
};

// Whether `in` holds one complete HTTP/1.1 response (with Content-Length or chunked), and its
// status. Bytes after the response are Bad: these clients send one request at a time.
inline Response parseResponse(std::string_view in) {
  Response r;
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return r;
  std::string_view head = in.substr(0, head_end + 2);
  if (head.substr(0, 9) != "HTTP/1.1 " || head.size() < 12) {
    r.state = Parse::Bad;
    r.why = "unexpected status line: " + std::string(head.substr(0, head.find("\r\n")));
    return r;
  }
  r.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  std::optional<size_t> content_length;
  bool chunked = false;
  for (size_t pos = head.find("\r\n") + 2; pos < head.size();) {
    size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (iequalsPrefix(line, "content-length:")) {
      content_length = std::strtoul(std::string(line.substr(15)).c_str(), nullptr, 10);
    } else if (iequalsPrefix(line, "transfer-encoding:")) {
      chunked = line.find("chunked") != std::string_view::npos;
    } else if (iequalsPrefix(line, "connection:")) {
      r.close = line.find("close") != std::string_view::npos;
    }
  }
  std::string_view body = in.substr(head_end + 4);
  std::optional<size_t> length = content_length;
  if (chunked) {
    length = chunkedLength(body);
    if (!length) return r;
  } else if (!content_length) {
    r.state = Parse::Bad;
    r.why = "response without Content-Length or chunked encoding";
    return r;
  }
  if (body.size() < *length) return r;
  r.state = body.size() == *length ? Parse::Done : Parse::Bad;
  if (r.state == Parse::Bad) r.why = "bytes after the response";
  return r;
}

// The oldest error on OpenSSL's queue for this thread, as text (and the queue cleared).
inline std::string sslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no OpenSSL error queued";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// A client context whose connections always make a full handshake: no client session cache,
// and nothing ever calls SSL_set_session. The server still issues its tickets (it cannot tell
// this client from a browser on its first visit); they are read and dropped. With a CA file
// the server's chain and name are verified, otherwise nothing is (like wrk). Buffers are
// released while a connection is idle, so thousands of idle connections stay cheap here.
inline SSL_CTX* makeClientContext(const std::string& cafile, std::string& err) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    err = "SSL_CTX_new: " + sslError();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (cafile.empty()) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_locations(ctx, cafile.c_str(), nullptr) != 1) {
      err = "cannot load " + cafile + ": " + sslError();
      SSL_CTX_free(ctx);
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  return ctx;
}

// A client connection on `fd`: SNI `servername`, and with verification on, that name checked
// against the certificate (an IP literal is checked as an IP address).
inline SSL* newClientConnection(SSL_CTX* ctx, int fd, const std::string& servername, bool verify) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return nullptr;
  SSL_set_fd(ssl, fd);
  SSL_set_connect_state(ssl);
  bool is_ip = servername.find_first_not_of("0123456789.:") == std::string::npos;
  if (!is_ip) SSL_set_tlsext_host_name(ssl, servername.c_str());
  if (verify) {
    if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), servername.c_str());
    else SSL_set1_host(ssl, servername.c_str());
  }
  return ssl;
}

// "TLSv1.3 TLS_AES_256_GCM_SHA384 x25519 EC-256": protocol, cipher, key exchange group and
// the server certificate's key, of a finished handshake.
inline std::string describeTls(SSL* ssl) {
  std::string s = SSL_get_version(ssl);
  s += ' ';
  s += SSL_get_cipher_name(ssl);
  const char* group = SSL_group_to_name(ssl, static_cast<int>(SSL_get_negotiated_group(ssl)));
  s += ' ';
  s += group != nullptr ? group : "unknown-group";
  X509* peer = SSL_get1_peer_certificate(ssl);
  EVP_PKEY* key = peer != nullptr ? X509_get0_pubkey(peer) : nullptr;
  if (key == nullptr) {
    s += " no-certificate";
  } else {
    int id = EVP_PKEY_get_base_id(key);
    s += id == EVP_PKEY_EC ? " EC-" : id == EVP_PKEY_RSA ? " RSA-" : " other-";
    s += std::to_string(EVP_PKEY_get_bits(key));
  }
  X509_free(peer);
  return s;
}

}  // namespace fledge_bench
