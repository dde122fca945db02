#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

namespace fledge::proxy {

UpstreamPool::UpstreamPool(const Snapshot& snap, WorkerMetrics* metrics) : metrics_(metrics) {
  clusters_.reserve(snap.clusters.size());
  for (const auto& rc : snap.clusters) {
    ClusterState cs{rc.config, std::vector<EndpointState>(rc.endpoints.size())};
    clusters_.push_back(std::move(cs));
  }
}

std::optional<std::size_t> UpstreamPool::pick(std::size_t cluster, std::uint64_t exclude, Clock::time_point now) {
  auto& cs = clusters_[cluster];
  const std::size_t n = cs.endpoints.size();
  auto usable = [&](std::size_t i) {
    return (i >= 64 || !(exclude & (std::uint64_t{1} << i))) && cs.endpoints[i].down_until <= now;
  };
  if (cs.config->lb == LbPolicy::kLeastRequest) {
    // Full scan from a rotating start so ties spread evenly; clusters are small.
    std::optional<std::size_t> best;
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (cs.next + k) % n;
      if (!usable(i)) continue;
      if (!best || cs.endpoints[i].busy < cs.endpoints[*best].busy) best = i;
    }
    cs.next = (cs.next + 1) % n;
    return best;
  }
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (cs.next + k) % n;
    if (usable(i)) {
      cs.next = (i + 1) % n;
      return i;
    }
  }
  return std::nullopt;
}

std::optional<UpstreamPool::tcp::socket> UpstreamPool::takeIdle(std::size_t cluster, std::size_t endpoint,
                                                                Clock::time_point now) {
  auto& es = clusters_[cluster].endpoints[endpoint];
  const auto timeout = clusters_[cluster].config->idle_timeout;
  while (!es.idle.empty()) {
    Idle idle = std::move(es.idle.back());
    es.idle.pop_back();
    idleChanged(cluster, -1);
    if (now - idle.since >= timeout) continue;  // expired: dropping it closes it
    // Every reuse is checked, however fresh: a byte waiting on an idle connection belongs to no
    // request (a stray or late response), and EOF means the peer is gone. Either way the
    // connection is dropped, never handed to the next client.
    char b;
    ssize_t r = ::recv(idle.socket.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::move(idle.socket);
  }
  return std::nullopt;
}

bool UpstreamPool::canOpen(std::size_t cluster, std::size_t endpoint) const {
  const auto& cs = clusters_[cluster];
  const auto& es = cs.endpoints[endpoint];
  return es.busy + es.idle.size() < cs.config->max_connections;
}

void UpstreamPool::acquired(std::size_t cluster, std::size_t endpoint) {
  ++clusters_[cluster].endpoints[endpoint].busy;
  if (metrics_) metrics_->gauge(metrics_->upstreamBusy(cluster), 1);
}

void UpstreamPool::release(std::size_t cluster, std::size_t endpoint, tcp::socket* reusable, Clock::time_point now) {
  auto& cs = clusters_[cluster];
  auto& es = cs.endpoints[endpoint];
  --es.busy;
  if (metrics_) metrics_->gauge(metrics_->upstreamBusy(cluster), -1);
  if (reusable && reusable->is_open() && es.idle.size() < cs.config->max_idle) {
    es.idle.push_back(Idle{std::move(*reusable), now});
    idleChanged(cluster, 1);
  }
}

void UpstreamPool::eject(std::size_t cluster, std::size_t endpoint, Clock::time_point now) {
  auto& cs = clusters_[cluster];
  cs.endpoints[endpoint].down_until = now + cs.config->eject_time;
  idleChanged(cluster, -static_cast<std::int64_t>(cs.endpoints[endpoint].idle.size()));
  cs.endpoints[endpoint].idle.clear();
}

void UpstreamPool::sweep(Clock::time_point now) {
  for (std::size_t c = 0; c < clusters_.size(); ++c) {
    auto& cs = clusters_[c];
    for (auto& es : cs.endpoints) {
      // Oldest connections sit at the front of the LIFO.
      std::size_t expired = 0;
      while (expired < es.idle.size() && now - es.idle[expired].since >= cs.config->idle_timeout) ++expired;
      if (expired) {
        es.idle.erase(es.idle.begin(), es.idle.begin() + static_cast<std::ptrdiff_t>(expired));
        idleChanged(c, -static_cast<std::int64_t>(expired));
      }
    }
  }
}

void UpstreamPool::closeAll() {
  for (std::size_t c = 0; c < clusters_.size(); ++c)
    for (auto& es : clusters_[c].endpoints) {
      idleChanged(c, -static_cast<std::int64_t>(es.idle.size()));
      es.idle.clear();
    }
}


}  // namespace fledge::proxy
