#pragma once
// A connection to an upstream endpoint: a TCP socket, and TLS on it when the cluster speaks TLS.
// An Asio stream (async_read_some / async_write_some), so Beast's parsers and asio::async_write
// use it the same way either way; pooled and reused like a plain socket.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>

#include "proxy/tls.hpp"

namespace fledge::proxy {

class UpstreamConnection {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;
  using executor_type = tcp::socket::executor_type;

  explicit UpstreamConnection(boost::asio::io_context& ioc) : socket_(ioc) {}
  UpstreamConnection(UpstreamConnection&&) = default;
  UpstreamConnection& operator=(UpstreamConnection&&) = default;

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& socket() { return socket_; }
  bool is_open() const { return socket_.is_open(); }
  void cancel(error_code& ec) { socket_.cancel(ec); }
  void close(error_code& ec) { socket_.close(ec); }  // TLS state goes with the object

  template <class Handler>
  void async_connect(const tcp::endpoint& ep, Handler&& handler) {
    tls_.reset();
    socket_.async_connect(ep, std::forward<Handler>(handler));
  }

  // After connecting: TLS as a client of `tls`, verifying `server_name`. False if OpenSSL could
  // not set the connection up.
  bool startTls(const ClientTls& tls, const std::string& server_name) {
    tls_ = TlsConnection::connect(tls, socket_.native_handle(), server_name);
    return tls_ != nullptr;
  }
  template <class Handler>
  void asyncHandshake(Handler&& handler) {
    tls_ops::asyncHandshake(*tls_, socket_, std::forward<Handler>(handler));
  }
  const TlsConnection* tls() const { return tls_.get(); }

  template <class MutableBufferSequence, class Handler>
  void async_read_some(const MutableBufferSequence& buffers, Handler&& handler) {
    if (tls_) return tls_ops::asyncReadSome(*tls_, socket_, buffers, std::forward<Handler>(handler));
    socket_.async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class ConstBufferSequence, class Handler>
  void async_write_some(const ConstBufferSequence& buffers, Handler&& handler) {
    if (tls_) return tls_ops::asyncWriteSome(*tls_, socket_, buffers, std::forward<Handler>(handler));
    socket_.async_write_some(buffers, std::forward<Handler>(handler));
  }

  // For a kept-alive connection about to be reused: true when nothing at all is waiting on it (a
  // byte would belong to no request, EOF means the peer is gone). TLS records the peer may send
  // on an idle connection without data (session tickets) are consumed and do not count.
  bool idleAndClean();

 private:
  tcp::socket socket_;
  std::unique_ptr<TlsConnection> tls_;
};

}  // namespace fledge::proxy
