#include "proxy/worker.hpp"

#include <boost/asio/post.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "proxy/log.hpp"
#include "proxy/mirror.hpp"
#include "proxy/session.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;

namespace {

std::chrono::milliseconds sweepInterval(const Config& cfg) {
  const Timeouts& t = cfg.timeouts;
  auto m = std::min({t.header_read, t.idle, t.body_read, t.upstream_connect, t.upstream_response});
  for (const auto& r : cfg.routes)
    if (r.retry && r.retry->per_try_timeout.count() > 0) m = std::min(m, r.retry->per_try_timeout);
  return std::clamp(m / 4, std::chrono::milliseconds(5), std::chrono::milliseconds(200));
}


std::uint64_t seed(unsigned index) {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ rd() ^ index;
}

}  // namespace

Generation::Generation(std::shared_ptr<const Snapshot> s, MetricsRegistry& registry, Generation* previous)
    : snap(std::move(s)),
      metrics(std::make_shared<WorkerMetrics>(*snap, registry, snap->config.metrics.enabled)),
      pool(*snap, *metrics, previous ? &previous->pool : nullptr) {}

Worker::Worker(unsigned index, std::shared_ptr<const Snapshot> snap)
    : index_(index),
      gen_(std::make_shared<Generation>(std::move(snap), registry_, nullptr)),
      published_metrics_(gen_->metrics),
      random_(seed(index)),
      sweep_interval_(sweepInterval(gen_->snap->config)) {
  // One thread runs this context: let Asio skip its internal locking where it can.
  ioc_.emplace(1);
  sweep_timer_.emplace(*ioc_);
}

Worker::~Worker() {
  stop();
  join();
  acceptors_.clear();
  gen_->pool.closeAll();
  sweep_timer_.reset();
  ioc_.reset();  // frees remaining sessions while the pool and metrics still exist
}

int openListeningSocket(const asio::ip::tcp::endpoint& ep, asio::ip::tcp::endpoint& bound, boost::system::error_code& ec) {
  auto fail = [&](int fd) {
    ec.assign(errno, boost::system::system_category());
    if (fd >= 0) ::close(fd);
    return -1;
  };
  int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(fd);
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)  // accepted connections inherit it (Linux)
    return fail(fd);
  if (::bind(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0 || ::listen(fd, 4096) != 0) return fail(fd);
  socklen_t len = static_cast<socklen_t>(bound.capacity());
  if (::getsockname(fd, bound.data(), &len) != 0) return fail(fd);
  bound.resize(len);
  return fd;
}

void Worker::adoptListener(int fd, std::shared_ptr<const ListenerInfo> listener) {
  // Registered with the reactor on the worker's own thread (its io_context is single-threaded).
  asio::post(*ioc_, [this, fd, listener = std::move(listener)]() mutable {
    boost::system::error_code ec;
    tcp::acceptor acc(*ioc_);
    int family = AF_INET;
    socklen_t len = sizeof family;
    ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len);
    acc.assign(family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
      log::error("cannot adopt a listening socket", {{"listener", listener->name}, {"error", ec.message()}});
      acc = tcp::acceptor(*ioc_);  // a closed slot keeps the numbering
    }
    acceptors_.push_back(std::move(acc));
    listeners_.push_back(std::move(listener));
    if (!ec && started_ && !draining_) accept(acceptors_.size() - 1);
  });
}

void Worker::closeListener(std::size_t slot) {
  asio::post(*ioc_, [this, slot] {
    if (slot >= acceptors_.size()) return;
    boost::system::error_code ec;
    acceptors_[slot].close(ec);
    listeners_[slot].reset();
  });
}

void Worker::replaceListener(std::size_t slot, std::shared_ptr<const ListenerInfo> listener) {
  asio::post(*ioc_, [this, slot, listener = std::move(listener)]() mutable {
    if (slot < listeners_.size() && listeners_[slot]) listeners_[slot] = std::move(listener);
  });
}

void Worker::start() {
  // Listeners adopted so far are registered by posted handlers: accepting starts with them.
  asio::post(*ioc_, [this] {
    started_ = true;
    for (std::size_t i = 0; i < acceptors_.size(); ++i)
      if (acceptors_[i].is_open()) accept(i);
  });
  scheduleSweep();
  thread_ = std::thread([this] {
    // A handler that throws loses only its own operation: the objects it held (its session and
    // connection) are released as the exception unwinds, and the worker runs on. The acceptor is
    // never left bound with nobody serving it.
    for (;;) {
      try {
        ioc_->run();
        return;
      } catch (const std::exception& e) {
        log::error("handler exception; its connection was closed", {{"worker", std::to_string(index_)}, {"error", e.what()}});
      } catch (...) {
        log::error("handler exception; its connection was closed", {{"worker", std::to_string(index_)}});
      }
    }
  });
}

void Worker::accept(std::size_t i) {
  acceptors_[i].async_wait(tcp::acceptor::wait_read, [this, i](boost::system::error_code ec) {
    if (ec == asio::error::operation_aborted) return;
    acceptReady(i);
  });
}

// Connections are taken with accept4, not Asio's accept: it makes them non-blocking without an
// ioctl, and leaves registering with epoll to the session, which does it only if it has to wait
// (proxy/client_connection.hpp).
void Worker::acceptReady(std::size_t i) {
  // A bounded batch per turn so that a flood of connections cannot starve the ones already open;
  // the rest of the backlog is taken on a posted turn (an edge-triggered wait would not fire for
  // connections already queued).
  constexpr int kBatch = 32;
  auto& acc = acceptors_[i];
  for (int n = 0; n < kBatch; ++n) {
    if (draining_ || !acc.is_open()) return;
    tcp::endpoint peer;
    socklen_t len = static_cast<socklen_t>(peer.capacity());
    int fd = ::accept4(acc.native_handle(), peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return accept(i);
      // The peer gave up before we took it, or a signal: take the next one.
      if (err == EINTR || err == ECONNABORTED || err == EPROTO || err == EPERM) continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: back off briefly instead of spinning.
      static log::Limiter accept_log;
      log::limited(accept_log, log::Level::kWarn, "accept failed",
                   {{"worker", std::to_string(index_)}, {"error", boost::system::error_code(err, boost::system::system_category()).message()}});
      auto t = std::make_shared<asio::steady_timer>(*ioc_, std::chrono::milliseconds(50));
      t->async_wait([this, i, t](boost::system::error_code) {
        if (!draining_) accept(i);
      });
      return;
    }
    peer.resize(len);
    const auto cap = gen_->snap->config.limits.max_connections;
    if (cap != 0 && session_count_ >= cap) {
      ::close(fd);
      continue;
    }
    std::make_shared<Session>(*this, fd, peer, listeners_[i])->start();
  }
  asio::post(*ioc_, [this, i] { acceptReady(i); });
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
  gen_->pool.sweep(now);
}

void Worker::drain() {
  asio::post(*ioc_, [this] {
    if (draining_) return;
    draining_ = true;
    boost::system::error_code ec;
    for (auto& a : acceptors_) a.close(ec);
    gen_->pool.closeAll();
    for (auto& s : sessions_) s.onDrain();
  });
}

void Worker::stop() {
  if (ioc_) ioc_->stop();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

bool Worker::admitMirror(std::uint32_t max_in_flight) {
  if (draining_ || mirrors_in_flight_ >= max_in_flight) return false;
  ++mirrors_in_flight_;
  return true;
}

void Worker::mirror(std::string request, std::shared_ptr<Generation> gen, std::size_t route, std::size_t cluster,
                    std::chrono::milliseconds timeout) {
  // The slot reserved by admitMirror passes to the MirrorCall, or is given back here.
  auto ep = draining_ ? std::nullopt : gen->pool.pick(cluster, 0, Clock::now());
  if (!ep) {
    releaseMirrorSlot();
    gen->metrics->mirror(route, MirrorResult::kFailed);
    return;
  }
  gen->metrics->mirror(route, MirrorResult::kSent);
  std::make_shared<MirrorCall>(*this, std::move(request), std::move(gen), route, cluster, *ep, timeout)->start();
}

void Worker::publish(std::shared_ptr<const Snapshot> snap) {
  asio::post(*ioc_, [this, snap = std::move(snap)]() mutable { apply(std::move(snap)); });
}

void Worker::apply(std::shared_ptr<const Snapshot> snap) {
  // Requests in flight keep the generation they pinned; endpoints that survive keep their
  // connections; counters carry over by name.
  auto next = std::make_shared<Generation>(std::move(snap), registry_, gen_.get());
  gen_ = std::move(next);
  sweep_interval_ = sweepInterval(gen_->snap->config);
  std::lock_guard lock(metrics_mu_);
  published_metrics_ = gen_->metrics;
}

std::shared_ptr<const WorkerMetrics> Worker::currentMetrics() const {
  std::lock_guard lock(metrics_mu_);
  return published_metrics_;
}

}  // namespace fledge::proxy
