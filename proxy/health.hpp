#pragma once
// Active health checks: one checker per process, on its own thread, sends GET `path` to every
// endpoint of every cluster that has a health_check, and publishes each endpoint's state as an
// atomic flag the workers' load balancers read (a relaxed load per pick, no lock). Endpoints
// start healthy; unhealthy_threshold failures in a row take one out, healthy_threshold passes
// bring it back. The state machine (HealthState) is pure and unit-tested; the checker only does
// the I/O.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/config.hpp"

namespace fledge::proxy {

struct Snapshot;

class HealthState {
 public:
  // One check's result; true when the endpoint changed state.
  bool record(bool passed, const HealthCheckConfig& cfg);
  bool healthy() const { return healthy_; }

 private:
  bool healthy_ = true;
  std::uint32_t passes_ = 0, failures_ = 0;
};

// The flag the checker writes and the workers read, per (cluster, endpoint as configured).
std::shared_ptr<std::atomic<bool>> healthFlag(const std::string& cluster, const std::string& endpoint);

class HealthChecker {
 public:
  HealthChecker();
  ~HealthChecker();  // stops the thread
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // The configuration to check from now on (any thread): new endpoints are checked, removed ones
  // are no longer, kept ones keep their state.
  void update(std::shared_ptr<const Snapshot> snap);
  struct EndpointHealth {
    std::string cluster, endpoint;
    bool healthy = true;
    std::uint64_t passed = 0, failed = 0;  // checks so far
  };
  // Every endpoint under checks, as it is now (any thread; admin/metrics exports it).
  std::vector<EndpointHealth> states() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fledge::proxy
