#include "proxy/server.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "proxy/log.hpp"

namespace fledge::proxy {

std::string endpointString(const boost::asio::ip::tcp::endpoint& ep) {
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}
using boost::asio::ip::tcp;

std::shared_ptr<ListenerInfo> Server::makeInfo(const ListenerConfig& l, std::string& error) {
  auto info = std::make_shared<ListenerInfo>();
  info->name = l.name;
  info->redirect_https_port = l.redirect_https_port.value_or(0);
  if (l.tls) {
    info->tls = ReloadableServerTls::create(l.name, *l.tls, error);
    if (!info->tls) {
      error = "listener " + l.name + ": " + error;
      return nullptr;
    }
  }
  return info;
}

Server::Opened::~Opened() {
  for (int fd : fds) ::close(fd);  // never handed to the workers
}

bool Server::open(const ListenerConfig& l, Opened& out, std::string& error) const {
  tcp::endpoint want;
  error = resolveHostPort(l.address, want);
  if (!error.empty()) {
    error = "listener " + l.name + ": " + error;
    return false;
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    boost::system::error_code ec;
    tcp::endpoint bound;
    int fd = openListeningSocket(want, bound, ec);
    if (fd < 0) {
      error = "listener " + l.name + ": cannot listen on " + l.address.str() + ": " + ec.message();
      return false;
    }
    out.fds.push_back(fd);
    want = bound;  // with port 0 the first socket picks the port, the others share it
  }
  out.endpoint = want;
  return true;
}

void Server::adopt(const ListenerConfig& l, std::shared_ptr<const ListenerInfo> info, Opened& opened) {
  for (std::size_t i = 0; i < workers_.size(); ++i) workers_[i]->adoptListener(opened.fds[i], info);
  opened.fds.clear();  // the workers own them now
  if (info->tls) tls_registry::add(info->tls);
  listening_.push_back({l, std::move(info), next_slot_++});
  endpoints_.push_back(opened.endpoint);
}

std::unique_ptr<Server> Server::create(std::shared_ptr<const Snapshot> snap, std::string& error) {
  auto server = std::make_unique<Server>();
  unsigned n = snap->config.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) server->workers_.push_back(std::make_unique<Worker>(i, snap));
  for (const auto& l : snap->config.listeners) {
    Opened opened;
    auto info = makeInfo(l, error);
    if (!info || !server->open(l, opened, error)) return nullptr;
    server->adopt(l, std::move(info), opened);
  }
  return server;
}

bool Server::updateListeners(const std::vector<ListenerConfig>& next, std::string& error) {
  error.clear();
  auto sameSocket = [](const ListenerConfig& a, const ListenerConfig& b) {
    return a.name == b.name && a.address.host == b.address.host && a.address.port == b.address.port;
  };
  // Phase one, everything that can fail, touching nothing live: the infos (certificates load)
  // and the sockets of new listeners. A failure closes what was opened and changes nothing.
  struct Planned {
    const ListenerConfig* config;
    std::optional<std::size_t> kept;              // index into listening_
    std::shared_ptr<const ListenerInfo> info;     // new or replacing; null: keep the old one
    Opened opened;                                // a new listener's sockets
  };
  std::vector<Planned> plan(next.size());
  std::vector<bool> keep(listening_.size(), false);
  for (std::size_t n = 0; n < next.size(); ++n) {
    const ListenerConfig& l = next[n];
    Planned& p = plan[n];
    p.config = &l;
    auto it = std::find_if(listening_.begin(), listening_.end(), [&](const Listening& x) { return sameSocket(x.config, l); });
    if (it != listening_.end()) {
      p.kept = static_cast<std::size_t>(it - listening_.begin());
      keep[*p.kept] = true;
      if (!(it->config.tls == l.tls) || it->config.redirect_https_port != l.redirect_https_port) {
        p.info = makeInfo(l, error);
        if (!p.info) return false;
      }
      continue;
    }
    p.info = makeInfo(l, error);
    if (!p.info || !open(l, p.opened, error)) return false;
  }
  // Phase two: apply. Removed listeners stop accepting; their connections run on.
  for (std::size_t i = 0; i < listening_.size(); ++i) {
    if (keep[i]) continue;
    for (auto& w : workers_) w->closeListener(listening_[i].slot);
    if (listening_[i].info->tls) tls_registry::remove(listening_[i].info->tls.get());
    log::info("listener closed", {{"listener", listening_[i].config.name}, {"address", listening_[i].config.address.str()}});
  }
  std::vector<Listening> old = std::move(listening_);
  std::vector<tcp::endpoint> old_endpoints = std::move(endpoints_);
  listening_.clear();
  endpoints_.clear();
  for (auto& p : plan) {
    if (p.kept) {
      Listening x = old[*p.kept];
      if (p.info) {  // new TLS settings or redirect: for new connections
        if (x.info->tls) tls_registry::remove(x.info->tls.get());
        if (p.info->tls) tls_registry::add(p.info->tls);
        for (auto& w : workers_) w->replaceListener(x.slot, p.info);
        x.info = p.info;
      }
      x.config = *p.config;
      listening_.push_back(std::move(x));
      endpoints_.push_back(old_endpoints[*p.kept]);
      continue;
    }
    adopt(*p.config, p.info, p.opened);
    const auto& ep = endpoints_.back();
    log::info("listening", {{"listener", p.config->name}, {"address", endpointString(ep)}});
  }
  return true;
}

void Server::start() {
  for (auto& w : workers_) w->start();
}

bool Server::drainAndJoin(std::chrono::milliseconds timeout) {
  for (auto& w : workers_) w->drain();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread joiner([&] {
    for (auto& w : workers_) w->join();
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  });
  bool clean;
  {
    std::unique_lock lock(mu);
    clean = cv.wait_for(lock, timeout, [&] { return done; });
  }
  if (!clean)
    for (auto& w : workers_) w->stop();
  joiner.join();
  return clean;
}

}  // namespace fledge::proxy
