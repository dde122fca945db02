#pragma once
// A small HTTP/1.1 server on its own thread and io_context, for the control plane (health,
// admin API, OFREP, metrics). Handlers run on that thread; bodies are bounded strings.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace fledge::admin {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct HttpServerOptions {
  std::size_t max_body_bytes = 1 << 20;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::string server_name = "fledge";
};

class HttpServer {
 public:
  using Handler = std::function<Response(const Request&)>;

  explicit HttpServer(HttpServerOptions options = {});
  ~HttpServer();

  // Exact-path routes; `prefix` routes match any path that starts with the given prefix.
  // The first registered match wins. Unknown path → 404, known path with another method → 405.
  void handle(boost::beast::http::verb method, std::string path, Handler handler);
  void handlePrefix(boost::beast::http::verb method, std::string prefix, Handler handler);

  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& ep, boost::system::error_code& ec);
  void start();
  void stop();

  // Helpers for handlers.
  static Response text(const Request& req, boost::beast::http::status status, std::string body);
  static Response json(const Request& req, boost::beast::http::status status, std::string body);

 private:
  class Connection;
  struct Route {
    boost::beast::http::verb method;
    std::string path;
    bool prefix;
    Handler handler;
  };
  Response dispatch(const Request& req) const;
  void accept();

  HttpServerOptions options_;
  std::vector<Route> routes_;
  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_{ioc_};
  std::thread thread_;
};

}  // namespace fledge::admin
