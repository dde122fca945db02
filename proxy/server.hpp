#pragma once
// The data plane: N workers sharing the listening ports through SO_REUSEPORT.
#include <chrono>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/snapshot.hpp"
#include "proxy/worker.hpp"

namespace fledge::proxy {

// "127.0.0.1:8080", "[::1]:8080": a bound endpoint as logs and peers write it.
std::string endpointString(const boost::asio::ip::tcp::endpoint& ep);

class Server {
 public:
  // Binds every listener on every worker. Port 0 binds one free port shared by all workers.
  static std::unique_ptr<Server> create(std::shared_ptr<const Snapshot> snap, std::string& error);

  // Makes the listeners those of `next` (a reload; call from one thread at a time). A listener
  // with the same name and address keeps its sockets and its queued connections (a changed tls
  // block or redirect applies to new connections); new ones are bound on every worker before
  // anything changes; removed ones stop accepting while their connections run on. False with
  // `error` when a new listener cannot be set up: then nothing changed.
  bool updateListeners(const std::vector<ListenerConfig>& next, std::string& error);

  // Actual listening endpoints, one per configured listener.
  const std::vector<boost::asio::ip::tcp::endpoint>& endpoints() const { return endpoints_; }
  unsigned workerCount() const { return static_cast<unsigned>(workers_.size()); }
  std::vector<std::shared_ptr<const WorkerMetrics>> workerMetrics() const {
    std::vector<std::shared_ptr<const WorkerMetrics>> out;
    for (const auto& w : workers_) out.push_back(w->currentMetrics());
    return out;
  }
  // Thread-safe: every worker takes `snap` for its next requests.
  void publish(std::shared_ptr<const Snapshot> snap) {
    for (auto& w : workers_) w->publish(snap);
  }
  std::vector<Worker*> workers() const {
    std::vector<Worker*> out;
    for (const auto& w : workers_) out.push_back(w.get());
    return out;
  }

  void start();
  // Stops accepting and lets in-flight requests finish; returns true if every worker finished
  // within `timeout`, false if some were cut off.
  bool drainAndJoin(std::chrono::milliseconds timeout);

 private:
  struct Listening {
    ListenerConfig config;
    std::shared_ptr<const ListenerInfo> info;
    std::size_t slot;  // the same on every worker
  };
  // The listener's info (its TLS contexts loaded); null with `error`.
  static std::shared_ptr<ListenerInfo> makeInfo(const ListenerConfig& l, std::string& error);
  // A listener's sockets, one per worker, bound and listening but not yet accepting.
  struct Opened {
    std::vector<int> fds;
    boost::asio::ip::tcp::endpoint endpoint;
    Opened() = default;
    Opened(Opened&& o) noexcept : fds(std::move(o.fds)), endpoint(o.endpoint) { o.fds.clear(); }
    Opened& operator=(Opened&&) = delete;
    ~Opened();  // closes sockets never adopted
  };
  bool open(const ListenerConfig& l, Opened& out, std::string& error) const;
  // Hands `opened` to the workers (the next slot on each) and registers the TLS contexts.
  void adopt(const ListenerConfig& l, std::shared_ptr<const ListenerInfo> info, Opened& opened);

  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Listening> listening_;  // in configuration order
  std::vector<boost::asio::ip::tcp::endpoint> endpoints_;  // index-aligned with listening_
  std::size_t next_slot_ = 0;
};

}  // namespace fledge::proxy
