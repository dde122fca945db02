#include "proxy/mirror.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "proxy/worker.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {
constexpr std::size_t kDiscard = 16 * 1024;
}

MirrorCall::MirrorCall(Worker& worker, std::string request, std::shared_ptr<Generation> gen, std::size_t route,
                       std::size_t cluster, std::size_t endpoint, std::chrono::milliseconds timeout)
    : w_(worker), request_(std::move(request)), gen_(std::move(gen)), route_(route), cluster_(cluster), endpoint_(endpoint),
      socket_(worker.ioc()), timer_(worker.ioc()) {
  timer_.expires_after(timeout);
}

MirrorCall::~MirrorCall() { w_.releaseMirrorSlot(); }

void MirrorCall::start() {
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->done_) {
      boost::system::error_code ignored;
      self->socket_.close(ignored);  // timed out: abandon the copy
    }
  });
  socket_.async_connect(gen_->pool.endpoint(cluster_, endpoint_)->address,
                        [self = shared_from_this()](boost::system::error_code ec) { self->onConnect(ec); });
}

void MirrorCall::onConnect(boost::system::error_code ec) {
  if (ec) return finish(false);
  const auto& rc = gen_->snap->clusters[cluster_];
  if (!rc.tls) return send();
  if (!socket_.startTls(*rc.tls, rc.tls_names[endpoint_])) return finish(false);
  socket_.asyncHandshake([self = shared_from_this()](boost::system::error_code e, std::size_t) {
    if (e) return self->finish(false);
    self->send();
  });
}

void MirrorCall::send() {
  asio::async_write(socket_, asio::buffer(request_),
                    [self = shared_from_this()](boost::system::error_code e, std::size_t) { self->onWrite(e); });
}

void MirrorCall::onWrite(boost::system::error_code ec) {
  if (ec) return finish(false);
  discard_ = std::make_unique<char[]>(kDiscard);
  parser_.emplace(head_, sink_);
  parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
  readSome();
}

void MirrorCall::readSome() {
  sink_.reset(discard_.get(), kDiscard);  // the body is read and dropped
  http::async_read_some(socket_, buffer_, *parser_, [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return self->finish(false);
    if (self->parser_->is_done()) {
      if (self->parser_->status() >= 100 && self->parser_->status() < 200) {  // interim: read on
        self->parser_.emplace(self->head_, self->sink_);
        self->parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
        return self->readSome();
      }
      return self->finish(true);
    }
    self->readSome();
  });
}

void MirrorCall::finish(bool ok) {
  if (done_) return;
  done_ = true;
  if (!ok) gen_->metrics->mirror(route_, MirrorResult::kFailed);
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

}  // namespace fledge::proxy
