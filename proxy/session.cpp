#include "proxy/session.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <cstring>

#include "proxy/headers.hpp"
#include "proxy/log.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::size_t kReadSize = 16 * 1024;
constexpr std::size_t kResponseHeaderLimit = 64 * 1024;
constexpr std::size_t kLingerMaxBytes = 1 << 20;
constexpr std::chrono::milliseconds kLingerTime{2000};

const char* reasonFor(unsigned status) {
  switch (status) {
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
  }
  return "Error";
}

bool isPeerGone(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == http::error::end_of_stream || ec == http::error::partial_message;
}

// True when the first line in `data` is unterminated and already longer than `limit`.
bool requestLineTooLong(std::string_view data, std::size_t limit) {
  std::size_t scan = std::min(data.size(), limit + 2);
  return data.size() > limit && std::memchr(data.data(), '\n', scan) == nullptr;
}

std::string_view bufferView(const beast::flat_buffer& b) {
  auto d = b.data();
  return {static_cast<const char*>(d.data()), d.size()};
}

}  // namespace

Session::Session(Worker& worker, tcp::socket socket)
    : w_(worker), down_(std::move(socket)), up_(worker.ioc()) {
  w_.sessions_.push_back(*this);
  ++w_.session_count_;
  boost::system::error_code ec;
  down_.set_option(tcp::no_delay(true), ec);
  auto remote = down_.remote_endpoint(ec);
  if (!ec) {
    auto addr = remote.address();
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
    client_ip_ = addr.to_string();
  }
}

Session::~Session() {
  --w_.session_count_;
  if (has_upstream_) releaseUpstream(false);
}

void Session::start() { readHeader(); }

void Session::checkDeadline(Clock::time_point now) {
  if (now < deadline_) return;
  disarm();
  timed_out_ = true;
  boost::system::error_code ec;
  down_.cancel(ec);
  if (up_.is_open()) up_.cancel(ec);
}

void Session::onDrain() {
  keep_alive_ = false;
  if (phase_ == Phase::kIdle && buf_.size() == 0) {
    boost::system::error_code ec;
    down_.cancel(ec);
    down_.shutdown(tcp::socket::shutdown_both, ec);
    down_.close(ec);
  }
}

// ---------------------------------------------------------------------------------------------
// Downstream request header

void Session::readHeader() {
  phase_ = Phase::kIdle;
  const auto& cfg = w_.snapshot().config;
  req_.emplace();
  start_line_done_ = false;
  req_->header_limit(cfg.limits.max_header_bytes);
  req_->body_limit(cfg.limits.max_body_bytes ? cfg.limits.max_body_bytes : std::numeric_limits<std::uint64_t>::max());
  res_.reset();
  if (buf_.size() != 0) {
    phase_ = Phase::kHeader;
    arm(cfg.timeouts.header_read);
    parseBufferedHeader();
    return;
  }
  if (w_.draining() || !keep_alive_) return lingerClose();
  arm(cfg.timeouts.idle);
  down_.async_read_some(buf_.prepare(kReadSize), beast::bind_front_handler(&Session::onHeaderRead, shared_from_this()));
}

void Session::onHeaderRead(error_code ec, std::size_t n) {
  if (ec) {
    if (timed_out_ && phase_ == Phase::kHeader) return reply(408, "request header timeout", true);
    return;  // idle timeout, client closed, or drain: just close
  }
  buf_.commit(n);
  if (phase_ == Phase::kIdle) {
    phase_ = Phase::kHeader;
    arm(w_.snapshot().config.timeouts.header_read);  // slowloris: the whole header within this time
  }
  parseBufferedHeader();
}

void Session::parseBufferedHeader() {
  const auto& limits = w_.snapshot().config.limits;
  error_code ec;
  // Tolerate empty lines before a request (RFC 9112 §2.2).
  while (buf_.size() >= 2 && bufferView(buf_).substr(0, 2) == "\r\n") buf_.consume(2);
  while (buf_.size() >= 1 && bufferView(buf_)[0] == '\n') buf_.consume(1);
  if (buf_.size() != 0) {
    std::size_t used = req_->put(buf_.data(), ec);
    buf_.consume(used);
    // Beast consumes the start line as soon as it is complete, before the fields are.
    if (used != 0) start_line_done_ = true;
    if (ec == http::error::need_more) ec = {};
    if (ec) return onHeaderError(ec);
    if (req_->is_header_done()) return onHeader();
    if (!start_line_done_ && requestLineTooLong(bufferView(buf_), limits.max_request_line))
      return reply(414, "request line too long", true);
  }
  down_.async_read_some(buf_.prepare(kReadSize), beast::bind_front_handler(&Session::onHeaderRead, shared_from_this()));
}

void Session::onHeaderError(error_code ec) {
  if (ec == http::error::header_limit) {
    if (!start_line_done_ && requestLineTooLong(bufferView(buf_), w_.snapshot().config.limits.max_request_line))
      return reply(414, "request line too long", true);
    return reply(431, "request header too large", true);
  }
  if (ec == http::error::bad_version) return reply(505, "http version not supported", true);
  // Beast checks a declared Content-Length against the body limit while parsing the header.
  if (ec == http::error::body_limit) return reply(413, "request body too large", true);
  log::debug("bad request", {{"client", client_ip_}, {"error", ec.message()}});
  reply(400, "bad request", true);
}

void Session::onHeader() {
  disarm();
  const auto& cfg = w_.snapshot().config;
  auto& req = req_->get();
  version_ = req.version();
  if (version_ != 10 && version_ != 11) return reply(505, "http version not supported", true);

  std::size_t nfields = 0;
  for (auto it = req.begin(); it != req.end(); ++it) ++nfields;
  if (nfields > cfg.limits.max_headers) return reply(431, "too many header fields", true);
  if (req.target().size() > cfg.limits.max_request_line) return reply(414, "request line too long", true);

  // Smuggling shapes Beast lets through: a Transfer-Encoding whose final coding is not chunked
  // leaves the body length undefined for a request (RFC 9112 §6.3), so refuse it.
  if (req.find(http::field::transfer_encoding) != req.end() && !req_->chunked())
    return reply(400, "bad request: unsupported transfer-encoding", true);
  auto host_it = req.find(http::field::host);
  std::size_t host_count = 0;
  for (const auto& f : req)
    if (f.name() == http::field::host) ++host_count;
  if (host_count > 1 || (version_ == 11 && host_it == req.end())) return reply(400, "bad request: host", true);

  keep_alive_ = req_->keep_alive() && !w_.draining();
  head_ = req.method() == http::verb::head;
  request_has_body_ = !req_->is_done();
  if (auto cl = req_->content_length(); cl && cfg.limits.max_body_bytes && *cl > cfg.limits.max_body_bytes)
    return reply(413, "request body too large", true);

  expect_continue_ = false;
  if (auto e = req.find(http::field::expect); e != req.end()) {
    if (!beast::iequals(e->value(), "100-continue")) return reply(417, "expectation failed", true);
    expect_continue_ = version_ == 11 && request_has_body_;
    req.erase(http::field::expect);  // Fledge answers 100 Continue itself
  }

  // Route on the origin-form path; absolute-form targets carry their own authority.
  std::string_view target = req.target();
  std::string_view host = host_it != req.end() ? std::string_view(host_it->value()) : std::string_view{};
  if (target.size() > 7 && beast::iequals(target.substr(0, 7), "http://")) {
    auto rest = target.substr(7);
    auto slash = rest.find('/');
    host = rest.substr(0, slash);
    target = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  } else if (target.empty() || (target[0] != '/' && !(target == "*" && req.method() == http::verb::options))) {
    return reply(400, "bad request: target", true);
  }

  snap_ = w_.pinSnapshot();
  auto route = snap_->routes.match(host, target);
  if (!route) return reply(404, "no route", !keep_alive_ || request_has_body_);
  cluster_ = snap_->config.routes[*route].cluster_index;

  stripHopByHop(req);
  char rid[32];
  w_.newRequestId(rid);
  addForwardingHeaders(req, version_, ForwardInfo{client_ip_, "http", std::string_view(rid, sizeof rid)});
  req.version(11);
  req.keep_alive(true);  // upstream connections are always kept alive when possible

  tried_ = 0;
  any_refused_ = false;
  retried_ = false;
  connectUpstream();
}

// ---------------------------------------------------------------------------------------------
// Upstream connection

void Session::connectUpstream() {
  phase_ = Phase::kConnect;
  auto now = Clock::now();
  auto& pool = w_.pool();
  auto ep = pool.pick(cluster_, tried_, now);
  if (!ep) {
    if (any_refused_) return reply(502, "upstream refused connection", true);
    return reply(503, "no healthy upstream", !keep_alive_ || request_has_body_);
  }
  endpoint_ = *ep;
  if (!retried_) {
    if (auto idle = pool.takeIdle(cluster_, endpoint_, now)) {
      up_ = std::move(*idle);
      pool.acquired(cluster_, endpoint_);
      has_upstream_ = true;
      upstream_reused_ = true;
      return beginRequest();
    }
  }
  if (!pool.canOpen(cluster_, endpoint_)) return reply(503, "upstream connection limit reached", true);
  pool.acquired(cluster_, endpoint_);
  has_upstream_ = true;
  upstream_reused_ = false;
  up_ = tcp::socket(w_.ioc());
  arm(snap_->config.timeouts.upstream_connect);
  up_.async_connect(snap_->clusters[cluster_].endpoints[endpoint_],
                    beast::bind_front_handler(&Session::onConnect, shared_from_this()));
}

void Session::onConnect(error_code ec) {
  if (ec) {
    const auto& rc = snap_->clusters[cluster_];
    if (timed_out_) {
      log::warn("upstream connect timeout", {{"cluster", rc.config->name}, {"endpoint", rc.names[endpoint_]}});
      releaseUpstream(false);
      return reply(504, "upstream connect timeout", true);
    }
    log::warn("upstream connect failed",
              {{"cluster", rc.config->name}, {"endpoint", rc.names[endpoint_]}, {"error", ec.message()}});
    releaseUpstream(false);
    if (ec == asio::error::operation_aborted) return;  // drain / shutdown
    // Nothing was sent: the request can go to another endpoint.
    w_.pool().eject(cluster_, endpoint_, Clock::now());
    any_refused_ = true;
    if (endpoint_ < 64) tried_ |= std::uint64_t{1} << endpoint_;
    return connectUpstream();
  }
  error_code ignored;
  up_.set_option(tcp::no_delay(true), ignored);
  beginRequest();
}

void Session::beginRequest() {
  if (!chunk_) {
    chunk_ = std::make_unique<char[]>(kChunk);
    // Beast reads into a flat_buffer's spare capacity (at least 512 bytes): give it room so
    // large bodies move in big reads, not 512-byte ones.
    ubuf_.reserve(kChunk);
    buf_.reserve(kChunk);
  }
  req_sr_.emplace(req_->get());
  ubuf_.clear();
  if (expect_continue_) {
    expect_continue_ = false;
    return send100Continue();
  }
  phase_ = Phase::kRequest;
  pumpRequest();
}

void Session::send100Continue() {
  phase_ = Phase::kRequest;
  scratch_ = "HTTP/1.1 100 Continue\r\n\r\n";
  arm(snap_->config.timeouts.body_read);
  asio::async_write(down_, asio::buffer(scratch_), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->abort();
    self->pumpRequest();
  });
}

// ---------------------------------------------------------------------------------------------
// Request body: downstream -> upstream, one chunk at a time

void Session::pumpRequest() {
  auto& body = req_->get().body();
  if (req_->is_done()) {
    body.data = nullptr;
    body.size = 0;
    body.more = false;
    return writeRequest(0);
  }
  body.data = chunk_.get();
  body.size = kChunk;
  // Bytes already buffered (pipelined or sent with the header) need no read.
  if (buf_.size() != 0) {
    error_code ec;
    while (buf_.size() != 0 && body.size != 0 && !req_->is_done()) {
      std::size_t used = req_->put(buf_.data(), ec);
      buf_.consume(used);
      if (ec == http::error::need_more || ec == http::error::need_buffer) {
        ec = {};
        if (used == 0) break;
      } else if (ec) {
        break;
      }
    }
    if (ec) {
      releaseUpstream(false);
      if (ec == http::error::body_limit) return reply(413, "request body too large", true);
      return reply(400, "bad request body", true);
    }
    if (body.size != kChunk || req_->is_done()) return writeRequest(kChunk - body.size);
  }
  arm(snap_->config.timeouts.body_read);
  http::async_read_some(down_, buf_, *req_, [self = shared_from_this()](error_code ec, std::size_t) {
    self->onRequestBodyRead(ec);
  });
}

void Session::onRequestBodyRead(error_code ec) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    releaseUpstream(false);
    if (timed_out_) return reply(408, "request body timeout", true);
    if (ec == http::error::body_limit) return reply(413, "request body too large", true);
    if (isPeerGone(ec) || ec == asio::error::operation_aborted) return abort();
    return reply(400, "bad request body", true);
  }
  writeRequest(kChunk - req_->get().body().size);
}

void Session::writeRequest(std::size_t got) {
  auto& body = req_->get().body();
  if (req_->is_done() && got == 0) {
    body.data = nullptr;
    body.size = 0;
    body.more = false;
  } else {
    if (got == 0) return pumpRequest();  // parsed only framing (a chunk header); read on
    body.data = chunk_.get();
    body.size = got;
    body.more = !req_->is_done();
  }
  arm(snap_->config.timeouts.upstream_response);
  http::async_write(up_, *req_sr_, beast::bind_front_handler(&Session::onRequestWritten, shared_from_this()));
}

void Session::onRequestWritten(error_code ec, std::size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    if (timed_out_) {
      releaseUpstream(false);
      return reply(504, "upstream timeout", true);
    }
    if (retryOnFreshConnection(ec)) return;
    return upstreamFailed(ec, "send");
  }
  if (!req_sr_->is_done()) return pumpRequest();
  readResponseHeader();
}

// ---------------------------------------------------------------------------------------------
// Response: upstream -> downstream

void Session::readResponseHeader() {
  phase_ = Phase::kResponseHeader;
  res_.emplace();
  res_->header_limit(kResponseHeaderLimit);
  res_->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (head_) res_->skip(true);
  arm(snap_->config.timeouts.upstream_response);
  http::async_read_header(up_, ubuf_, *res_, [self = shared_from_this()](error_code ec, std::size_t) {
    self->onResponseHeader(ec);
  });
}

void Session::onResponseHeader(error_code ec) {
  if (ec) {
    if (timed_out_) {
      log::warn("upstream response timeout", {{"cluster", snap_->clusters[cluster_].config->name},
                                              {"endpoint", snap_->clusters[cluster_].names[endpoint_]}});
      releaseUpstream(false);
      return reply(504, "upstream timeout", true);
    }
    if (retryOnFreshConnection(ec)) return;
    return upstreamFailed(ec, "response");
  }
  auto& res = res_->get();
  unsigned status = res.result_int();
  if (status >= 100 && status < 200) {
    if (status == 101) return upstreamFailed(http::error::bad_value, "unexpected 101 response");
    return readResponseHeader();  // interim responses (e.g. 103) are not relayed
  }
  body_expected_ = !head_ && status != 204 && status != 304;
  stripHopByHop(res);
  if (body_expected_) {
    bool delimited = res_->chunked() || res_->content_length().has_value();
    if (version_ == 10 && res_->chunked()) {
      res.chunked(false);  // an HTTP/1.0 client cannot read chunks: the close delimits the body
      keep_alive_ = false;
    } else if (!delimited) {
      if (version_ == 11) res.chunked(true);
      else keep_alive_ = false;
    }
  }
  if (w_.draining()) keep_alive_ = false;
  res.version(version_);
  res.keep_alive(keep_alive_);
  res_sr_.emplace(res);
  phase_ = Phase::kResponse;
  response_started_ = false;
  if (!body_expected_) {
    response_started_ = true;
    arm(snap_->config.timeouts.body_read);
    return http::async_write_header(down_, *res_sr_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) return self->abort();
      self->finishExchange();
    });
  }
  pumpResponse();
}

void Session::pumpResponse() {
  auto& body = res_->get().body();
  if (res_->is_done()) {
    body.data = nullptr;
    body.size = 0;
    body.more = false;
    response_started_ = true;
    arm(snap_->config.timeouts.body_read);
    return http::async_write(down_, *res_sr_,
                             beast::bind_front_handler(&Session::onResponseWritten, shared_from_this()));
  }
  body.data = chunk_.get();
  body.size = kChunk;
  arm(snap_->config.timeouts.upstream_response);
  http::async_read_some(up_, ubuf_, *res_, [self = shared_from_this()](error_code ec, std::size_t) {
    self->onResponseBodyRead(ec);
  });
}

void Session::onResponseBodyRead(error_code ec) {
  if (ec == http::error::need_buffer) ec = {};
  auto& body = res_->get().body();
  if (ec) {
    if (!response_started_) {
      if (timed_out_) {
        releaseUpstream(false);
        return reply(504, "upstream timeout", true);
      }
      return upstreamFailed(ec, "response body");
    }
    log::warn("upstream failed mid-response", {{"cluster", snap_->clusters[cluster_].config->name},
                                               {"error", timed_out_ ? "timeout" : ec.message()}});
    return abort();
  }
  std::size_t got = kChunk - body.size;
  if (got == 0 && !res_->is_done()) return pumpResponse();
  body.data = got ? chunk_.get() : nullptr;
  body.size = got;
  body.more = !res_->is_done();
  response_started_ = true;
  arm(snap_->config.timeouts.body_read);
  http::async_write(down_, *res_sr_, beast::bind_front_handler(&Session::onResponseWritten, shared_from_this()));
}

void Session::onResponseWritten(error_code ec, std::size_t) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec) return abort();
  if (!res_sr_->is_done()) return pumpResponse();
  finishExchange();
}

void Session::finishExchange() {
  bool reusable = res_->is_done() && res_->keep_alive() && req_sr_ && req_sr_->is_done() && ubuf_.size() == 0;
  releaseUpstream(reusable);
  req_sr_.reset();
  res_sr_.reset();
  snap_.reset();
  if (!keep_alive_) return lingerClose();
  readHeader();
}

// ---------------------------------------------------------------------------------------------
// Failures

bool Session::retryOnFreshConnection(error_code ec) {
  // A kept-alive connection the upstream closed just as we reused it: safe to resend only when
  // the request had no body and no byte of a response arrived.
  if (!upstream_reused_ || retried_ || request_has_body_ || ubuf_.size() != 0 || !isPeerGone(ec)) return false;
  retried_ = true;
  releaseUpstream(false);
  connectUpstream();
  return true;
}

void Session::upstreamFailed(error_code ec, const char* stage) {
  const auto& rc = snap_->clusters[cluster_];
  log::warn("upstream failed", {{"cluster", rc.config->name},
                                {"endpoint", rc.names[endpoint_]},
                                {"stage", stage},
                                {"error", ec.message()}});
  releaseUpstream(false);
  if (ec == asio::error::operation_aborted && !timed_out_) return abort();
  reply(502, "upstream connection failed", true);
}

void Session::releaseUpstream(bool reusable) {
  if (!has_upstream_) return;
  has_upstream_ = false;
  w_.pool().release(cluster_, endpoint_, reusable ? &up_ : nullptr, Clock::now());
  error_code ec;
  if (up_.is_open()) up_.close(ec);
}

void Session::reply(unsigned status, std::string_view text, bool close) {
  if (response_started_) return abort();
  releaseUpstream(false);
  if (close) keep_alive_ = false;
  phase_ = Phase::kReply;
  scratch_.clear();
  scratch_ += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  scratch_ += std::to_string(status);
  scratch_ += ' ';
  scratch_ += reasonFor(status);
  scratch_ += "\r\nContent-Type: text/plain\r\nContent-Length: ";
  scratch_ += std::to_string(text.size() + 1);
  scratch_ += keep_alive_ ? (version_ == 10 ? "\r\nConnection: keep-alive" : "") : "\r\nConnection: close";
  scratch_ += "\r\nServer: fledge\r\n\r\n";
  scratch_ += text;
  scratch_ += '\n';
  response_started_ = true;
  arm(snap_ ? snap_->config.timeouts.body_read : w_.snapshot().config.timeouts.body_read);
  asio::async_write(down_, asio::buffer(scratch_), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->abort();
    self->req_sr_.reset();
    self->res_sr_.reset();
    self->snap_.reset();
    if (!self->keep_alive_) return self->lingerClose();
    self->response_started_ = false;
    self->readHeader();
  });
}

void Session::lingerClose() {
  // Half-close, then read and discard for a while: closing with unread input would send an RST
  // that can destroy the response still in flight to the client.
  phase_ = Phase::kLinger;
  error_code ec;
  down_.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) return abort();
  linger_bytes_ = 0;
  deadline_ = Clock::now() + kLingerTime;
  timed_out_ = false;
  struct Drain {
    std::shared_ptr<Session> self;
    void operator()(error_code ec, std::size_t n) {
      auto& s = *self;
      s.linger_bytes_ += n;
      if (ec || s.linger_bytes_ > kLingerMaxBytes) return s.abort();
      s.buf_.consume(s.buf_.size());
      s.down_.async_read_some(s.buf_.prepare(kReadSize), std::move(*this));
    }
  };
  buf_.consume(buf_.size());
  down_.async_read_some(buf_.prepare(kReadSize), Drain{shared_from_this()});
}

void Session::abort() {
  disarm();
  releaseUpstream(false);
  error_code ec;
  down_.close(ec);
}

}  // namespace fledge::proxy
