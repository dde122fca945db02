#include "proxy/session.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <charconv>
#include <cstring>
#include <ctime>

#include "proxy/flag_context.hpp"
#include "proxy/headers.hpp"
#include "proxy/log.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {


constexpr std::size_t kReadSize = 16 * 1024;

// One limiter per kind of upstream failure line (README: Logs).
log::Limiter g_tls_handshake_log, g_upstream_tls_log;
log::Limiter g_connect_timeout_log, g_connect_failed_log, g_response_timeout_log, g_mid_response_log, g_upstream_failed_log;
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
  auto r = http::obsolete_reason(static_cast<http::status>(status));
  return r.empty() ? "Error" : r.data();  // Beast's reason strings are NUL-terminated literals
}


bool isIdempotent(http::verb m) {
  switch (m) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::options:
    case http::verb::trace:
    case http::verb::put:
    case http::verb::delete_:
      return true;
    default:
      return false;
  }
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

// TCP_NODELAY comes from the listening socket, the peer address and non-blocking mode from
// accept4() (Worker::acceptReady): no syscall here.
Session::Session(Worker& worker, int fd, const tcp::endpoint& peer, std::shared_ptr<const ListenerInfo> listener)
    : w_(worker), listener_(std::move(listener)), down_(worker.ioc(), peer.protocol(), fd), up_(worker.ioc()) {
  w_.sessions_.push_back(*this);
  ++w_.session_count_;
  add(w_.counters().downstream, 1);
  auto addr = peer.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  client_ip_ = addr.to_string();
}

Session::~Session() {
  leaveCluster();
  --w_.session_count_;
  add(w_.counters().downstream, -1);
  releaseUpstream(false);
  dropMirror();
  if (x_) w_.exchanges().give(std::move(x_));
}

// A new connection's request is usually there already: read it now, wait only if it is not.
void Session::start() {
  if (listener_->tls) {
    // The certificates as they are now; a reload later does not touch this connection.
    tls_contexts_ = listener_->tls->current();
    if (!down_.startTls(tls_contexts_->defaultContext())) return;
    phase_ = Phase::kHandshake;
    arm(w_.snapshot().config.timeouts.header_read);
    down_.asyncHandshake([self = shared_from_this()](error_code ec, std::size_t) { self->onHandshake(ec); });
    return;
  }
  arm(w_.snapshot().config.timeouts.idle);
  onReadable({});
}

void Session::onHandshake(error_code ec) {
  tls_contexts_.reset();
  if (ec) {
    bump(w_.counters().tls_handshake_failures);
    if (ec != asio::error::operation_aborted && ec != asio::error::eof && ec != asio::error::connection_reset)
      log::limited(g_tls_handshake_log, log::Level::kDebug, "TLS handshake failed",
                   {{"listener", listener_->name}, {"client", client_ip_}, {"error", down_.tls()->failure()}});
    return;  // the connection closes with the session
  }
  bump(w_.counters().tls_handshakes);
  phase_ = Phase::kIdle;
  arm(w_.snapshot().config.timeouts.idle);
  onReadable({});
}

void Session::checkDeadline(Clock::time_point now) {
  if (now < deadline_) return;
  disarm();
  timed_out_ = true;
  down_.cancel();
  boost::system::error_code ec;
  if (up_.is_open()) up_.cancel(ec);
}

void Session::onDrain() {
  keep_alive_ = false;
  if (phase_ == Phase::kIdle && !x_) {
    down_.cancel();
    down_.shutdown(tcp::socket::shutdown_both);
    down_.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Downstream request header

void Session::readHeader() {
  phase_ = Phase::kIdle;
  routed_any_ = false;
  plan_ = {};
  if (x_ && x_->buf.size() != 0) {  // pipelined
    prepareParser();
    phase_ = Phase::kHeader;
    arm(w_.snapshot().config.timeouts.header_read);
    parseBufferedHeader();
    return;
  }
  if (w_.draining() || !keep_alive_) return lingerClose();
  // Idle: nothing in flight, so the exchange's memory goes back to the worker until bytes come.
  w_.exchanges().give(std::move(x_));
  arm(w_.snapshot().config.timeouts.idle);
  down_.asyncWaitReadable([self = shared_from_this()](error_code ec) { self->onReadable(ec); });
}

void Session::onReadable(error_code ec) {
  if (ec) return;  // idle timeout, drain or shutdown: just close
  if (!x_) x_ = w_.exchanges().take();
  std::size_t n = down_.readSome(x_->buf.prepare(kReadSize), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    w_.exchanges().give(std::move(x_));
    down_.asyncWaitReadable([self = shared_from_this()](error_code e) { self->onReadable(e); });
    return;
  }
  prepareParser();
  onHeaderRead(ec, n);
}

void Session::prepareParser() {
  const auto& cfg = w_.snapshot().config;
  x_->res.reset();
  x_->req.emplace(x_->req_head, x_->sink);
  x_->req->underscores(cfg.http.underscores_in_headers);
  start_line_done_ = false;
  x_->req->header_limit(cfg.limits.max_header_bytes);
  x_->req->body_limit(cfg.limits.max_body_bytes ? cfg.limits.max_body_bytes : std::numeric_limits<std::uint64_t>::max());
}

void Session::onHeaderRead(error_code ec, std::size_t n) {
  if (ec) {
    if (timed_out_ && phase_ == Phase::kHeader) return reply(408, "request header timeout", true);
    return;  // idle timeout, client closed, or drain: just close
  }
  x_->buf.commit(n);
  if (phase_ == Phase::kIdle) {
    phase_ = Phase::kHeader;
    arm(w_.snapshot().config.timeouts.header_read);  // slowloris: the whole header within this time
  }
  parseBufferedHeader();
}

void Session::parseBufferedHeader() {
  const auto& limits = w_.snapshot().config.limits;
  error_code ec;
  // Tolerate empty lines before a request (RFC 9112 §2.2) — only before its start line: inside
  // the head an empty line ends it, and skipping one that arrived in its own read would join
  // the next bytes to the head (a field injected after the end of the header).
  if (!start_line_done_) {
    while (x_->buf.size() >= 2 && bufferView(x_->buf).substr(0, 2) == "\r\n") x_->buf.consume(2);
    while (x_->buf.size() >= 1 && bufferView(x_->buf)[0] == '\n') x_->buf.consume(1);
  }
  if (x_->buf.size() != 0) {
    std::size_t used = x_->req->put(x_->buf.data(), ec);
    x_->buf.consume(used);
    // Beast consumes the start line as soon as it is complete, before the fields are.
    if (used != 0) start_line_done_ = true;
    if (ec == http::error::need_more) ec = {};
    if (ec) return onHeaderError(ec);
    if (x_->req->is_header_done()) return onHeader();
    if (!start_line_done_ && requestLineTooLong(bufferView(x_->buf), limits.max_request_line))
      return reply(414, "request line too long", true);
  }
  down_.async_read_some(x_->buf.prepare(kReadSize), beast::bind_front_handler(&Session::onHeaderRead, shared_from_this()));
}

void Session::onHeaderError(error_code ec) {
  if (ec == http::error::header_limit) {
    if (!start_line_done_ && requestLineTooLong(bufferView(x_->buf), w_.snapshot().config.limits.max_request_line))
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
  beginExchange(true);
  const auto& req = *x_->req;
  version_ = req.version();
  const auto length = req.content_length();
  const RequestFacts facts{version_,         req.method(),           req.chunked(), length ? std::optional(*length) : std::nullopt,
                           !req.is_done(),   req.keep_alive(),       down_.secure(), listener_->redirect_https_port};
  plan_ = plan(x_->req_head, facts, *gen_->snap, client_ip_, std::string_view(request_id_, sizeof request_id_), w_.random(),
               w_.planScratch(), *x_, gen_->metrics.get(), std::time(nullptr));
  route_idx_ = plan_.route;
  arm_idx_ = plan_.arm;
  cluster_ = plan_.cluster;
  keep_alive_ = !plan_.client_close && !w_.draining();
  out_framing_ = plan_.framing;
  if (plan_.status) return reply(plan_.status, plan_.text, plan_.close);
  // A sampled shadow copy is admitted (a slot reserved) before anything is buffered for it.
  x_->mirror_body.clear();
  if (plan_.mirror) {
    if (w_.admitMirror(plan_.mirror->max_in_flight)) mirror_ = plan_.mirror;
    else gen_->metrics->mirror(route_idx_, MirrorResult::kDropped);
  }
  tried_ = 0;
  any_refused_ = false;
  retried_ = false;
  attempt_ = 1;
  replayable_ = false;
  replay_len_ = 0;
  attempt_line_ = 0;
  fell_back_ = false;
  startBody();
}

// ---------------------------------------------------------------------------------------------
// Upstream connection

void Session::connectUpstream() {
  phase_ = Phase::kConnect;
  auto now = Clock::now();
  UpstreamPool& pool = gen_->pool;
  if (!cstate_) {
    if (const auto& cb = pool.circuit(cluster_)) {
      if (cb->requests.load(std::memory_order_relaxed) >= pool.settings(cluster_).circuit_breaker->max_requests) {
        if (gen_->metrics->enabled()) bump(gen_->metrics->clusterBlock(cluster_)->circuit_open);
        return reply(503, "circuit breaker open: too many requests to the cluster", !x_->req->is_done());
      }
      circuit_ = cb;
      circuit_->requests.fetch_add(1, std::memory_order_relaxed);
    }
    cstate_ = pool.state(cluster_);
    ++cstate_->requests;
  }
  auto ep = pool.pick(cluster_, tried_, now);
  // A policy retry prefers another endpoint, but takes a tried one rather than none (it failed
  // this request, it is not ejected).
  if (!ep && attempt_ > 1) ep = pool.pick(cluster_, 0, now);
  if (!ep && fallBack()) return;
  if (!ep) {
    if (any_refused_) return reply(502, "upstream refused connection", true);
    return reply(503, "no healthy upstream", !keep_alive_ || !x_->req->is_done());
  }
  endpoint_ = *ep;
  upstream_used_ = true;
  const auto& endpoint = pool.endpoint(cluster_, endpoint_);
  if (!retried_) {
    if (auto idle = pool.takeIdle(cluster_, endpoint_, now)) {
      up_ = std::move(*idle);
      up_ep_ = endpoint;
      UpstreamPool::acquired(*up_ep_);
      upstream_reused_ = true;
      return onUpstreamReady();
    }
  }
  if (!pool.canOpen(cluster_, endpoint_)) return reply(503, "upstream connection limit reached", true);
  if (circuit_) {
    if (circuit_->pending.load(std::memory_order_relaxed) >= pool.settings(cluster_).circuit_breaker->max_pending) {
      if (gen_->metrics->enabled()) bump(gen_->metrics->clusterBlock(cluster_)->circuit_open);
      return reply(503, "circuit breaker open: too many requests waiting for a connection", !x_->req->is_done());
    }
    circuit_->pending.fetch_add(1, std::memory_order_relaxed);
    pending_ = true;
  }
  up_ep_ = endpoint;
  UpstreamPool::acquired(*up_ep_);
  upstream_reused_ = false;
  up_ = UpstreamConnection(w_.ioc());
  arm(gen_->snap->config.timeouts.upstream_connect);
  up_.async_connect(up_ep_->address, beast::bind_front_handler(&Session::onConnect, shared_from_this()));
}

void Session::onConnect(error_code ec) {
  if (pending_) {
    circuit_->pending.fetch_sub(1, std::memory_order_relaxed);
    pending_ = false;
  }
  if (ec) {
    const auto& rc = gen_->snap->clusters[cluster_];
    if (timed_out_) {
      gen_->metrics->upstreamError(cluster_, UpstreamError::kTimeout);
      log::limited(g_connect_timeout_log, log::Level::kWarn, "upstream connect timeout", {{"cluster", rc.config->name}, {"endpoint", rc.names[endpoint_]}});
      releaseUpstream(false);
      attemptEnded(AttemptResult::kConnectFailure, 0);
      if (endpoint_ < 64) tried_ |= std::uint64_t{1} << endpoint_;
      if (retryAttempt(AttemptResult::kConnectFailure, 0)) return;
      return reply(504, "upstream connect timeout", true);
    }
    log::limited(g_connect_failed_log, log::Level::kWarn, "upstream connect failed",
              {{"cluster", rc.config->name}, {"endpoint", rc.names[endpoint_]}, {"error", ec.message()}});
    releaseUpstream(false);
    if (ec == asio::error::operation_aborted) return;  // drain / shutdown
    gen_->metrics->upstreamError(cluster_, UpstreamError::kConnect);
    attemptEnded(AttemptResult::kConnectFailure, 0);
    // Nothing was sent: the request can go to another endpoint.
    gen_->pool.eject(cluster_, endpoint_, Clock::now());
    any_refused_ = true;
    if (endpoint_ < 64) tried_ |= std::uint64_t{1} << endpoint_;
    return connectUpstream();
  }
  error_code ignored;
  up_.socket().set_option(tcp::no_delay(true), ignored);
  const auto& rc = gen_->snap->clusters[cluster_];
  if (rc.tls) {
    if (!up_.startTls(*rc.tls, rc.tls_names[endpoint_])) return onUpstreamHandshake(asio::error::no_memory);
    return up_.asyncHandshake([self = shared_from_this()](error_code e, std::size_t) { self->onUpstreamHandshake(e); });
  }
  onUpstreamReady();
}

// A TLS handshake that fails is never retried in plain text: the request fails (502) unless the
// route's retry policy sends it to another endpoint, as after a refused connection.
void Session::onUpstreamHandshake(error_code ec) {
  if (!ec) return onUpstreamReady();
  if (ec == asio::error::operation_aborted && !timed_out_) {
    releaseUpstream(false);
    return;  // drain / shutdown
  }
  const auto& rc = gen_->snap->clusters[cluster_];
  const std::string why = timed_out_ ? "timed out" : up_.tls() ? up_.tls()->failure() : ec.message();
  log::limited(g_upstream_tls_log, log::Level::kError, "upstream TLS handshake failed",
               {{"cluster", rc.config->name}, {"endpoint", rc.names[endpoint_]}, {"server_name", rc.tls_names[endpoint_]}, {"error", why}});
  gen_->metrics->upstreamError(cluster_, UpstreamError::kTls);
  releaseUpstream(false);
  attemptEnded(AttemptResult::kConnectFailure, 0);
  if (endpoint_ < 64) tried_ |= std::uint64_t{1} << endpoint_;
  if (retryAttempt(AttemptResult::kConnectFailure, 0)) return;
  reply(502, "upstream TLS handshake failed", true);
}

// The body comes first: one chunk (all of a body up to Exchange::kChunk) is read before an upstream
// connection is taken, so a client that trickles a small body holds no upstream connection.
void Session::startBody() {
  body_started_ = Clock::now();
  x_->sink.reset(x_->chunk.get(), Exchange::kChunk);
  phase_ = Phase::kRequest;
  if (plan_.expect_continue) {
    plan_.expect_continue = false;
    return send100Continue();
  }
  readBody();
}

void Session::send100Continue() {
  x_->scratch = "HTTP/1.1 100 Continue\r\n\r\n";
  arm(gen_->snap->config.timeouts.body_read);
  asio::async_write(down_, asio::buffer(x_->scratch), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->abort();
    self->readBody();
  });
}

void Session::onUpstreamReady() {
  phase_ = Phase::kRequest;
  head_pending_ = true;  // (re)sent whole on every upstream attempt
  x_->ubuf.clear();
  writeRequest();  // the piece read before connecting
}

// ---------------------------------------------------------------------------------------------
// Request body: downstream -> upstream, one chunk at a time

bool Session::pieceComplete() const {
  if (x_->req->is_done()) return true;
  if (x_->sink.size == 0) return false;
  return up_ep_ != nullptr || x_->sink.size == x_->sink.capacity;  // before connecting: a full chunk
}

void Session::readBody() {
  // Bytes already buffered (pipelined or sent with the header) need no read.
  if (x_->buf.size() != 0 && !x_->req->is_done()) {
    error_code ec;
    while (x_->buf.size() != 0 && x_->sink.size < x_->sink.capacity && !x_->req->is_done()) {
      std::size_t used = x_->req->put(x_->buf.data(), ec);
      x_->buf.consume(used);
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
  }
  if (pieceComplete()) return onBodyPiece();
  armBody();
  http::async_read_some(down_, x_->buf, *x_->req, [self = shared_from_this()](error_code ec, std::size_t) {
    self->onRequestBodyRead(ec);
  });
}

void Session::armBody() {
  const auto& cfg = gen_->snap->config;
  auto deadline = Clock::now() + cfg.timeouts.body_read;
  // Slow uploads: past the first body_read, the body must average min_body_rate bytes/s.
  if (const std::uint64_t rate = cfg.limits.min_body_rate) {
    const auto earned = std::chrono::milliseconds((bytes_in_ + x_->sink.size) * 1000 / rate);
    deadline = std::min(deadline, body_started_ + cfg.timeouts.body_read + earned);
  }
  deadline_ = deadline;
  timed_out_ = false;
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
  if (pieceComplete()) return onBodyPiece();
  readBody();
}

void Session::onBodyPiece() {
  bytes_in_ += x_->sink.size;
  if (mirror_ && x_->sink.size != 0) {
    if (x_->mirror_body.size() + x_->sink.size > mirror_->max_body_bytes) {
      dropMirror();  // too large to mirror
    } else {
      x_->mirror_body.append(x_->chunk.get(), x_->sink.size);
    }
  }
  if (!up_ep_) {
    // The first piece: when it is the whole body, a retry can send it again.
    if (const RetryPolicy* rp = gen_->snap->config.routes[route_idx_].retry ? &*gen_->snap->config.routes[route_idx_].retry : nullptr)
      replayable_ = x_->req->is_done() && x_->sink.size <= rp->max_body_bytes;
    replay_len_ = x_->sink.size;
    return connectUpstream();
  }
  writeRequest();
}

void Session::frameOut(std::size_t n, bool last) {
  out_bufs_[0] = head_pending_ ? asio::buffer(x_->out_head) : asio::const_buffer();
  out_bufs_[1] = out_bufs_[2] = out_bufs_[3] = asio::const_buffer();
  const bool chunked = out_framing_ == Framing::kChunked;
  if (n != 0) {
    if (chunked) {
      auto r = std::to_chars(chunk_line_, chunk_line_ + sizeof chunk_line_ - 2, n, 16);
      r.ptr[0] = '\r';
      r.ptr[1] = '\n';
      out_bufs_[1] = asio::buffer(chunk_line_, static_cast<std::size_t>(r.ptr + 2 - chunk_line_));
    }
    out_bufs_[2] = asio::buffer(x_->chunk.get(), n);
  }
  if (chunked) {
    static constexpr std::string_view kEnd = "\r\n0\r\n\r\n";
    if (n != 0) out_bufs_[3] = asio::buffer(last ? kEnd : kEnd.substr(0, 2));
    else if (last) out_bufs_[3] = asio::buffer(kEnd.substr(2));
  }
}

void Session::writeRequest() {
  const bool last = x_->req->is_done();
  frameOut(x_->sink.size, last);
  arm(responseTimeout());
  asio::async_write(up_, out_bufs_, [self = shared_from_this(), last](error_code ec, std::size_t) {
    self->head_pending_ = false;
    self->onRequestWritten(ec, last);
  });
}

void Session::onRequestWritten(error_code ec, bool last) {
  if (ec) {
    if (timed_out_) {
      releaseUpstream(false);
      attemptEnded(AttemptResult::kTimeout, 0);
      if (retryAttempt(AttemptResult::kTimeout, 0)) return;
      return reply(504, "upstream timeout", true);
    }
    if (retryOnFreshConnection(ec)) return;
    if (ec != asio::error::operation_aborted) {
      attemptEnded(AttemptResult::kReset, 0);
      if (retryAttempt(AttemptResult::kReset, 0)) return;
    }
    return upstreamFailed(ec, "send");
  }
  if (!last) {
    x_->sink.reset(x_->chunk.get(), Exchange::kChunk);
    return readBody();
  }
  if (mirror_) sendMirror();
  readResponseHeader();
}

void Session::sendMirror() {
  const MirrorConfig& mc = *mirror_;
  mirror_ = nullptr;
  RequestHeadInfo info;
  info.method = x_->req_head.startA();
  info.target = plan_.target;
  info.host = plan_.host;
  info.forwarded_host = plan_.routed_host;
  info.framing = plan_.framing != Framing::kNone ? Framing::kLength : Framing::kNone;
  info.content_length = x_->mirror_body.size();
  info.forward = ForwardInfo{client_ip_, down_.secure() ? "https" : "http", std::string_view(request_id_, sizeof request_id_)};
  std::string extra = x_->flags_header;
  extra += "x-fledge-shadow: 1\r\nConnection: close\r\n";
  info.extra = extra;
  std::string request;
  request.reserve(512 + x_->mirror_body.size());
  appendRequestHead(request, x_->req_head, info);
  request += x_->mirror_body;
  x_->mirror_body.clear();
  w_.mirror(std::move(request), gen_, route_idx_, mc.cluster_index, mc.timeout);
}

// ---------------------------------------------------------------------------------------------
// Response: upstream -> downstream

void Session::readResponseHeader() {
  phase_ = Phase::kResponseHeader;
  x_->res.emplace(x_->res_head, x_->sink);
  x_->sink.reset(x_->chunk.get(), Exchange::kChunk);
  x_->res->header_limit(kResponseHeaderLimit);
  x_->res->body_limit(std::numeric_limits<std::uint64_t>::max());
  if (plan_.head) x_->res->skip(true);
  arm(responseTimeout());
  http::async_read_header(up_, x_->ubuf, *x_->res, [self = shared_from_this()](error_code ec, std::size_t) {
    self->onResponseHeader(ec);
  });
}

void Session::onResponseHeader(error_code ec) {
  if (ec) {
    if (timed_out_) {
      gen_->metrics->upstreamError(cluster_, UpstreamError::kTimeout);
      log::limited(g_response_timeout_log, log::Level::kWarn, "upstream response timeout", {{"cluster", gen_->snap->clusters[cluster_].config->name},
                                              {"endpoint", gen_->snap->clusters[cluster_].names[endpoint_]}});
      releaseUpstream(false);
      attemptEnded(AttemptResult::kTimeout, 0);
      if (retryAttempt(AttemptResult::kTimeout, 0)) return;
      return reply(504, "upstream timeout", true);
    }
    if (retryOnFreshConnection(ec)) return;
    if (ec != asio::error::operation_aborted) {
      attemptEnded(AttemptResult::kReset, 0);
      if (retryAttempt(AttemptResult::kReset, 0)) return;
    }
    return upstreamFailed(ec, "response");
  }
  unsigned status = x_->res->status();
  if (status >= 200) {
    const auto& route = gen_->snap->config.routes[route_idx_];
    const bool retriable = route.retry && route.retry->retriesStatus(status);
    attemptEnded(retriable ? AttemptResult::kStatus : AttemptResult::kOk, status);
    if (retriable) {
      if (endpoint_ < 64) tried_ |= std::uint64_t{1} << endpoint_;
      if (retryAttempt(AttemptResult::kStatus, status)) return;
    }
  }
  if (status < 100 || status > 599) return upstreamFailed(http::error::bad_status, "invalid status code");
  // Framing Fledge relays exactly: a Transfer-Encoding must be exactly "chunked", without a
  // Content-Length (RFC 9112 §6.3: both at once "ought to be handled as an error"); any other
  // coding list is refused, as nginx does.
  if (x_->res_head.has(http::field::transfer_encoding) &&
      (!onlyChunked(x_->res_head) || x_->res_head.has(http::field::content_length)))
    return upstreamFailed(http::error::bad_transfer_encoding, "unsupported transfer-encoding");
  if (status >= 100 && status < 200) {
    if (status == 101) return upstreamFailed(http::error::bad_value, "unexpected 101 response");
    return readResponseHeader();  // interim responses (e.g. 103) are not relayed
  }
  body_expected_ = !plan_.head && status != 204 && status != 304;
  ResponseHeadInfo info;
  info.version = version_;
  info.status = status;
  info.reason = x_->res_head.startA();
  if (!body_expected_) {
    info.framing = Framing::kAsIs;
  } else if (auto len = x_->res->content_length(); len && !x_->res->chunked()) {
    info.framing = Framing::kLength;
    info.content_length = *len;
  } else if (version_ == 11) {
    info.framing = Framing::kChunked;  // chunked upstream, or close-delimited re-framed as chunks
  } else {
    info.framing = Framing::kClose;  // an HTTP/1.0 client cannot read chunks
    keep_alive_ = false;
  }
  if (w_.draining()) keep_alive_ = false;
  info.keep_alive = keep_alive_;
  info.extra = x_->down_extra;
  x_->out_head.clear();
  appendResponseHead(x_->out_head, x_->res_head, info);
  out_framing_ = info.framing;
  head_pending_ = true;
  if (!body_expected_) {
    x_->sink.size = 0;
    return writeResponse();
  }
  pumpResponse();
}

void Session::pumpResponse() {
  x_->sink.reset(x_->chunk.get(), Exchange::kChunk);
  if (x_->res->is_done()) return writeResponse();
  arm(gen_->snap->config.timeouts.upstream_response);
  http::async_read_some(up_, x_->ubuf, *x_->res, [self = shared_from_this()](error_code ec, std::size_t) {
    self->onResponseBodyRead(ec);
  });
}

void Session::onResponseBodyRead(error_code ec) {
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    if (!responseStarted()) {
      if (timed_out_) {
        releaseUpstream(false);
        return reply(504, "upstream timeout", true);
      }
      return upstreamFailed(ec, "response body");
    }
    log::limited(g_mid_response_log, log::Level::kWarn, "upstream failed mid-response", {{"cluster", gen_->snap->clusters[cluster_].config->name},
                                               {"error", timed_out_ ? "timeout" : ec.message()}});
    return abort();
  }
  if (x_->sink.size == 0 && !x_->res->is_done()) return pumpResponse();
  writeResponse();
}

void Session::writeResponse() {
  const bool last = !body_expected_ || x_->res->is_done();
  bytes_out_ += x_->sink.size;
  frameOut(x_->sink.size, last && body_expected_);
  phase_ = Phase::kResponse;  // from here on, bytes of the response may be out
  arm(gen_->snap->config.timeouts.body_read);
  // The client socket is non-blocking: when it takes the whole piece (nearly always), the
  // exchange goes on at once instead of a scheduler turn later. For a connection that closes
  // after this response, that turn decides whether Fledge or the client closes first.
  // The last piece before a close goes out with MSG_MORE: the close that follows at once then
  // sends it and the FIN in one segment, which the client handles in one wake-up.
  error_code ec;
  std::size_t n = down_.writeSome(out_bufs_, ec, last && !keep_alive_ ? MSG_MORE : 0);
  if (!ec && n == asio::buffer_size(out_bufs_)) return onResponseWritten(last);
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) return abort();
  for (auto& b : out_bufs_) {
    const std::size_t k = std::min(n, b.size());
    b += k;
    n -= k;
  }
  asio::async_write(down_, out_bufs_, [self = shared_from_this(), last](error_code e, std::size_t) {
    if (e) return self->abort();
    self->onResponseWritten(last);
  });
}

void Session::onResponseWritten(bool last) {
  head_pending_ = false;
  if (!last) return pumpResponse();
  finishExchange();
}

void Session::beginExchange(bool header_complete) {
  started_ = Clock::now();
  gen_ = w_.generation();  // pinned until the exchange ends
  route_idx_ = w_.snapshot().config.routes.size();  // "no route" until one matches
  arm_idx_ = 0;
  recorded_ = false;
  routed_any_ = header_complete;
  if (header_complete) w_.random().requestId(request_id_);
  bytes_in_ = bytes_out_ = 0;
  upstream_used_ = false;
  x_->flags_header.clear();
  x_->flags_value.clear();
  x_->outcome_count = 0;
}

void Session::record(unsigned status) {
  if (recorded_) return;
  recorded_ = true;
  if (attempt_ > 1 && gen_->metrics->enabled()) bump(gen_->metrics->clusterBlock(cluster_)->retried[status >= 500 ? 1 : 0]);
  leaveCluster();
  const auto duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
  gen_->metrics->request(route_idx_, arm_idx_, status, duration);
  for (std::uint8_t i = 0; i < x_->outcome_count; ++i) gen_->metrics->flagOutcome(x_->outcomes[i].slot, x_->outcomes[i].variant, status, duration);
  if (AccessLog* al = w_.accessLog()) {
    if (!al->push(w_.index(), accessLine(status, duration))) bump(w_.counters().access_log_dropped);
  }
}

std::string Session::accessLine(unsigned status, std::chrono::microseconds duration) const {
  const auto& cfg = gen_ ? gen_->snap->config : w_.snapshot().config;
  const bool routed = route_idx_ < cfg.routes.size();
  const auto& head = x_->req_head;
  char ts[64];
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000));
  std::string line;
  line.reserve(384);
  line += "{\"time\":\"";
  line += ts;
  line += "\",\"request_id\":";
  log::appendJsonString(line, routed_any_ ? std::string_view(request_id_, sizeof request_id_) : std::string_view());
  line += ",\"client_ip\":";
  log::appendJsonString(line, client_ip_);
  line += ",\"method\":";
  log::appendJsonString(line, head.startA());
  line += ",\"path\":";
  log::appendJsonString(line, head.startB());
  line += ",\"status\":" + std::to_string(status);
  line += ",\"bytes_in\":" + std::to_string(bytes_in_);
  line += ",\"bytes_out\":" + std::to_string(bytes_out_);
  line += ",\"duration_us\":" + std::to_string(duration.count());
  line += ",\"route\":";
  log::appendJsonString(line, routed ? std::string_view(cfg.routes[route_idx_].name) : std::string_view());
  line += ",\"arm\":";
  log::appendJsonString(line, routed && cfg.routes[route_idx_].split ? std::string_view(cfg.routes[route_idx_].split->arms[arm_idx_].name)
                                                                      : std::string_view());
  line += ",\"upstream\":";
  log::appendJsonString(line, upstream_used_ && gen_ ? std::string_view(gen_->snap->clusters[cluster_].names[endpoint_]) : std::string_view());
  line += ",\"flags\":";
  log::appendJsonString(line, x_->flags_value);
  line += "}\n";
  return line;
}

void Session::finishExchange() {
  record(x_->res->status());
  // A HEAD or bodyless response leaves the upstream parser done after the header.
  bool reusable = x_->res->is_done() && x_->res->keep_alive() && x_->ubuf.size() == 0;
  releaseUpstream(reusable);
  gen_.reset();
  if (!keep_alive_) return lingerClose();
  readHeader();
}

// ---------------------------------------------------------------------------------------------
// Failures

bool Session::retryOnFreshConnection(error_code ec) {
  // A kept-alive connection the upstream closed just as we reused it: safe to resend only when
  // the request had no body and no byte of a response arrived.
  // Only idempotent methods (RFC 9110 §9.2.2) are resent automatically.
  if (!upstream_reused_ || retried_ || plan_.framing != Framing::kNone || x_->ubuf.size() != 0 || !isPeerGone(ec) ||
      !isIdempotent(x_->req->method()))
    return false;
  retried_ = true;
  x_->sink.reset(x_->chunk.get(), Exchange::kChunk);
  releaseUpstream(false);
  connectUpstream();
  return true;
}

std::chrono::milliseconds Session::responseTimeout() const {
  const auto& cfg = gen_->snap->config;
  const auto& retry = cfg.routes[route_idx_].retry;
  if (retry && retry->per_try_timeout.count() > 0) return std::min(retry->per_try_timeout, cfg.timeouts.upstream_response);
  return cfg.timeouts.upstream_response;
}

void Session::attemptEnded(AttemptResult r, unsigned status) {
  gen_->pool.recordAttempt(cluster_, endpoint_, r, status, Clock::now());
}

bool Session::fallBack() {
  const RouteSplit& rs = gen_->snap->route_splits[route_idx_];
  if (!rs.config || fell_back_ || rs.config->fallback_index == SIZE_MAX || arm_idx_ == rs.config->fallback_index) return false;
  const std::size_t to = rs.config->fallback_index;
  fell_back_ = true;
  gen_->metrics->fallback(route_idx_, arm_idx_);
  // The upstream (and, if exposed, the client) learn the arm that served the request.
  auto relabel = [&](std::string& lines) {
    if (auto at = lines.find(rs.upstream_lines[arm_idx_]); at != std::string::npos)
      lines.replace(at, rs.upstream_lines[arm_idx_].size(), rs.upstream_lines[to]);
  };
  relabel(x_->out_head);
  relabel(x_->down_extra);
  leaveCluster();
  arm_idx_ = to;
  cluster_ = rs.config->arms[to].cluster_index;
  tried_ = 0;
  any_refused_ = false;
  connectUpstream();
  return true;
}

void Session::leaveCluster() {
  if (pending_) {
    circuit_->pending.fetch_sub(1, std::memory_order_relaxed);
    pending_ = false;
  }
  if (circuit_) {
    circuit_->requests.fetch_sub(1, std::memory_order_relaxed);
    circuit_.reset();
  }
  if (!cstate_) return;
  --cstate_->requests;
  if (retrying_) --cstate_->retries;
  retrying_ = false;
  cstate_.reset();
}

bool Session::retryAttempt(AttemptResult r, unsigned status) {
  const auto& route = gen_->snap->config.routes[route_idx_];
  if (!route.retry || responseStarted()) return false;
  const RetryPolicy& p = *route.retry;
  if (attempt_ >= p.attempts || !p.retriesOn(r, status) || !p.allowsMethod(x_->req->method())) return false;
  // The whole request must be at hand to send again: no body, or one that fit the first piece.
  if (plan_.framing != Framing::kNone && !replayable_) return false;
  if (!cstate_) return false;
  ClusterCounters& counters = *gen_->metrics->clusterBlock(cluster_);
  if (!retrying_ && !retryBudgetAllows(cstate_->requests, cstate_->retries, p.budget_percent, p.min_retry_concurrency)) {
    if (gen_->metrics->enabled()) bump(counters.budget_exhausted);
    return false;
  }
  if (!retrying_) {
    retrying_ = true;
    ++cstate_->retries;
  }
  if (gen_->metrics->enabled()) bump(counters.retries[static_cast<std::size_t>(r) - 1]);
  ++attempt_;
  releaseUpstream(false);
  // The upstream learns which attempt this is; the client learns nothing new.
  std::string& head = x_->out_head;
  if (attempt_line_) head.erase(attempt_line_, head.find("\r\n", attempt_line_) + 2 - attempt_line_);
  else attempt_line_ = head.size() - 2;  // before the blank line that ends the head
  head.insert(attempt_line_, "x-fledge-attempt: " + std::to_string(attempt_) + "\r\n");
  x_->sink.size = replay_len_;
  retried_ = true;  // no idle-connection reuse: a fresh connection for a retry
  connectUpstream();
  return true;
}

void Session::upstreamFailed(error_code ec, const char* stage) {
  const auto& rc = gen_->snap->clusters[cluster_];
  gen_->metrics->upstreamError(cluster_, timed_out_ ? UpstreamError::kTimeout : UpstreamError::kReset);
  log::limited(g_upstream_failed_log, log::Level::kWarn, "upstream failed", {{"cluster", rc.config->name},
                                {"endpoint", rc.names[endpoint_]},
                                {"stage", stage},
                                {"error", ec.message()}});
  releaseUpstream(false);
  if (ec == asio::error::operation_aborted && !timed_out_) return abort();
  reply(502, "upstream connection failed", true);
}

void Session::releaseUpstream(bool reusable) {
  if (!up_ep_) return;
  // To the endpoint state, which outlives configuration changes; a retired endpoint closes it.
  UpstreamPool::release(*up_ep_, reusable ? &up_ : nullptr, gen_->pool.settings(cluster_).max_idle, Clock::now());
  up_ep_.reset();
  error_code ec;
  if (up_.is_open()) up_.close(ec);
}

void Session::dropMirror() {
  if (!mirror_) return;
  mirror_ = nullptr;
  w_.releaseMirrorSlot();
  if (x_) x_->mirror_body.clear();
}

void Session::reply(unsigned status, std::string_view text, bool close) {
  if (responseStarted()) return abort();
  // Refused before a whole header arrived (400, 408, 414, 431, ...): counted under no route.
  if (!routed_any_) beginExchange(false);
  record(status);
  releaseUpstream(false);
  dropMirror();
  if (close) keep_alive_ = false;
  phase_ = Phase::kReply;
  x_->scratch.clear();
  x_->scratch += version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  x_->scratch += std::to_string(status);
  x_->scratch += ' ';
  x_->scratch += reasonFor(status);
  x_->scratch += "\r\nContent-Type: text/plain\r\nContent-Length: ";
  x_->scratch += std::to_string(text.size() + 1);
  x_->scratch += keep_alive_ ? (version_ == 10 ? "\r\nConnection: keep-alive" : "") : "\r\nConnection: close";
  x_->scratch += "\r\nServer: fledge\r\n";
  if (!plan_.location.empty()) appendHeaderLine(x_->scratch, "Location", plan_.location);
  x_->scratch += "\r\n";
  if (!plan_.head) {  // a HEAD request gets the length of the body, not the body
    x_->scratch += text;
    x_->scratch += '\n';
  }
  arm(gen_ ? gen_->snap->config.timeouts.body_read : w_.snapshot().config.timeouts.body_read);
  asio::async_write(down_, asio::buffer(x_->scratch), [self = shared_from_this()](error_code ec, std::size_t) {
    if (ec) return self->abort();
    self->gen_.reset();
    if (!self->keep_alive_) return self->lingerClose();
    self->readHeader();
  });
}

void Session::lingerClose() {
  phase_ = Phase::kLinger;
  // The client asked to close and everything it sent was read: close at once, as nginx does.
  if (plan_.client_close && x_ && x_->buf.size() == 0 && x_->req && x_->req->is_done()) return abort();
  // Otherwise half-close, then read and discard for a while: closing with unread input would
  // send an RST that can destroy the response still in flight to the client.
  if (!down_.shutdown(tcp::socket::shutdown_send)) return abort();
  w_.exchanges().give(std::move(x_));  // what is read now is dropped into the worker's sink
  linger_bytes_ = 0;
  deadline_ = Clock::now() + kLingerTime;
  timed_out_ = false;
  struct Drain {
    std::shared_ptr<Session> self;
    void operator()(error_code ec, std::size_t n) {
      auto& s = *self;
      s.linger_bytes_ += n;
      if (ec || s.linger_bytes_ > kLingerMaxBytes) return s.abort();
      s.down_.socket().async_read_some(s.w_.discardBuffer(), std::move(*this));
    }
  };
  down_.socket().async_read_some(w_.discardBuffer(), Drain{shared_from_this()});
}

void Session::abort() {
  if (phase_ == Phase::kResponse && x_ && x_->res && x_->res->is_header_done()) record(x_->res->status());
  leaveCluster();
  disarm();
  releaseUpstream(false);
  dropMirror();
  down_.close();
}

}  // namespace fledge::proxy
