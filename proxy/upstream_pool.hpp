#pragma once
// Per-worker upstream state for one configuration: each cluster's settings (copied, so the pool
// never points into a snapshot), load-balancing picks, and per-endpoint state — kept-alive
// connections, busy count, passive ejection. Endpoint state is shared with the next
// configuration's pool when the endpoint survives the change (same cluster name and address),
// so its connections and counts carry over; an endpoint that does not survive is retired: its
// idle connections close and connections released to it later are closed.
// Owned by one worker thread, so nothing here is locked.
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resilience.hpp"
#include "proxy/upstream_connection.hpp"

namespace fledge::proxy {

struct Snapshot;

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  using tcp = boost::asio::ip::tcp;

  struct Endpoint {
    tcp::endpoint address;
    struct Idle {
      UpstreamConnection conn;
      Clock::time_point since;
    };
    std::vector<Idle> idle;  // LIFO: the most recently used connection is the warmest
    std::uint32_t busy = 0;
    Clock::time_point down_until{};
    OutlierState outlier;  // passive health (cluster outlier_detection)
    std::shared_ptr<const std::atomic<bool>> health;  // active health (cluster health_check); null: not checked
    bool retired = false;
    std::shared_ptr<ClusterCounters> counters;  // the cluster's connection gauges
    std::shared_ptr<const ClientTls> tls;  // what its connections speak: a change of TLS settings makes a new endpoint
  };
  using EndpointRef = std::shared_ptr<Endpoint>;

  // Per cluster and worker, carried across configurations by the cluster's name: the requests
  // and retries in flight that the retry budget weighs.
  struct ClusterState {
    std::uint64_t requests = 0, retries = 0;
  };
  using ClusterStateRef = std::shared_ptr<ClusterState>;
  const ClusterStateRef& state(std::size_t cluster) const { return clusters_[cluster].state; }
  // The process-wide counts of a cluster with a circuit breaker; null without one.
  const std::shared_ptr<CircuitCounts>& circuit(std::size_t cluster) const { return clusters_[cluster].circuit; }

  // `metrics` supplies each cluster's counter block; `previous` (may be null) the endpoint state
  // to carry over. Endpoints of `previous` that this pool does not carry are retired.
  UpstreamPool(const Snapshot& snap, const WorkerMetrics& metrics, UpstreamPool* previous);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  const ClusterConfig& settings(std::size_t cluster) const { return clusters_[cluster].settings; }

  // Chooses an endpoint of `cluster` by its LB policy, skipping ejected and retired endpoints and
  // those whose bit is set in `exclude`. nullopt when none is available.
  std::optional<std::size_t> pick(std::size_t cluster, std::uint64_t exclude, Clock::time_point now);
  const EndpointRef& endpoint(std::size_t cluster, std::size_t i) const { return clusters_[cluster].endpoints[i]; }

  // A kept-alive connection with nothing waiting on it (no stray byte, no EOF), or nullopt.
  std::optional<UpstreamConnection> takeIdle(std::size_t cluster, std::size_t endpoint, Clock::time_point now);

  // Whether a new connection may be opened (the per-endpoint cap counts busy + idle).
  bool canOpen(std::size_t cluster, std::size_t endpoint) const;

  // Bookkeeping for a connection a request holds; every acquire is paired with one release,
  // which goes to the endpoint state (whatever configuration is current by then).
  static void acquired(Endpoint& ep);
  // `max_idle` is the cluster setting of the configuration the request pinned.
  static void release(Endpoint& ep, UpstreamConnection* reusable, std::uint32_t max_idle, Clock::time_point now);

  void eject(std::size_t cluster, std::size_t endpoint, Clock::time_point now);
  // How an attempt on an endpoint ended, for outlier detection (a no-op without it). True when
  // it ejected the endpoint.
  bool recordAttempt(std::size_t cluster, std::size_t endpoint, AttemptResult r, unsigned status, Clock::time_point now);

  // Closes idle connections past their idle timeout.
  void sweep(Clock::time_point now);
  void closeAll();

 private:
  struct Cluster {
    ClusterConfig settings;
    std::vector<EndpointRef> endpoints;
    ClusterStateRef state;
    std::shared_ptr<CircuitCounts> circuit;
    std::size_t next = 0;  // round-robin cursor
  };
  static void closeIdle(Endpoint& ep);
  std::vector<Cluster> clusters_;
};

}  // namespace fledge::proxy
