#include "proxy/upstream_pool.hpp"

#include <sys/socket.h>

#include <unordered_set>

#include "proxy/health.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {

UpstreamPool::UpstreamPool(const Snapshot& snap, const WorkerMetrics& metrics, UpstreamPool* previous) {
  clusters_.reserve(snap.clusters.size());
  std::unordered_set<const Endpoint*> carried;
  for (std::size_t c = 0; c < snap.clusters.size(); ++c) {
    const ResolvedCluster& rc = snap.clusters[c];
    Cluster cs{*rc.config, {}, nullptr, nullptr, 0};
    if (rc.config->circuit_breaker) cs.circuit = CircuitCounts::forCluster(rc.config->name);
    cs.settings.endpoints.clear();  // the resolved addresses below are what the pool uses
    const Cluster* old = nullptr;
    if (previous)
      for (const auto& pc : previous->clusters_)
        if (pc.settings.name == rc.config->name) old = &pc;
    if (old) cs.next = old->next;
    cs.state = old ? old->state : std::make_shared<ClusterState>();
    for (std::size_t i = 0; i < rc.endpoints.size(); ++i) {
      const auto& addr = rc.endpoints[i];
      EndpointRef ep;
      if (old)
        for (const auto& oe : old->endpoints)
          if (oe->address == addr && oe->tls == rc.tls && !carried.count(oe.get())) ep = oe;
      if (!ep) {
        ep = std::make_shared<Endpoint>();
        ep->address = addr;
        ep->counters = metrics.clusterBlock(c);
        ep->tls = rc.tls;
      }
      ep->health = rc.config->health_check ? healthFlag(rc.config->name, rc.names[i]) : nullptr;
      carried.insert(ep.get());
      cs.endpoints.push_back(std::move(ep));
    }
    if (!cs.endpoints.empty()) cs.next %= cs.endpoints.size();
    clusters_.push_back(std::move(cs));
  }
  if (previous)
    for (auto& pc : previous->clusters_)
      for (auto& oe : pc.endpoints)
        if (!carried.count(oe.get())) {
          oe->retired = true;
          closeIdle(*oe);
        }
}

UpstreamPool::~UpstreamPool() = default;

std::optional<std::size_t> UpstreamPool::pick(std::size_t cluster, std::uint64_t exclude, Clock::time_point now) {
  auto& cs = clusters_[cluster];
  const std::size_t n = cs.endpoints.size();
  auto usable = [&](std::size_t i) {
    const Endpoint& e = *cs.endpoints[i];
    return (i >= 64 || !(exclude & (std::uint64_t{1} << i))) && e.down_until <= now && !e.retired &&
           (!e.health || e.health->load(std::memory_order_relaxed));
  };
  if (cs.settings.lb == LbPolicy::kLeastRequest) {
    // Full scan from a rotating start so ties spread evenly; clusters are small.
    std::optional<std::size_t> best;
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (cs.next + k) % n;
      if (!usable(i)) continue;
      if (!best || cs.endpoints[i]->busy < cs.endpoints[*best]->busy) best = i;
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

bool UpstreamConnection::idleAndClean() {
  if (tls_) {
    char b;
    error_code ec;
    tls_->read(&b, 1, ec);
    return ec == boost::asio::error::would_block && tls_->want() == TlsConnection::Want::kRead;
  }
  char b;
  ssize_t r = ::recv(socket_.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::optional<UpstreamConnection> UpstreamPool::takeIdle(std::size_t cluster, std::size_t endpoint,
                                                                Clock::time_point now) {
  Endpoint& es = *clusters_[cluster].endpoints[endpoint];
  const auto timeout = clusters_[cluster].settings.idle_timeout;
  while (!es.idle.empty()) {
    Endpoint::Idle idle = std::move(es.idle.back());
    es.idle.pop_back();
    add(es.counters->idle, -1);
    if (now - idle.since >= timeout) continue;  // expired: dropping it closes it
    // Every reuse is checked, however fresh: a byte waiting on an idle connection belongs to no
    // request (a stray or late response), and EOF means the peer is gone. Either way the
    // connection is dropped, never handed to the next client.
    if (idle.conn.idleAndClean()) return std::move(idle.conn);
  }
  return std::nullopt;
}

bool UpstreamPool::canOpen(std::size_t cluster, std::size_t endpoint) const {
  const auto& cs = clusters_[cluster];
  const Endpoint& es = *cs.endpoints[endpoint];
  return es.busy + es.idle.size() < cs.settings.max_connections;
}

void UpstreamPool::acquired(Endpoint& ep) {
  ++ep.busy;
  add(ep.counters->busy, 1);
}

void UpstreamPool::release(Endpoint& ep, UpstreamConnection* reusable, std::uint32_t max_idle, Clock::time_point now) {
  --ep.busy;
  add(ep.counters->busy, -1);
  if (reusable && reusable->is_open() && !ep.retired && ep.down_until <= now && ep.idle.size() < max_idle) {
    ep.idle.push_back(Endpoint::Idle{std::move(*reusable), now});
    add(ep.counters->idle, 1);
  }
}

void UpstreamPool::closeIdle(Endpoint& ep) {
  add(ep.counters->idle, -static_cast<std::int64_t>(ep.idle.size()));
  ep.idle.clear();
}

void UpstreamPool::eject(std::size_t cluster, std::size_t endpoint, Clock::time_point now) {
  auto& cs = clusters_[cluster];
  Endpoint& ep = *cs.endpoints[endpoint];
  ep.down_until = now + cs.settings.eject_time;
  closeIdle(ep);
}

bool UpstreamPool::recordAttempt(std::size_t cluster, std::size_t endpoint, AttemptResult r, unsigned status, Clock::time_point now) {
  auto& cs = clusters_[cluster];
  if (!cs.settings.outlier_detection) return false;
  const OutlierConfig& cfg = *cs.settings.outlier_detection;
  // The cluster's ejected share matters only when this attempt failed (a success never ejects).
  bool may_eject = true;
  if (r != AttemptResult::kOk || status >= 500) {
    std::uint32_t ejected = 0;
    for (const auto& other : cs.endpoints) ejected += other->outlier.ejected(now);
    may_eject = ejected < maxEjected(cs.endpoints.size(), cfg.max_ejection_percent);
  }
  Endpoint& ep = *cs.endpoints[endpoint];
  if (!ep.outlier.record(r, status, cfg, may_eject, now)) return false;
  ep.down_until = std::max(ep.down_until, ep.outlier.until());
  closeIdle(ep);
  bump(ep.counters->ejections);
  return true;
}

void UpstreamPool::sweep(Clock::time_point now) {
  for (auto& cs : clusters_) {
    for (auto& ep : cs.endpoints) {
      // Oldest connections sit at the front of the LIFO.
      std::size_t expired = 0;
      while (expired < ep->idle.size() && now - ep->idle[expired].since >= cs.settings.idle_timeout) ++expired;
      if (expired) {
        ep->idle.erase(ep->idle.begin(), ep->idle.begin() + static_cast<std::ptrdiff_t>(expired));
        add(ep->counters->idle, -static_cast<std::int64_t>(expired));
      }
    }
  }
}

void UpstreamPool::closeAll() {
  for (auto& cs : clusters_)
    for (auto& ep : cs.endpoints) closeIdle(*ep);
}

}  // namespace fledge::proxy
