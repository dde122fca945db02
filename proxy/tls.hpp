#pragma once
// TLS on OpenSSL for Fledge's listeners and upstream connections. Contexts are Boost.Asio
// ssl::context objects: server contexts per certificate (SNI by exact and wildcard name, ALPN
// http/1.1, rotating session-ticket keys, optional client certificates) that reload from their
// files, and client contexts that verify upstreams. TlsConnection runs the records on a
// connection's own non-blocking descriptor (OpenSSL's socket BIO) instead of asio::ssl::stream,
// whose engine keeps two 17 KiB buffers per connection even while it is idle; with
// SSL_MODE_RELEASE_BUFFERS an idle connection here holds no record buffers at all.
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/ssl.h>

#include "proxy/tls_config.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fledge::proxy {

// Session-ticket keys of the whole process, rotated every `period`: new tickets are sealed with
// the newest key; a ticket sealed with one of the kKept newest keys still resumes (and is
// renewed when its key is not the newest). The clock is injected for tests.
class TicketKeys {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kKept = 3;
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> aes{};
    std::array<unsigned char, 32> hmac{};
    Clock::time_point created{};
  };

  explicit TicketKeys(std::chrono::seconds period, std::function<Clock::time_point()> now = Clock::now);
  Key current();  // rotates first when the newest key is older than the period
  // The kept key named `name`, if any; `renew` says whether a newer key exists.
  std::optional<Key> find(const unsigned char* name, bool& renew);
  std::size_t rotations() const;

  static TicketKeys& process();  // the one every server context uses (rotates hourly)

 private:
  void rotateIfDue();  // mu_ held
  std::function<Clock::time_point()> now_;
  std::chrono::seconds period_;
  mutable std::mutex mu_;
  std::vector<Key> keys_;  // newest first
  std::size_t rotations_ = 0;
};

// How a certificate's DNS name `cert_name` (lowercase; "*.example.com" wildcards one leftmost
// label) covers a requested `host` (any case, a trailing dot allowed): 2 exactly, 1 by its
// wildcard, 0 not at all.
int nameMatch(std::string_view cert_name, std::string_view host);

// One loaded certificate, for logs and the expiry metric.
struct LoadedCertificate {
  std::string cert_file;
  std::vector<std::string> names;  // DNS names of the subjectAltName (else the common name)
  std::int64_t not_after = 0;      // Unix seconds
};

// A listener's server contexts for one reading of its files. Immutable once built; a connection
// keeps the set it started its handshake with.
class ServerTls {
 public:
  // Loads every certificate and key. Fails with a message naming the file and OpenSSL's reason.
  static std::shared_ptr<const ServerTls> create(const TlsServerConfig& cfg, std::string& error);

  SSL_CTX* defaultContext() const { return contexts_.front()->native_handle(); }
  boost::asio::ssl::context& defaultAsioContext() const { return *contexts_.front(); }
  const std::vector<LoadedCertificate>& certificates() const { return certs_; }
  // The context whose certificate names `host` (exact first, then a "*." wildcard for one label);
  // null when none does (the default then answers).
  SSL_CTX* select(std::string_view host) const;

 private:
  std::vector<std::unique_ptr<boost::asio::ssl::context>> contexts_;  // index-aligned with certs_
  std::vector<LoadedCertificate> certs_;
};

// A listener's certificates as they are now: reloaded on SIGHUP and when the files change. A bad
// new file keeps the previous contexts (and says why); established connections are never touched.
class ReloadableServerTls {
 public:
  ReloadableServerTls(std::string listener, TlsServerConfig cfg, std::shared_ptr<const ServerTls> loaded);
  static std::shared_ptr<ReloadableServerTls> create(std::string listener, const TlsServerConfig& cfg, std::string& error);

  std::shared_ptr<const ServerTls> current() const;
  const std::string& listener() const { return listener_; }
  // Re-reads the files; true if the new ones are in use. `error` says why not.
  bool reload(std::string& error);
  // Whether any file changed (inode, size or modification time) since it was last read.
  bool filesChanged() const;

 private:
  std::string fingerprint() const;
  std::string listener_;
  TlsServerConfig cfg_;
  mutable std::mutex mu_;
  std::shared_ptr<const ServerTls> current_;
  std::string loaded_fingerprint_;
};

// Every reloadable listener of the process: SIGHUP reloads them all, a watcher thread reloads
// those whose files changed, and the metrics read their certificates' expiry.
namespace tls_registry {
void add(std::shared_ptr<ReloadableServerTls> listener);
// A listener that is gone or replaced by a reload: its certificates are no longer reloaded or reported.
void remove(const ReloadableServerTls* listener);
void clear();
// Reloads every listener (`force`) or only those whose files changed; logs each result.
// Returns the number of listeners that failed.
std::size_t reload(bool force);
// Polls the files every `interval` on a thread of its own until stopWatching().
void startWatching(std::chrono::milliseconds interval);
void stopWatching();
struct CertificateState {
  std::string listener;
  LoadedCertificate cert;
};
std::vector<CertificateState> certificates();
struct Counts {
  std::uint64_t reloads_ok = 0, reloads_failed = 0;
};
Counts counts();
}  // namespace tls_registry

// An upstream client context. Contexts are shared by configurations whose block and files are the
// same, so republishing a configuration does not re-read them.
class ClientTls {
 public:
  static std::shared_ptr<const ClientTls> obtain(const TlsClientConfig& cfg, std::string& error);
  SSL_CTX* context() const { return ctx_->native_handle(); }
  boost::asio::ssl::context& asioContext() const { return *ctx_; }
  const TlsClientConfig& config() const { return cfg_; }

 private:
  TlsClientConfig cfg_;
  std::unique_ptr<boost::asio::ssl::context> ctx_;
};

// TLS records on a connected, non-blocking descriptor. Every call is non-blocking: would_block
// means wait until want() (readable or writable) and call again with the same arguments.
class TlsConnection {
 public:
  using error_code = boost::system::error_code;
  enum class Want { kRead, kWrite };

  // Server side: `ctx` picks the certificate (SNI may switch it).
  static std::unique_ptr<TlsConnection> accept(SSL_CTX* ctx, int fd);
  // Client side: SNI `server_name` (unless it is an IP address); verification per the context,
  // against `server_name` when verify is on.
  static std::unique_ptr<TlsConnection> connect(const ClientTls& tls, int fd, const std::string& server_name);
  ~TlsConnection();
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  bool handshake(error_code& ec);  // true when complete
  std::size_t read(void* data, std::size_t size, error_code& ec);  // eof at close_notify or FIN
  template <class ConstBufferSequence>
  std::size_t write(const ConstBufferSequence& buffers, error_code& ec);
  // Plaintext is already decrypted and waiting (no need to wait for the descriptor).
  bool pending() const { return SSL_has_pending(ssl_) == 1; }
  Want want() const { return want_; }
  // Sends close_notify if it can without waiting.
  void shutdown();
  // Why the last handshake failed, in words (certificate verification results included).
  std::string failure() const;
  SSL* native() const { return ssl_; }

 private:
  explicit TlsConnection(SSL* ssl) : ssl_(ssl) {}
  std::size_t writeOne(const void* data, std::size_t size, error_code& ec);
  std::size_t finish(int ok, std::size_t n, error_code& ec);
  SSL* ssl_;
  Want want_ = Want::kRead;
  std::string failure_;
};

template <class ConstBufferSequence>
std::size_t TlsConnection::write(const ConstBufferSequence& buffers, error_code& ec) {
  // Small pieces (a head and a body chunk) go out as one record; a piece of a full record or more
  // is written in place. The same bytes come back after would_block (the caller's buffers do not
  // change), which is what OpenSSL asks of a retried write (moving buffers are allowed).
  constexpr std::size_t kRecord = 16 * 1024;
  std::size_t total = 0;
  ec = {};
  auto it = boost::asio::buffer_sequence_begin(buffers);
  const auto end = boost::asio::buffer_sequence_end(buffers);
  std::size_t skip = 0;  // bytes of *it already written
  while (it != end) {
    boost::asio::const_buffer first(*it);
    first += skip;
    if (first.size() == 0) {
      ++it;
      skip = 0;
      continue;
    }
    std::size_t n;
    if (first.size() >= kRecord) {
      n = writeOne(first.data(), first.size(), ec);
    } else {
      std::array<char, kRecord> joined;
      std::size_t len = 0;
      auto j = it;
      std::size_t jskip = skip;
      while (j != end && len < kRecord) {
        boost::asio::const_buffer b(*j);
        b += jskip;
        len += boost::asio::buffer_copy(boost::asio::buffer(joined.data() + len, kRecord - len), b);
        ++j;
        jskip = 0;
      }
      n = writeOne(joined.data(), len, ec);
    }
    if (ec) return total != 0 && ec == boost::asio::error::would_block ? (ec = {}, total) : total;
    total += n;
    // Advance n bytes through the sequence.
    while (n != 0 && it != end) {
      std::size_t left = boost::asio::buffer_size(boost::asio::const_buffer(*it)) - skip;
      if (n < left) {
        skip += n;
        n = 0;
      } else {
        n -= left;
        ++it;
        skip = 0;
      }
    }
  }
  return total;
}

// Asynchronous operations on a TlsConnection whose descriptor `socket` waits on: they try first
// and wait (readable or writable, as OpenSSL asks) only when they must. An operation that
// completes at once completes through a post, never inside its initiation.
namespace tls_ops {

// `Step(TlsConnection&, std::size_t& n, error_code& ec)`: one non-blocking attempt.
template <class Step>
struct Op {
  TlsConnection& tls;
  boost::asio::ip::tcp::socket& socket;
  Step step;
  enum class State { kStart, kWaiting, kPosted } state = State::kStart;
  boost::system::error_code ec_{};
  std::size_t n_ = 0;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}) {
    if (state == State::kPosted) return self.complete(ec_, n_);
    if (state == State::kWaiting && ec) return self.complete(ec, 0);
    std::size_t n = 0;
    boost::system::error_code e;
    step(tls, n, e);
    if (e != boost::asio::error::would_block) {
      if (state == State::kWaiting) return self.complete(e, n);
      state = State::kPosted;
      ec_ = e;
      n_ = n;
      return boost::asio::post(socket.get_executor(), std::move(self));
    }
    state = State::kWaiting;
    socket.async_wait(tls.want() == TlsConnection::Want::kWrite ? boost::asio::ip::tcp::socket::wait_write
                                                                 : boost::asio::ip::tcp::socket::wait_read,
                      std::move(self));
  }
};

template <class Step, class Token>
auto start(TlsConnection& tls, boost::asio::ip::tcp::socket& socket, Step step, Token&& token) {
  return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
      Op<Step>{tls, socket, std::move(step)}, token, socket);
}

template <class MutableBufferSequence, class Token>
auto asyncReadSome(TlsConnection& tls, boost::asio::ip::tcp::socket& socket, const MutableBufferSequence& buffers, Token&& token) {
  boost::asio::mutable_buffer b;
  for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it)
    if ((b = boost::asio::mutable_buffer(*it)).size() != 0) break;
  return start(
      tls, socket, [b](TlsConnection& t, std::size_t& n, boost::system::error_code& ec) { n = b.size() ? t.read(b.data(), b.size(), ec) : 0; },
      std::forward<Token>(token));
}

template <class ConstBufferSequence, class Token>
auto asyncWriteSome(TlsConnection& tls, boost::asio::ip::tcp::socket& socket, const ConstBufferSequence& buffers, Token&& token) {
  return start(
      tls, socket, [buffers](TlsConnection& t, std::size_t& n, boost::system::error_code& ec) { n = t.write(buffers, ec); },
      std::forward<Token>(token));
}

template <class Token>
auto asyncHandshake(TlsConnection& tls, boost::asio::ip::tcp::socket& socket, Token&& token) {
  return start(
      tls, socket,
      [](TlsConnection& t, std::size_t& n, boost::system::error_code& ec) {
        n = 0;
        t.handshake(ec);
      },
      std::forward<Token>(token));
}

}  // namespace tls_ops

}  // namespace fledge::proxy
