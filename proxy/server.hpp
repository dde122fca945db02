#pragma once
// The data plane: N workers sharing the listening ports through SO_REUSEPORT.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/snapshot.hpp"
#include "proxy/worker.hpp"

namespace fledge::proxy {

class Server {
 public:
  // Binds every listener on every worker. Port 0 binds one free port shared by all workers.
  static std::unique_ptr<Server> create(std::shared_ptr<const Snapshot> snap, std::string& error);

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
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
};

}  // namespace fledge::proxy
