#pragma once
// The admin API over HTTP/1.1 for `fledge ctl`: one connection per request, every step of it
// under one deadline (tcp_stream's expiry), and SIGINT/SIGTERM turned into an early, orderly
// return so a watch loop can end cleanly.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/result.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/config.hpp"

namespace fledge::ctl {

// "http://HOST[:PORT][/]" (port 80 if absent), or "HOST:PORT" / "[V6]:PORT" without a scheme.
boost::system::result<proxy::HostPort, std::string> parseAdminUrl(std::string_view text);

struct Answer {
  unsigned status = 0;
  std::string body;
  std::string etag;  // the configuration version, quoted
};

class AdminClient {
 public:
  // `where` says where the address came from; it ends the message of a failed connect.
  AdminClient(proxy::HostPort url, std::string token, std::chrono::milliseconds timeout, std::string where);

  // One exchange. An error is a failure to get an answer (its message names the address); any
  // answer, 4xx and 5xx included, is a value. `if_match`: an ETag the write is conditional on.
  boost::system::result<Answer, std::string> request(boost::beast::http::verb method, const std::string& target,
                                                     const std::string& body = {}, const std::string& if_match = {});

  // From now on SIGINT and SIGTERM end request() and sleep() early and set interrupted().
  void catchInterrupts();
  bool interrupted() const { return interrupted_; }
  // Returns false if interrupted.
  bool sleep(std::chrono::milliseconds d);

  const proxy::HostPort& url() const { return url_; }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  // Runs handlers until `done`; calls `cancel` once, when `deadline` passes or an interrupt comes.
  template <class Cancel>
  void runUntil(const bool& done, std::chrono::steady_clock::time_point deadline, Cancel cancel);

  proxy::HostPort url_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  std::string where_;
  boost::asio::io_context ioc_;
  std::optional<boost::asio::signal_set> signals_;
  bool interrupted_ = false;
};

}  // namespace fledge::ctl
