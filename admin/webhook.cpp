#include "admin/webhook.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <memory>

namespace fledge::admin {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxAnswerBytes = 64 * 1024;  // the status is what counts; the body is only logged

class Call : public std::enable_shared_from_this<Call> {
 public:
  Call(asio::any_io_executor ex, const RolloutWebhook& hook, std::string body, std::function<void(WebhookResult)> done)
      : hook_(hook), resolver_(ex), stream_(ex), deadline_(ex), done_(std::move(done)) {
    req_.method(http::verb::post);
    req_.target(hook.target);
    req_.set(http::field::host, hook.host.find(':') != std::string::npos ? "[" + hook.host + "]:" + hook.port : hook.host + ":" + hook.port);
    req_.set(http::field::user_agent, "fledge-rollout");
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(false);
    req_.body() = std::move(body);
    req_.prepare_payload();
    parser_.body_limit(kMaxAnswerBytes);
  }

  void start() {
    deadline_.expires_after(hook_.timeout);
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->timed_out_ = true;
      self->resolver_.cancel();
      beast::error_code ignored;
      self->stream_.socket().close(ignored);
    });
    resolver_.async_resolve(hook_.host, hook_.port, [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
      if (ec) return self->finish(0, "resolve", ec);
      self->stream_.async_connect(r, [self](beast::error_code ec, const tcp::endpoint&) {
        if (ec) return self->finish(0, "connect", ec);
        http::async_write(self->stream_, self->req_, [self](beast::error_code ec, std::size_t) {
          if (ec) return self->finish(0, "write", ec);
          http::async_read(self->stream_, self->buffer_, self->parser_, [self](beast::error_code ec, std::size_t) {
            if (ec) return self->finish(0, "read", ec);
            self->finish(self->parser_.get().result_int(), "", {});
          });
        });
      });
    });
  }

 private:
  void finish(unsigned status, const char* stage, beast::error_code ec) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    beast::error_code ignored;
    stream_.socket().close(ignored);
    WebhookResult r;
    r.status = status;
    if (timed_out_) r.error = "timed out after " + std::to_string(hook_.timeout.count()) + " ms";
    else if (ec) r.error = std::string(stage) + ": " + ec.message();
    done_(std::move(r));
  }

  RolloutWebhook hook_;
  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response_parser<http::string_body> parser_;
  std::function<void(WebhookResult)> done_;
  bool timed_out_ = false, finished_ = false;
};

}  // namespace

std::string WebhookResult::describe() const {
  return error.empty() ? "answered " + std::to_string(status) : error;
}

void callWebhook(asio::any_io_executor executor, const RolloutWebhook& hook, std::string body, std::function<void(WebhookResult)> done) {
  std::make_shared<Call>(std::move(executor), hook, std::move(body), std::move(done))->start();
}

}  // namespace fledge::admin
