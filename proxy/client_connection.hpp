#pragma once
// A client connection's socket that joins Asio's reactor (epoll) only when it first has to wait.
// An exchange whose request is already there when the connection is accepted and whose response
// the socket takes at once — a Connection: close request, nearly always — never registers: one
// epoll_ctl and the reactor's bookkeeping fewer per connection. Reads and writes that must not
// wait go straight to the descriptor; anything asynchronous goes through socket().
// On a TLS listener the same calls carry TLS records (startTls, then asyncHandshake); the
// asynchronous reads and writes (async_read_some, async_write_some: an Asio stream, so Beast and
// asio::async_write take it) then wait for whatever OpenSSL needs.
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cerrno>
#include <memory>

#include "proxy/tls.hpp"

namespace fledge::proxy {

class ClientConnection {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  // `fd` is an accepted, non-blocking descriptor (accept4 with SOCK_NONBLOCK); this owns it.
  ClientConnection(boost::asio::io_context& ioc, tcp protocol, int fd) : socket_(ioc), protocol_(protocol), fd_(fd) {}
  ~ClientConnection() { close(); }
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  using executor_type = tcp::socket::executor_type;
  executor_type get_executor() { return socket_.get_executor(); }

  // TLS from now on, server side; false if OpenSSL could not make the connection.
  bool startTls(SSL_CTX* ctx);
  bool secure() const { return tls_ != nullptr; }
  const TlsConnection* tls() const { return tls_.get(); }
  template <class Handler>
  void asyncHandshake(Handler&& handler) {
    tls_ops::asyncHandshake(*tls_, socket(), std::forward<Handler>(handler));
  }

  // Non-blocking: would_block when nothing is there yet, eof when the client closed.
  std::size_t readSome(boost::asio::mutable_buffer b, error_code& ec);

  // Non-blocking: as much as the socket takes now (would_block if nothing). `flags`: extra
  // send(2) flags, e.g. MSG_MORE for a last piece that a FIN follows at once.
  template <class ConstBufferSequence>
  std::size_t writeSome(const ConstBufferSequence& buffers, error_code& ec, int flags = 0) {
    if (tls_) return tls_->write(buffers, ec);
    std::array<iovec, kMaxIov> iov;
    std::size_t n = 0, total = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers) && n < kMaxIov; ++it) {
      boost::asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      iov[n].iov_base = const_cast<void*>(b.data());
      iov[n].iov_len = b.size();
      total += b.size();
      ++n;
    }
    ec = {};
    if (total == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = n;
    ssize_t r;
    do r = ::sendmsg(descriptor(), &msg, MSG_NOSIGNAL | flags);
    while (r < 0 && errno == EINTR);
    return finish(r, ec);
  }

  // The Asio socket for operations that wait; registers the descriptor on first use. If that
  // fails the connection is closed, and the operation fails with bad_descriptor. Reading or
  // writing through it directly bypasses TLS: only waits and lingering reads of discarded bytes do.
  tcp::socket& socket();

  // Asio stream operations (plain: the socket's own).
  template <class MutableBufferSequence, class Handler>
  void async_read_some(const MutableBufferSequence& buffers, Handler&& handler) {
    if (tls_) return tls_ops::asyncReadSome(*tls_, socket(), buffers, std::forward<Handler>(handler));
    socket().async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class ConstBufferSequence, class Handler>
  void async_write_some(const ConstBufferSequence& buffers, Handler&& handler) {
    if (tls_) return tls_ops::asyncWriteSome(*tls_, socket(), buffers, std::forward<Handler>(handler));
    socket().async_write_some(buffers, std::forward<Handler>(handler));
  }
  // Completes when a readSome may find something: the descriptor is readable, or TLS already
  // holds decrypted bytes (then at once, through a post).
  template <class Handler>
  void asyncWaitReadable(Handler&& handler) {
    if (tls_ && tls_->pending()) return boost::asio::post(socket().get_executor(), std::bind(std::forward<Handler>(handler), error_code{}));
    socket().async_wait(tls_ && tls_->want() == TlsConnection::Want::kWrite ? tcp::socket::wait_write : tcp::socket::wait_read,
                        std::forward<Handler>(handler));
  }

  bool shutdown(tcp::socket::shutdown_type what);  // false: not connected (any more)
  void cancel();  // pending asynchronous operations complete with operation_aborted
  void close();
  bool isOpen() const { return fd_ >= 0 || socket_.is_open(); }

 private:
  static constexpr std::size_t kMaxIov = 8;
  int descriptor() { return fd_ >= 0 ? fd_ : socket_.native_handle(); }
  static std::size_t finish(ssize_t r, error_code& ec);

  tcp::socket socket_;
  tcp protocol_;
  int fd_;  // >= 0 until the descriptor is handed to socket_
  std::unique_ptr<TlsConnection> tls_;
};

}  // namespace fledge::proxy
