#include "admin/http_server.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "proxy/log.hpp"

namespace fledge::admin {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class HttpServer::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(const HttpServer& server, tcp::socket socket) : server_(server), stream_(std::move(socket)) {}

  void read(bool first) {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.options_.max_header_bytes));
    parser_->body_limit(server_.options_.max_body_bytes);
    stream_.expires_after(first ? server_.options_.read_timeout : server_.options_.idle_timeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Connection::onRead, shared_from_this()));
  }

 private:
  void onRead(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec == http::error::body_limit) return fail(http::status::payload_too_large, "request body too large");
      if (ec == http::error::header_limit) return fail(http::status::request_header_fields_too_large, "header too large");
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted ||
          ec == asio::error::connection_reset)
        return;
      return fail(http::status::bad_request, "bad request");
    }
    Response res;
    const Route* route = server_.find(parser_->get(), res);
    if (route && route->runs == Runs::kWorkThread) {
      asio::post(server_.work_ioc_, [self = shared_from_this(), route] {
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
    stream_.expires_after(server_.options_.read_timeout);
    http::async_write(stream_, *res_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->res_->keep_alive()) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        self->linger();
        return;
      }
      self->read(false);
    });
  }

  // Reads and discards what the client still sends (e.g. the rest of a refused body) for a
  // short while, so closing does not reset the connection before it has read our answer.
  void linger() {
    stream_.expires_after(std::chrono::seconds(2));
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->lingered_ += n;
      if (ec || self->lingered_ > (8u << 20)) return;
      self->linger();
    });
  }

  std::size_t lingered_ = 0;
  const HttpServer& server_;
  beast::tcp_stream stream_;
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
    if (!ec) std::make_shared<Connection>(*this, std::move(socket))->read(true);
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
