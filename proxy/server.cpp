#include "proxy/server.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace fledge::proxy {
using boost::asio::ip::tcp;

std::unique_ptr<Server> Server::create(std::shared_ptr<const Snapshot> snap, std::string& error) {
  auto server = std::make_unique<Server>();
  unsigned n = snap->config.workers;
  if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) server->workers_.push_back(std::make_unique<Worker>(i, snap));
  for (const auto& l : snap->config.listeners) {
    auto info = std::make_shared<ListenerInfo>();
    info->name = l.name;
    info->redirect_https_port = l.redirect_https_port.value_or(0);
    if (l.tls) {
      info->tls = ReloadableServerTls::create(l.name, *l.tls, error);
      if (!info->tls) {
        error = "listener " + l.name + ": " + error;
        return nullptr;
      }
      tls_registry::add(info->tls);
    }
    tcp::endpoint want;
    error = resolveHostPort(l.address, want);
    if (!error.empty()) {
      error = "listener " + l.name + ": " + error;
      return nullptr;
    }
    for (auto& w : server->workers_) {
      boost::system::error_code ec;
      auto bound = w->listen(want, info, ec);
      if (ec) {
        error = "listener " + l.name + ": cannot listen on " + l.address.str() + ": " + ec.message();
        return nullptr;
      }
      want = bound;  // with port 0 the first worker picks the port, the others share it
    }
    server->endpoints_.push_back(want);
  }
  return server;
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
