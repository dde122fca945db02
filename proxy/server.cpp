#include "proxy/server.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "proxy/log.hpp"

namespace fledge::proxy {
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

bool Server::bind(const ListenerConfig& l, std::shared_ptr<const ListenerInfo> info, std::string& error) {
  tcp::endpoint want;
  error = resolveHostPort(l.address, want);
  if (!error.empty()) {
    error = "listener " + l.name + ": " + error;
    return false;
  }
  std::vector<int> fds;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    boost::system::error_code ec;
    tcp::endpoint bound;
    int fd = openListeningSocket(want, bound, ec);
    if (fd < 0) {
      for (int f : fds) ::close(f);
      error = "listener " + l.name + ": cannot listen on " + l.address.str() + ": " + ec.message();
      return false;
    }
    fds.push_back(fd);
    want = bound;  // with port 0 the first socket picks the port, the others share it
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) workers_[i]->adoptListener(fds[i], info);
  if (info->tls) tls_registry::add(info->tls);
  listening_.push_back({l, std::move(info), next_slot_++});
  endpoints_.push_back(want);
  return true;
}

std::unique_ptr<Server> Server::create(std::shared_ptr<const Snapshot> snap, std::string& error) {
  auto server = std::make_unique<Server>();
  unsigned n = snap->config.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) server->workers_.push_back(std::make_unique<Worker>(i, snap));
  for (const auto& l : snap->config.listeners) {
    auto info = makeInfo(l, error);
    if (!info || !server->bind(l, std::move(info), error)) return nullptr;
  }
  return server;
}

bool Server::updateListeners(const std::vector<ListenerConfig>& next, std::string& error) {
  error.clear();
  auto sameSocket = [](const ListenerConfig& a, const ListenerConfig& b) {
    return a.name == b.name && a.address.host == b.address.host && a.address.port == b.address.port;
  };
  // Everything that can fail first: new infos (certificates load) and new sockets.
  std::vector<Listening> kept_or_new;
  std::vector<std::pair<std::size_t, std::shared_ptr<const ListenerInfo>>> replaced;  // slot, info
  const std::size_t old_count = listening_.size();
  std::vector<bool> keep(old_count, false);
  std::vector<tcp::endpoint> endpoints;
  for (const auto& l : next) {
    auto it = std::find_if(listening_.begin(), listening_.begin() + static_cast<std::ptrdiff_t>(old_count),
                           [&](const Listening& x) { return sameSocket(x.config, l); });
    if (it != listening_.begin() + static_cast<std::ptrdiff_t>(old_count)) {
      const auto i = static_cast<std::size_t>(it - listening_.begin());
      keep[i] = true;
      Listening x = *it;
      if (!(x.config.tls == l.tls) || x.config.redirect_https_port != l.redirect_https_port) {
        auto info = makeInfo(l, error);
        if (!info) break;
        replaced.emplace_back(x.slot, info);
        x.info = std::move(info);
      }
      x.config = l;
      kept_or_new.push_back(std::move(x));
      endpoints.push_back(endpoints_[i]);
      continue;
    }
    auto info = makeInfo(l, error);
    if (!info || !bind(l, std::move(info), error)) break;
    kept_or_new.push_back(listening_.back());  // bind() appended it
    endpoints.push_back(endpoints_.back());
  }
  if (!error.empty()) {
    // Undo the binds of this call: they were appended after the old entries.
    for (std::size_t i = old_count; i < listening_.size(); ++i) {
      for (auto& w : workers_) w->closeListener(listening_[i].slot);
      if (listening_[i].info->tls) tls_registry::remove(listening_[i].info->tls.get());
    }
    listening_.resize(old_count);
    endpoints_.resize(old_count);
    return false;
  }
  for (std::size_t i = 0; i < old_count; ++i) {
    if (keep[i]) continue;
    for (auto& w : workers_) w->closeListener(listening_[i].slot);
    if (listening_[i].info->tls) tls_registry::remove(listening_[i].info->tls.get());
    log::info("listener closed", {{"listener", listening_[i].config.name}, {"address", listening_[i].config.address.str()}});
  }
  for (auto& [slot, info] : replaced) {
    auto old = std::find_if(listening_.begin(), listening_.end(), [&, s = slot](const Listening& x) { return x.slot == s; });
    if (old != listening_.end() && old->info->tls) tls_registry::remove(old->info->tls.get());
    if (info->tls) tls_registry::add(info->tls);
    for (auto& w : workers_) w->replaceListener(slot, info);
  }
  for (std::size_t i = old_count; i < listening_.size(); ++i) {
    const auto& ep = endpoints_[i];
    const std::string host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    log::info("listening", {{"listener", listening_[i].config.name}, {"address", host + ":" + std::to_string(ep.port())}});
  }
  listening_ = std::move(kept_or_new);
  endpoints_ = std::move(endpoints);
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
