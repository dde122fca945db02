#include "ctl/client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <csignal>
#include <vector>

#include "ctl/view.hpp"

namespace fledge::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::in_place_error;  // HostPort is constructible from a string: say which one is meant

boost::system::result<proxy::HostPort, std::string> parseAdminUrl(std::string_view text) {
  std::string_view rest = text;
  bool scheme = false;
  if (auto sep = rest.find("://"); sep != std::string_view::npos) {
    if (!beast::iequals(rest.substr(0, sep), "http"))
      return {in_place_error, "only http:// is supported, not \"" + std::string(rest.substr(0, sep + 3)) + "\""};
    rest.remove_prefix(sep + 3);
    scheme = true;
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/") return {in_place_error, "a path is not supported: give http://HOST:PORT"};
    rest = rest.substr(0, slash);
  }
  std::string host_port(rest);
  const bool has_port = !rest.empty() && (rest.front() == '[' ? rest.find("]:") != std::string_view::npos
                                                              : rest.find(':') != std::string_view::npos);
  if (!has_port) {
    if (!scheme) return {in_place_error, "must be http://HOST[:PORT], HOST:PORT or [IPV6]:PORT"};
    host_port += ":80";
  }
  proxy::HostPort out;
  if (std::string e = proxy::parseHostPort(host_port, out, false); !e.empty()) return {in_place_error, e};
  return out;
}

AdminClient::AdminClient(proxy::HostPort url, std::string token, std::chrono::milliseconds timeout, std::string where)
    : url_(std::move(url)), token_(std::move(token)), timeout_(timeout), where_(std::move(where)) {}

template <class Cancel>
void AdminClient::runUntil(const bool& done, Clock::time_point deadline, Cancel cancel) {
  bool cancelled = false;
  while (!done) {
    if (ioc_.stopped()) ioc_.restart();  // it stops whenever it runs out of work
    if (!cancelled && (interrupted_ || Clock::now() >= deadline)) {
      cancel();
      cancelled = true;
    }
    if (cancelled) ioc_.run_one();
    else ioc_.run_one_until(deadline);
  }
}

void AdminClient::catchInterrupts() {
  if (signals_) return;
  signals_.emplace(ioc_, SIGINT, SIGTERM);
  signals_->async_wait([this](boost::system::error_code ec, int) {
    if (!ec) interrupted_ = true;
  });
}

bool AdminClient::sleep(std::chrono::milliseconds d) {
  if (interrupted_) return false;
  asio::steady_timer timer(ioc_, d);
  bool done = false;
  timer.async_wait([&done](boost::system::error_code) { done = true; });
  runUntil(done, Clock::time_point::max(), [&timer] { timer.cancel(); });
  return !interrupted_;
}

boost::system::result<Answer, std::string> AdminClient::request(http::verb method, const std::string& target,
                                                                const std::string& body, const std::string& if_match) {
  const std::string what = std::string(http::to_string(method)) + " " + target + ": ";
  if (interrupted_) return what + "interrupted";
  const auto deadline = Clock::now() + timeout_;
  const std::string within = " within " + secondsText(timeout_);

  // A literal address needs no resolver; a name is resolved under the same deadline.
  std::vector<tcp::endpoint> endpoints;
  boost::system::error_code ec;
  if (auto addr = asio::ip::make_address(url_.host, ec); !ec) {
    endpoints.emplace_back(addr, url_.port);
  } else {
    tcp::resolver resolver(ioc_);
    bool done = false;
    resolver.async_resolve(url_.host, std::to_string(url_.port), [&](boost::system::error_code e, tcp::resolver::results_type r) {
      ec = e;
      for (const auto& entry : r) endpoints.push_back(entry.endpoint());
      done = true;
    });
    runUntil(done, deadline, [&resolver] { resolver.cancel(); });
    if (interrupted_) return what + "interrupted";
    if (ec == asio::error::operation_aborted) return "cannot resolve " + url_.host + ": no answer" + within + " (" + where_ + ")";
    if (ec || endpoints.empty()) return "cannot resolve " + url_.host + ": " + (ec ? ec.message() : "no address") + " (" + where_ + ")";
  }

  // Each step under the request's deadline; an interrupt cancels the step under way.
  beast::tcp_stream stream(ioc_);
  const auto step = [&](auto start) {
    bool done = false;
    boost::system::error_code result;
    stream.expires_at(deadline);
    start([&](boost::system::error_code e, auto&&...) {
      result = e;
      done = true;
    });
    runUntil(done, Clock::time_point::max(), [&stream] { stream.cancel(); });
    return result;
  };
  ec = step([&](auto handler) { stream.async_connect(endpoints, handler); });
  if (interrupted_) return what + "interrupted";
  if (ec == beast::error::timeout) return "cannot connect to " + url_.str() + ": no connection" + within + " (" + where_ + ")";
  if (ec) return "cannot connect to " + url_.str() + ": " + ec.message() + " (" + where_ + ")";

  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, url_.str());
  req.set(http::field::user_agent, "fledge-ctl/" FLEDGE_VERSION);
  req.set(http::field::accept, "application/json");
  if (!token_.empty()) req.set(http::field::authorization, "Bearer " + token_);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  if (!if_match.empty()) req.set(http::field::if_match, if_match);
  req.body() = body;
  req.prepare_payload();
  ec = step([&](auto handler) { http::async_write(stream, req, handler); });

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (!ec) ec = step([&](auto handler) { http::async_read(stream, buffer, parser, handler); });
  if (interrupted_) return what + "interrupted";
  if (ec == beast::error::timeout) return what + "no answer from " + url_.str() + within;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == asio::error::eof)
    return what + url_.str() + " closed the connection before answering";
  if (ec) return what + url_.str() + ": " + ec.message();
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  auto& res = parser.get();
  return Answer{res.result_int(), std::move(res.body()), std::string(res[http::field::etag])};
}

}  // namespace fledge::ctl
