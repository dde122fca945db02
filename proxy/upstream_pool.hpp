#pragma once
// Per-worker upstream state: kept-alive connections per endpoint, load-balancing picks,
// and passive ejection of endpoints that refuse connections. Owned by one worker thread,
// so nothing here is locked.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "proxy/metrics.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  // `metrics` (may be null) receives the busy/idle connection gauges.
  UpstreamPool(const Snapshot& snap, WorkerMetrics* metrics);

  // Chooses an endpoint of `cluster` by its LB policy, skipping ejected endpoints and those whose
  // bit is set in `exclude`. nullopt when none is available.
  std::optional<std::size_t> pick(std::size_t cluster, std::uint64_t exclude, Clock::time_point now);

  // A kept-alive connection that the peer has not closed, or nullopt.
  std::optional<tcp::socket> takeIdle(std::size_t cluster, std::size_t endpoint, Clock::time_point now);

  // Whether a new connection may be opened (the per-endpoint cap counts busy + idle).
  bool canOpen(std::size_t cluster, std::size_t endpoint) const;

  // Bookkeeping for a connection a request holds; every acquire is paired with one release.
  void acquired(std::size_t cluster, std::size_t endpoint);
  void release(std::size_t cluster, std::size_t endpoint, tcp::socket* reusable, Clock::time_point now);

  void eject(std::size_t cluster, std::size_t endpoint, Clock::time_point now);

  // Closes idle connections past their idle timeout.
  void sweep(Clock::time_point now);
  void closeAll();


 private:
  struct Idle {
    tcp::socket socket;
    Clock::time_point since;
  };
  struct EndpointState {
    std::vector<Idle> idle;  // LIFO: the most recently used connection is the warmest
    std::uint32_t busy = 0;
    Clock::time_point down_until{};
  };
  struct ClusterState {
    const ClusterConfig* config;
    std::vector<EndpointState> endpoints;
    std::size_t next = 0;  // round-robin cursor
  };
  void idleChanged(std::size_t cluster, std::int64_t d) {
    if (metrics_) metrics_->gauge(metrics_->upstreamIdle(cluster), d);
  }
  std::vector<ClusterState> clusters_;
  WorkerMetrics* metrics_;
};

}  // namespace fledge::proxy
