#include "proxy/client_connection.hpp"

#include <unistd.h>

namespace fledge::proxy {
namespace asio = boost::asio;

namespace {

// Asio adopts a descriptor as blocking and "possibly duplicated": its first operation would switch
// it to non-blocking with ioctl(FIONBIO), and close() would remove it from epoll with
// EPOLL_CTL_DEL. Neither is needed here: accept4 made it non-blocking, and a descriptor nobody
// duplicates leaves the epoll set by itself when it is closed. Asio keeps both facts in its socket
// state bits (Boost 1.81, epoll reactor); this records them.
struct SocketState : ClientConnection::tcp::socket {
  static asio::detail::socket_ops::state_type& of(ClientConnection::tcp::socket& s) {
    return (s.*(&SocketState::impl_)).get_implementation().state_;
  }
};

}  // namespace

bool ClientConnection::startTls(SSL_CTX* ctx) {
  tls_ = TlsConnection::accept(ctx, descriptor());
  return tls_ != nullptr;
}

std::size_t ClientConnection::readSome(asio::mutable_buffer b, error_code& ec) {
  ec = {};
  if (b.size() == 0) return 0;
  if (tls_) return tls_->read(b.data(), b.size(), ec);
  ssize_t r;
  do r = ::recv(descriptor(), b.data(), b.size(), 0);
  while (r < 0 && errno == EINTR);
  if (r == 0) {
    ec = asio::error::eof;
    return 0;
  }
  return finish(r, ec);
}

std::size_t ClientConnection::finish(ssize_t r, error_code& ec) {
  if (r >= 0) return static_cast<std::size_t>(r);
  ec = error_code(errno, asio::error::get_system_category());
  return 0;
}

ClientConnection::tcp::socket& ClientConnection::socket() {
  if (fd_ < 0) return socket_;
  error_code ec;
  socket_.assign(protocol_, fd_, ec);  // epoll_ctl(ADD)
  if (ec) {
    ::close(fd_);
  } else {
    auto& state = SocketState::of(socket_);
    state = static_cast<asio::detail::socket_ops::state_type>((state | asio::detail::socket_ops::non_blocking) &
                                                               ~asio::detail::socket_ops::possible_dup);
  }
  fd_ = -1;
  return socket_;
}

bool ClientConnection::shutdown(tcp::socket::shutdown_type what) {
  if (!isOpen()) return false;
  if (tls_) tls_->shutdown();  // close_notify first, if the socket takes it now
  return ::shutdown(descriptor(), static_cast<int>(what)) == 0;
}

void ClientConnection::cancel() {
  error_code ec;
  if (socket_.is_open()) socket_.cancel(ec);
}

// The TLS state stays until the connection object goes: an operation in flight may still hold it.
void ClientConnection::close() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
  error_code ec;
  if (socket_.is_open()) socket_.close(ec);
}

}  // namespace fledge::proxy
