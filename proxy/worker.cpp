#include "proxy/worker.hpp"

#include <boost/asio/post.hpp>

#include <random>

#include "proxy/log.hpp"
#include "proxy/mirror.hpp"
#include "proxy/session.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

namespace {

std::chrono::milliseconds sweepInterval(const Timeouts& t) {
  auto m = std::min({t.header_read, t.idle, t.body_read, t.upstream_connect, t.upstream_response});
  return std::clamp(m / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(200));
}

std::uint64_t splitmix64(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

Worker::Worker(unsigned index, std::shared_ptr<const Snapshot> snap)
    : index_(index),
      snap_(std::move(snap)),
      metrics_((all_metrics_.push_back(std::make_unique<WorkerMetrics>(MetricsLayout(*snap_), snap_->config.metrics.enabled)),
                all_metrics_.back().get())),
      pool_(std::make_shared<UpstreamPool>(*snap_, metrics_)),
      sweep_interval_(sweepInterval(snap_->config.timeouts)) {
  std::random_device rd;
  rng_state_ = (std::uint64_t{rd()} << 32) ^ rd() ^ index;
  // One thread runs this context: let Asio skip its internal locking where it can.
  ioc_.emplace(1);
  sweep_timer_.emplace(*ioc_);
}

Worker::~Worker() {
  stop();
  join();
  acceptors_.clear();
  pool_->closeAll();
  sweep_timer_.reset();
  ioc_.reset();  // frees remaining sessions while the pool and metrics still exist
}

Worker::tcp::endpoint Worker::listen(const tcp::endpoint& ep, boost::system::error_code& ec) {
  tcp::acceptor acc(*ioc_);
  acc.open(ep.protocol(), ec);
  if (ec) return {};
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  acc.set_option(reuse_port(true), ec);
  if (ec) return {};
  acc.bind(ep, ec);
  if (ec) return {};
  acc.listen(4096, ec);
  if (ec) return {};
  auto bound = acc.local_endpoint(ec);
  acceptors_.push_back(std::move(acc));
  return bound;
}

void Worker::start() {
  for (std::size_t i = 0; i < acceptors_.size(); ++i) accept(i);
  scheduleSweep();
  thread_ = std::thread([this] {
    try {
      ioc_->run();
    } catch (const std::exception& e) {
      log::error("worker stopped by exception", {{"worker", std::to_string(index_)}, {"error", e.what()}});
    }
  });
}

void Worker::accept(std::size_t i) {
  acceptors_[i].async_accept(*ioc_, [this, i](boost::system::error_code ec, tcp::socket socket) {
    if (draining_ || !acceptors_[i].is_open()) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // EMFILE and friends: back off briefly instead of spinning.
      log::warn("accept failed", {{"worker", std::to_string(index_)}, {"error", ec.message()}});
      auto t = std::make_shared<asio::steady_timer>(*ioc_, std::chrono::milliseconds(50));
      t->async_wait([this, i, t](boost::system::error_code) {
        if (!draining_) accept(i);
      });
      return;
    }
    const auto cap = snap_->config.limits.max_connections;
    if (cap == 0 || session_count_ < cap) std::make_shared<Session>(*this, std::move(socket))->start();
    accept(i);
  });
}

void Worker::scheduleSweep() {
  sweep_timer_->expires_after(sweep_interval_);
  sweep_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    sweep();
    if (!draining_ || session_count_ != 0) scheduleSweep();
  });
}

void Worker::sweep() {
  auto now = Clock::now();
  // checkDeadline only cancels operations; no session is freed while we iterate.
  for (auto& s : sessions_) s.checkDeadline(now);
  pool_->sweep(now);
}

void Worker::drain() {
  asio::post(*ioc_, [this] {
    if (draining_) return;
    draining_ = true;
    boost::system::error_code ec;
    for (auto& a : acceptors_) a.close(ec);
    pool_->closeAll();
    for (auto& s : sessions_) s.onDrain();
  });
}

void Worker::stop() {
  if (ioc_) ioc_->stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::mirror(std::string request, WorkerMetrics& metrics, std::size_t route, std::size_t cluster,
                    std::uint32_t max_in_flight, std::chrono::milliseconds timeout) {
  if (draining_) return;
  if (mirrors_in_flight_ >= max_in_flight) {
    metrics.mirror(route, MirrorResult::kDropped);
    return;
  }
  if (cluster >= snap_->clusters.size()) return;  // the config changed under this request
  auto ep = pool_->pick(cluster, 0, Clock::now());
  if (!ep) {
    metrics.mirror(route, MirrorResult::kFailed);
    return;
  }
  metrics.mirror(route, MirrorResult::kSent);
  std::make_shared<MirrorCall>(*this, std::move(request), metrics, route, snap_->clusters[cluster].endpoints[*ep], timeout)->start();
}

namespace {

// Same routes, arms, clusters and flags (in order): the metrics layout and pool indexes hold.
bool sameShape(const Snapshot& a, const Snapshot& b) {
  const auto& x = a.config;
  const auto& y = b.config;
  if (x.clusters.size() != y.clusters.size() || x.routes.size() != y.routes.size()) return false;
  for (std::size_t i = 0; i < x.clusters.size(); ++i)
    if (x.clusters[i].name != y.clusters[i].name || a.clusters[i].endpoints != b.clusters[i].endpoints) return false;
  for (std::size_t i = 0; i < x.routes.size(); ++i) {
    const auto& r = x.routes[i];
    const auto& s = y.routes[i];
    if (r.name != s.name || r.split.has_value() != s.split.has_value()) return false;
    if (r.split) {
      if (r.split->arms.size() != s.split->arms.size()) return false;
      for (std::size_t j = 0; j < r.split->arms.size(); ++j)
        if (r.split->arms[j].name != s.split->arms[j].name) return false;
    }
  }
  const auto* fx = x.flag_set.get();
  const auto* fy = y.flag_set.get();
  if ((fx ? fx->flags().size() : 0) != (fy ? fy->flags().size() : 0)) return false;
  if (fx)
    for (std::size_t i = 0; i < fx->flags().size(); ++i) {
      const auto& f = fx->flags()[i];
      const auto& g = fy->flags()[i];
      if (f.key != g.key || f.variants.size() != g.variants.size()) return false;
      for (std::size_t v = 0; v < f.variants.size(); ++v)
        if (f.variants[v].name != g.variants[v].name) return false;
    }
  return x.metrics.enabled == y.metrics.enabled;
}

}  // namespace

void Worker::publish(std::shared_ptr<const Snapshot> snap) {
  asio::post(*ioc_, [this, snap = std::move(snap)]() mutable { apply(std::move(snap)); });
}

void Worker::apply(std::shared_ptr<const Snapshot> snap) {
  if (!sameShape(*snap_, *snap)) {
    // New topology: fresh counters and a fresh pool. Sessions in flight keep the old pool (and
    // release into it); its idle connections close now.
    auto m = std::make_unique<WorkerMetrics>(MetricsLayout(*snap), snap->config.metrics.enabled);
    WorkerMetrics::add(m->downstreamConnections(), static_cast<std::int64_t>(session_count_));
    pool_->closeAll();
    pool_ = std::make_shared<UpstreamPool>(*snap, m.get());
    std::lock_guard lock(metrics_mu_);
    metrics_ = m.get();
    all_metrics_.push_back(std::move(m));
  }
  snap_ = std::move(snap);
}

const WorkerMetrics* Worker::currentMetrics() const {
  std::lock_guard lock(metrics_mu_);
  return metrics_;
}

std::uint64_t Worker::random() { return splitmix64(rng_state_); }

void Worker::newRequestId(char out[32]) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t a = splitmix64(rng_state_), b = splitmix64(rng_state_);
  for (int i = 0; i < 16; ++i) {
    out[i] = kHex[(a >> (60 - 4 * i)) & 0xf];
    out[16 + i] = kHex[(b >> (60 - 4 * i)) & 0xf];
  }
}

}  // namespace fledge::proxy
