#pragma once
// One worker: a thread running its own io_context with its own acceptors (SO_REUSEPORT),
// sessions, upstream pool and timeout sweep. Nothing is shared with other workers on the
// request path.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <atomic>
#include <mutex>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "flags/flag_set.hpp"
#include "proxy/access_log.hpp"
#include "proxy/exchange.hpp"
#include "proxy/metrics.hpp"
#include "proxy/planner.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/tls.hpp"
#include "proxy/upstream_pool.hpp"

namespace fledge::proxy {

class Session;
class MirrorCall;

// Everything a request reads for one configuration on one worker: the snapshot, the upstream
// pool built for it and the metrics view laid out for it. A request pins the generation current
// when it starts and releases it when it ends; retries and mirrors use the pinned one.
struct Generation {
  std::shared_ptr<const Snapshot> snap;
  // Separately owned so that the admin thread can hold it without keeping the pool (whose
  // sockets belong to this worker's thread) alive.
  std::shared_ptr<WorkerMetrics> metrics;
  UpstreamPool pool;
  Generation(std::shared_ptr<const Snapshot> s, MetricsRegistry& registry, Generation* previous);
};

// A TCP socket bound to `ep` with SO_REUSEPORT (so every worker binds its own), listening and
// non-blocking; -1 with `ec` on failure. `bound` is the actual address (port 0 picks one).
int openListeningSocket(const boost::asio::ip::tcp::endpoint& ep, boost::asio::ip::tcp::endpoint& bound,
                        boost::system::error_code& ec);

// What a session needs to know about the listener that accepted it.
struct ListenerInfo {
  std::string name;
  std::shared_ptr<ReloadableServerTls> tls;  // null: plain HTTP
  std::uint16_t redirect_https_port = 0;     // non-zero: answers every request with a redirect to HTTPS
};

using SessionHook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class Worker {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  Worker(unsigned index, std::shared_ptr<const Snapshot> snap);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Thread-safe, in order: listening slot N is the Nth socket adopted (the same on every worker).
  // `fd` is a bound, listening, non-blocking socket (openListeningSocket); the worker owns it.
  void adoptListener(int fd, std::shared_ptr<const ListenerInfo> listener);
  // Stops accepting on `slot`; its open connections run on.
  void closeListener(std::size_t slot);
  // New connections on `slot` get `listener` (e.g. new TLS settings); open ones keep theirs.
  void replaceListener(std::size_t slot, std::shared_ptr<const ListenerInfo> listener);

  void start();
  // Thread-safe: stop accepting, close idle connections, finish in-flight requests.
  void drain();
  // Thread-safe: abandon whatever is still running.
  void stop();
  void join();

  // --- used by sessions, on this worker's thread only ---
  boost::asio::io_context& ioc() { return *ioc_; }
  const Snapshot& snapshot() const { return *gen_->snap; }
  const std::shared_ptr<Generation>& generation() const { return gen_; }
  // Thread-safe: new requests on this worker use `snap` from now on; requests in flight keep the
  // generation they started with.
  void publish(std::shared_ptr<const Snapshot> snap);
  // The metrics view in use (any thread).
  std::shared_ptr<const WorkerMetrics> currentMetrics() const;
  bool draining() const { return draining_; }
  Random& random() { return random_; }
  PlanScratch& planScratch() { return plan_scratch_; }

  // Shadow copies: a request reserves a slot when it decides to mirror (false: `max_in_flight`
  // copies are already under way, nothing is buffered), then sends the copy on `gen` or gives the
  // slot back.
  bool admitMirror(std::uint32_t max_in_flight);
  void releaseMirrorSlot() { --mirrors_in_flight_; }
  void mirror(std::string request, std::shared_ptr<Generation> gen, std::size_t route, std::size_t cluster,
              std::chrono::milliseconds timeout);
  void setAccessLog(AccessLog* log) { access_log_ = log; }
  AccessLog* accessLog() { return access_log_; }
  unsigned index() const { return index_; }
  WorkerCounters& counters() { return *registry_.worker(); }
  ExchangePool& exchanges() { return exchanges_; }
  // Where lingering closes read what they discard: nothing is kept, so all sessions share it.
  boost::asio::mutable_buffer discardBuffer() { return {discard_.get(), kDiscard}; }

 private:
  friend class Session;
  friend class MirrorCall;
  void accept(std::size_t i);       // waits until acceptor i has a connection queued
  void acceptReady(std::size_t i);  // takes the queued connections of acceptor i
  void scheduleSweep();
  void sweep();

  unsigned index_;
  void apply(std::shared_ptr<const Snapshot> snap);  // on this worker's thread

  static constexpr std::size_t kDiscard = 16 * 1024;
  MetricsRegistry registry_;  // before gen_: generations take their blocks from it
  ExchangePool exchanges_;    // before ioc_: sessions freed with it give theirs back
  std::unique_ptr<char[]> discard_{new char[kDiscard]};
  std::shared_ptr<Generation> gen_;
  mutable std::mutex metrics_mu_;  // guards published_metrics_ for readers on other threads
  std::shared_ptr<const WorkerMetrics> published_metrics_;
  AccessLog* access_log_ = nullptr;
  boost::intrusive::list<Session, boost::intrusive::base_hook<SessionHook>, boost::intrusive::constant_time_size<false>>
      sessions_;
  std::size_t session_count_ = 0;
  std::uint32_t mirrors_in_flight_ = 0;  // shadow copies admitted and not finished
  PlanScratch plan_scratch_;  // requests on one worker are planned one at a time
  Random random_;
  bool draining_ = false;
  std::chrono::milliseconds sweep_interval_;
  // Destroyed explicitly first in ~Worker so that sessions freed with it still see the pool.
  std::optional<boost::asio::io_context> ioc_;
  // Index-aligned, by slot; a closed slot keeps its (closed) acceptor and a null listener, so
  // slot numbers never shift.
  std::vector<tcp::acceptor> acceptors_;
  std::vector<std::shared_ptr<const ListenerInfo>> listeners_;
  bool started_ = false;
  std::optional<boost::asio::steady_timer> sweep_timer_;
  std::thread thread_;
};

}  // namespace fledge::proxy
