#include "admin/http_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <type_traits>

#include "proxy/log.hpp"
#include "proxy/tls.hpp"

namespace fledge::admin {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using PlainStream = beast::tcp_stream;
using TlsStream = asio::ssl::stream<beast::tcp_stream>;

// One client connection: requests in order, one at a time. The same loop serves plain and TLS
// streams; only the start (handshake) and the close (close_notify) differ.
template <class Stream>
class HttpServer::Connection : public std::enable_shared_from_this<Connection<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Connection(const HttpServer& server, tcp::socket socket)
    requires(!kTls)
      : server_(server), stream_(std::move(socket)) {}
  // `tls` is the listener's certificate set at accept time, kept for the connection's life (the
  // stream uses its context).
  Connection(const HttpServer& server, tcp::socket socket, std::shared_ptr<const proxy::ServerTls> tls)
    requires kTls
      : server_(server), tls_(std::move(tls)), stream_(std::move(socket), tls_->defaultAsioContext()) {}

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(server_.options_.read_timeout);
      stream_.async_handshake(asio::ssl::stream_base::server,
                              beast::bind_front_handler(&Connection::onHandshake, this->shared_from_this()));
    } else {
      read(true);
    }
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  // A failed handshake is everyday noise on an open port (scanners, plain HTTP, clients that do
  // not trust the certificate): counted, and logged at debug level only.
  void onHandshake(beast::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      server_.tls_handshakes_.fetch_add(1, std::memory_order_relaxed);
      return read(true);
    }
    server_.tls_handshake_failures_.fetch_add(1, std::memory_order_relaxed);
    if (log::enabled(log::Level::kDebug)) {
      beast::error_code ignored;
      const auto peer = lowest().socket().remote_endpoint(ignored);
      log::debug("TLS handshake failed", {{"peer", peer.address().to_string() + ":" + std::to_string(peer.port())},
                                          {"error", ec.message()}});
    }
  }

  void read(bool first) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.max_header_bytes));
    parser_->body_limit(server_.options_.max_body_bytes);
    lowest().expires_after(first ? server_.options_.read_timeout : server_.options_.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Connection::onRead, this->shared_from_this()));
  }

  void onRead(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == http::error::body_limit) return fail(http::status::payload_too_large, "request body too large");
      if (ec == http::error::header_limit) return fail(http::status::request_header_fields_too_large, "header too large");
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset)
        return;
      // A TLS record that does not decrypt, or a close without close_notify: nothing to answer.
      if constexpr (kTls) {
        if (ec.category() == asio::error::get_ssl_category() || ec == asio::ssl::error::stream_truncated) return;
      }
      return fail(http::status::bad_request, "bad request");
    }
    Response res;
    const Route* route = server_.find(parser_->get(), res);
    if (route && route->runs == Runs::kWorkThread) {
      asio::post(server_.work_ioc_, [self = this->shared_from_this(), route] {
        Response r = invoke(*route, self->parser_->get());
        asio::post(self->stream_.get_executor(), [self, r = std::move(r)]() mutable { self->respond(std::move(r)); });
      });
      return;
    }
    if (route) res = invoke(*route, parser_->get());
    respond(std::move(res));
  }

  void respond(Response res) {
    res.keep_alive(parser_->get().keep_alive());
    res.prepare_payload();
    if (parser_->get().method() == http::verb::head) {
      auto len = res.body().size();
      res.body().clear();
      res.content_length(len);
    }
    write(std::move(res));
  }

  void fail(http::status status, const char* msg) {
    Request dummy;
    auto res = text(dummy, status, msg);
    res.keep_alive(false);
    res.prepare_payload();
    write(std::move(res));
  }

  void write(Response res) {
    res.set(http::field::server, server_.options_.server_name);
    if (server_.options_.on_response) server_.options_.on_response(res.result_int());
    res_ = std::make_unique<Response>(std::move(res));
    lowest().expires_after(server_.options_.read_timeout);
    http::async_write(stream_, *res_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->res_->keep_alive()) return self->close();
      self->read(false);
    });
  }

  // TLS: close_notify, waiting briefly for the client's; a client still sending (the rest of a
  // refused body) then gets the plain close below.
  void close() {
    if constexpr (kTls) {
      lowest().expires_after(kShutdownTimeout);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code ec) {
        // The client answered with its own close_notify, or is gone: nothing left to wait for.
        if (!ec || ec == beast::error::timeout || ec == asio::error::eof || ec == asio::error::connection_reset ||
            ec == asio::error::operation_aborted)
          return;
        self->closeTcp();  // e.g. the rest of a refused body still arriving
      });
    } else {
      closeTcp();
    }
  }

  void closeTcp() {
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    linger();
  }

  // Reads and discards what the client still sends (e.g. the rest of a refused body) for a
  // short while, so closing does not reset the connection before it has read our answer.
  // Below TLS, if any: these bytes are never decrypted.
  void linger() {
    lowest().expires_after(std::chrono::seconds(2));
    buffer_.consume(buffer_.size());
    lowest().async_read_some(buffer_.prepare(16 * 1024), [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > (8u << 20)) return;
      self->linger();
    });
  }

  static constexpr std::chrono::seconds kShutdownTimeout{2};
  std::size_t lingered_ = 0;
  const HttpServer& server_;
  std::shared_ptr<const proxy::ServerTls> tls_;  // before stream_, which uses its context
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::unique_ptr<Response> res_;
};

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::handle(http::verb method, std::string path, Handler handler, Runs runs) {
  routes_.push_back(Route{method, std::move(path), false, std::move(handler), runs});
}

void HttpServer::handlePrefix(http::verb method, std::string prefix, Handler handler, Runs runs) {
  routes_.push_back(Route{method, std::move(prefix), true, std::move(handler), runs});
}

tcp::endpoint HttpServer::listen(const tcp::endpoint& ep, boost::system::error_code& ec) {
  acceptor_.open(ep.protocol(), ec);
  if (ec) return {};
  acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  acceptor_.bind(ep, ec);
  if (ec) return {};
  acceptor_.listen(128, ec);
  if (ec) return {};
  return acceptor_.local_endpoint(ec);
}

void HttpServer::every(std::chrono::milliseconds period, std::function<void()> task, Runs runs) {
  periodic_.push_back(std::make_unique<Periodic>(Periodic{period, std::move(task), runs, nullptr}));
}

void HttpServer::arm(Periodic& p) {
  p.timer->expires_after(p.period);
  p.timer->async_wait([this, &p](beast::error_code ec) {
    if (ec) return;
    if (p.runs == Runs::kWorkThread) boost::asio::post(work_ioc_, [&p] { p.task(); });
    else p.task();
    arm(p);
  });
}

void HttpServer::start() {
  accept();
  for (auto& p : periodic_) {
    p->timer = std::make_unique<asio::steady_timer>(ioc_);
    arm(*p);
  }
  thread_ = std::thread([this] { ioc_.run(); });
  if (std::any_of(routes_.begin(), routes_.end(), [](const Route& r) { return r.runs == Runs::kWorkThread; })) {
    work_thread_ = std::thread([this] {
      auto guard = asio::make_work_guard(work_ioc_);
      work_ioc_.run();
    });
  }
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  work_ioc_.stop();
  if (work_thread_.joinable()) work_thread_.join();
  ioc_.stop();
  thread_.join();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (tls_) std::make_shared<Connection<TlsStream>>(*this, std::move(socket), tls_->current())->start();
      else std::make_shared<Connection<PlainStream>>(*this, std::move(socket))->start();
    }
    accept();
  });
}

const HttpServer::Route* HttpServer::find(const Request& req, Response& error) const {
  std::string_view target = req.target();
  std::string_view path = target.substr(0, target.find('?'));
  bool path_known = false;
  for (const auto& r : routes_) {
    bool match = r.prefix ? path.substr(0, r.path.size()) == r.path : path == r.path;
    if (!match) continue;
    path_known = true;
    if (r.method == req.method() || (r.method == http::verb::get && req.method() == http::verb::head)) return &r;
  }
  error = path_known ? text(req, http::status::method_not_allowed, "method not allowed")
                     : text(req, http::status::not_found, "not found");
  return nullptr;
}

Response HttpServer::invoke(const Route& route, const Request& req) {
  try {
    return route.handler(req);
  } catch (const std::exception& e) {
    log::error("admin handler failed", {{"target", std::string(req.target())}, {"error", e.what()}});
    return text(req, http::status::internal_server_error, "internal error");
  }
}

Response HttpServer::text(const Request& req, http::status status, std::string body) {
  Response res{status, req.version() ? req.version() : 11};
  res.set(http::field::content_type, "text/plain");
  res.body() = std::move(body);
  res.body().push_back('\n');
  return res;
}

Response HttpServer::json(const Request& req, http::status status, std::string body) {
  Response res{status, req.version() ? req.version() : 11};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

}  // namespace fledge::admin
