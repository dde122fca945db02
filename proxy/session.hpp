#pragma once
// A downstream connection and the request path it drives:
// read request header -> route -> upstream connection -> stream request body ->
// read response header -> stream response body -> next request (keep-alive, pipelining).
// Timeouts are deadlines checked by the worker's sweep, so no timer is armed per operation.
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <array>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/client_connection.hpp"
#include "proxy/exchange.hpp"
#include "proxy/flag_context.hpp"
#include "proxy/headers.hpp"
#include "proxy/http_head.hpp"
#include "proxy/planner.hpp"
#include "proxy/worker.hpp"

namespace fledge::proxy {

class Session : public std::enable_shared_from_this<Session>, public SessionHook {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  // `fd`: the accepted connection, non-blocking; the session owns it. The session keeps
  // `listener` as it was when the connection came (a reload may replace or remove it).
  Session(Worker& worker, int fd, const tcp::endpoint& peer, std::shared_ptr<const ListenerInfo> listener);
  ~Session();

  void start();
  // Called by the worker's sweep when the current deadline has passed.
  void checkDeadline(Clock::time_point now);
  // Called when the worker starts draining: idle connections close now, busy ones after the response.
  void onDrain();

 private:
  // The one state the session reads: where the current exchange is.
  enum class Phase {
    kHandshake,       // TLS handshake of a new connection
    kIdle,            // waiting for a request (no exchange memory held)
    kHeader,          // reading the request header
    kRequest,         // reading the request body (and, once connected, sending it)
    kConnect,         // taking or opening an upstream connection
    kResponseHeader,  // waiting for the response header (nothing sent to the client yet)
    kResponse,        // relaying the response: bytes may be out, errors can only abort
    kReply,           // sending a local reply
    kLinger,          // closing: draining what the client still sends
  };
  bool responseStarted() const { return phase_ == Phase::kResponse || phase_ == Phase::kReply; }

  void onHandshake(error_code ec);
  // Downstream request header.
  void readHeader();
  void onReadable(error_code ec);  // an idle connection has bytes (or EOF): take an exchange
  void prepareParser();
  void parseBufferedHeader();
  void onHeaderRead(error_code ec, std::size_t n);
  void onHeaderError(error_code ec);
  void onHeader();
  // Upstream connection.
  void connectUpstream();
  void onConnect(error_code ec);
  void onUpstreamHandshake(error_code ec);
  void onUpstreamReady();
  void send100Continue();
  // Request body relay.
  void startBody();
  void readBody();
  bool pieceComplete() const;  // the exchange's chunk holds the next piece to send
  void armBody();              // inactivity and minimum-rate deadline
  void onRequestBodyRead(error_code ec);
  void onBodyPiece();
  void writeRequest();
  // Fills out_bufs_ with the pending head (if any) and `n` body bytes from the exchange's chunk, framed for
  // out_framing_; `last` ends the body.
  void frameOut(std::size_t n, bool last);
  void onRequestWritten(error_code ec, bool last);
  // Response.
  void sendMirror();
  void readResponseHeader();
  void onResponseHeader(error_code ec);
  void pumpResponse();
  void onResponseBodyRead(error_code ec);
  void writeResponse();
  void onResponseWritten(bool last);
  void finishExchange();
  void beginExchange(bool header_complete);  // per-request state for metrics and the access log
  void record(unsigned status);  // once per exchange: metrics and the access log
  std::string accessLine(unsigned status, std::chrono::microseconds duration) const;
  // Failure paths.
  void upstreamFailed(error_code ec, const char* stage);
  bool retryOnFreshConnection(error_code ec);
  // The route's retry policy after an attempt that ended with `r`: true when another attempt
  // started (the failed one is released, the request is replayed on another endpoint).
  bool retryAttempt(AttemptResult r, unsigned status);
  // Outlier detection learns how the attempt on endpoint_ ended.
  void attemptEnded(AttemptResult r, unsigned status);
  std::chrono::milliseconds responseTimeout() const;  // per try, if the route sets one
  void leaveCluster();  // the exchange no longer counts as in flight (retry budget, circuit breaker)
  // No endpoint of the arm's cluster can take the request: the split's fallback arm does, if it
  // has one. True when the request went there.
  bool fallBack();
  void reply(unsigned status, std::string_view text, bool close);
  void lingerClose();
  void releaseUpstream(bool reusable);
  void dropMirror();  // gives back the mirror slot of a copy that will not be sent
  void abort();

  void arm(std::chrono::milliseconds d) {
    deadline_ = Clock::now() + d;
    timed_out_ = false;
  }
  void disarm() { deadline_ = Clock::time_point::max(); }

  Worker& w_;
  std::shared_ptr<const ListenerInfo> listener_;
  ClientConnection down_;
  std::shared_ptr<const ServerTls> tls_contexts_;  // during the handshake (SNI chooses among them)
  UpstreamConnection up_;
  std::unique_ptr<Exchange> x_;  // from the worker's stock while a request is in flight
  const MirrorConfig* mirror_ = nullptr;  // set while this request is to be mirrored
  char request_id_[32];
  Clock::time_point started_{};
  Clock::time_point body_started_{};
  std::shared_ptr<Generation> gen_;  // pinned for the whole exchange: snapshot, pool, metrics
  UpstreamPool::EndpointRef up_ep_;  // the endpoint of the upstream connection held
  std::size_t route_idx_ = 0;
  std::size_t arm_idx_ = 0;
  bool recorded_ = true;
  bool routed_any_ = false;  // the request header was complete (there is a request id)
  bool upstream_used_ = false;
  std::uint64_t bytes_in_ = 0, bytes_out_ = 0;  // body bytes
  bool head_pending_ = false;
  Framing out_framing_ = Framing::kNone;
  std::array<boost::asio::const_buffer, 4> out_bufs_;
  char chunk_line_[24];
  std::string client_ip_;
  Plan plan_;  // what onHeader decided for the current exchange (proxy/planner.hpp)

  Clock::time_point deadline_ = Clock::time_point::max();
  Phase phase_ = Phase::kIdle;
  bool timed_out_ = false;
  bool start_line_done_ = false;
  bool keep_alive_ = true;
  bool body_expected_ = true;
  bool upstream_reused_ = false;
  bool retried_ = false;
  unsigned version_ = 11;
  std::size_t cluster_ = 0;
  std::size_t endpoint_ = 0;
  std::uint64_t tried_ = 0;     // endpoints that refused or failed during this exchange
  bool any_refused_ = false;
  unsigned attempt_ = 1;        // policy retries: the upstream sees x-fledge-attempt from 2 on
  std::size_t replay_len_ = 0;  // the whole request body, when it fit the first piece
  bool replayable_ = false;
  bool retrying_ = false;       // a retry of this exchange counts against the budget
  std::size_t attempt_line_ = 0;  // where x-fledge-attempt sits in the upstream head (0: not yet)
  UpstreamPool::ClusterStateRef cstate_;  // set while the exchange counts as in flight
  std::shared_ptr<CircuitCounts> circuit_;  // set while the exchange counts for a circuit breaker
  bool pending_ = false;                    // ... and while it waits for a new connection
  bool fell_back_ = false;                  // the split's fallback arm took the request
  std::size_t linger_bytes_ = 0;
};

}  // namespace fledge::proxy
