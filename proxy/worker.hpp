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
#include "proxy/metrics.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/upstream_pool.hpp"

namespace fledge::proxy {

class Session;
class MirrorCall;

using SessionHook = boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

class Worker {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  Worker(unsigned index, std::shared_ptr<const Snapshot> snap);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens an acceptor on `ep` with SO_REUSEPORT; returns the bound endpoint.
  tcp::endpoint listen(const tcp::endpoint& ep, boost::system::error_code& ec);

  void start();
  // Thread-safe: stop accepting, close idle connections, finish in-flight requests.
  void drain();
  // Thread-safe: abandon whatever is still running.
  void stop();
  void join();

  // --- used by sessions, on this worker's thread only ---
  boost::asio::io_context& ioc() { return *ioc_; }
  const Snapshot& snapshot() const { return *snap_; }
  std::shared_ptr<const Snapshot> pinSnapshot() const { return snap_; }
  UpstreamPool& pool() { return *pool_; }
  std::shared_ptr<UpstreamPool> poolShared() { return pool_; }
  // Thread-safe: new requests on this worker use `snap` from now on; requests in flight keep the
  // snapshot (and upstream pool) they started with.
  void publish(std::shared_ptr<const Snapshot> snap);
  // The metrics object in use (any thread).
  const WorkerMetrics* currentMetrics() const;
  bool draining() const { return draining_; }
  // A fresh 128-bit request id, as 32 lowercase hex digits.
  void newRequestId(char out[32]);
  std::uint64_t random();

  // Starts a shadow copy to `cluster` unless `max_in_flight` copies are already running.
  void mirror(std::string request, WorkerMetrics& metrics, std::size_t route, std::size_t cluster,
              std::uint32_t max_in_flight, std::chrono::milliseconds timeout);
  WorkerMetrics& metrics() { return *metrics_; }
  void setAccessLog(AccessLog* log) { access_log_ = log; }
  AccessLog* accessLog() { return access_log_; }
  unsigned index() const { return index_; }
  const WorkerMetrics& metrics() const { return *metrics_; }
  // Scratch for flag evaluation; requests on one worker run one at a time between awaits.
  flags::EvalScratch& evalScratch() { return eval_scratch_; }
  flags::Arena& contextArena() { return context_arena_; }

 private:
  friend class Session;
  friend class MirrorCall;
  void accept(std::size_t i);
  void scheduleSweep();
  void sweep();

  unsigned index_;
  std::shared_ptr<const Snapshot> snap_;
  void apply(std::shared_ptr<const Snapshot> snap);  // on this worker's thread

  // Every metrics object this worker has had: requests record into the one of the snapshot they
  // started on, so none is freed before the worker.
  std::vector<std::unique_ptr<WorkerMetrics>> all_metrics_;
  WorkerMetrics* metrics_ = nullptr;
  mutable std::mutex metrics_mu_;  // guards metrics_ for readers on other threads
  AccessLog* access_log_ = nullptr;
  std::shared_ptr<UpstreamPool> pool_;
  boost::intrusive::list<Session, boost::intrusive::base_hook<SessionHook>, boost::intrusive::constant_time_size<false>>
      sessions_;
  std::size_t session_count_ = 0;
  std::uint32_t mirrors_in_flight_ = 0;  // shadow copies under way (their counts are in metrics)
  flags::EvalScratch eval_scratch_;
  flags::Arena context_arena_;
  std::uint64_t rng_state_;
  bool draining_ = false;
  std::chrono::milliseconds sweep_interval_;
  // Destroyed explicitly first in ~Worker so that sessions freed with it still see the pool.
  std::optional<boost::asio::io_context> ioc_;
  std::vector<tcp::acceptor> acceptors_;
  std::optional<boost::asio::steady_timer> sweep_timer_;
  std::thread thread_;
};

}  // namespace fledge::proxy
