#pragma once
// A small HTTP/1.1 server on its own thread and io_context, for the control plane (health,
// admin API, OFREP, metrics). Handlers run on that thread; bodies are bounded strings. With
// setTls() it speaks HTTPS only, with the listener's reloadable certificates.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fledge::proxy {
class ReloadableServerTls;
}

namespace fledge::admin {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpServerOptions {
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::string server_name = "fledge";
  std::function<void(unsigned status)> on_response;  // called on the server thread per response
};

class HttpServer {
 public:
  using Handler = std::function<Response(const Request&)>;

  explicit HttpServer(HttpServerOptions options = {});
  ~HttpServer();

  // Where a handler runs: on the server thread (fast handlers: health, metrics), or on a second
  // thread of the server, in order, for handlers that may block (store writes, DNS), so they
  // never delay the fast ones.
  enum class Runs { kInline, kWorkThread };

  // Exact-path routes; `prefix` routes match any path that starts with the given prefix.
  // The first registered match wins. Unknown path → 404, known path with another method → 405.
  void handle(boost::beast::http::verb method, std::string path, Handler handler, Runs runs = Runs::kInline);
  void handlePrefix(boost::beast::http::verb method, std::string prefix, Handler handler, Runs runs = Runs::kInline);

  // HTTPS: every connection accepted from then on starts with a TLS handshake, using the
  // certificates `tls` holds when it is accepted (a reload applies to new connections). Call it
  // before start().
  void setTls(std::shared_ptr<proxy::ReloadableServerTls> tls) { tls_ = std::move(tls); }
  // TLS handshakes completed, and failed (plain HTTP to an HTTPS port, a client that does not
  // trust the certificate, a scanner); safe from any thread.
  std::uint64_t tlsHandshakes() const { return tls_handshakes_.load(std::memory_order_relaxed); }
  std::uint64_t tlsHandshakeFailures() const { return tls_handshake_failures_.load(std::memory_order_relaxed); }

  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& ep, boost::system::error_code& ec);
  void start();
  void stop();
  // Runs `task` every `period` (from start() until stop()), on the server's thread or, in order
  // with the handlers that run there, on the work thread.
  void every(std::chrono::milliseconds period, std::function<void()> task, Runs runs = Runs::kInline);
  // The work thread's executor: asynchronous work whose completions must run in order with the
  // work-thread handlers (the rollout controller's webhook calls).
  boost::asio::any_io_executor workExecutor() { return work_ioc_.get_executor(); }

  // Helpers for handlers.
  static Response text(const Request& req, boost::beast::http::status status, std::string body);
  static Response json(const Request& req, boost::beast::http::status status, std::string body);

 private:
  template <class Stream>
  class Connection;  // the request loop, over a plain or a TLS stream
  struct Route {
    boost::beast::http::verb method;
    std::string path;
    bool prefix;
    Handler handler;
    Runs runs;
  };
  // The route for `req`, or nullptr with `error` set to the 404/405 answer.
  const Route* find(const Request& req, Response& error) const;
  static Response invoke(const Route& route, const Request& req);  // exceptions become 500
  void accept();

  HttpServerOptions options_;
  std::vector<Route> routes_;
  std::shared_ptr<proxy::ReloadableServerTls> tls_;  // null: plain HTTP
  mutable std::atomic<std::uint64_t> tls_handshakes_{0}, tls_handshake_failures_{0};  // counted by connections
  struct Periodic {
    std::chrono::milliseconds period;
    std::function<void()> task;
    Runs runs;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };
  void arm(Periodic& p);
  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::vector<std::unique_ptr<Periodic>> periodic_;  // after ioc_: its timers go first
  mutable boost::asio::io_context work_ioc_{1};  // after ioc_: work still queued is dropped first
  std::thread thread_, work_thread_;
};

}  // namespace fledge::admin
