#pragma once
// Fleet mode: several Fledge instances share one state in etcd (admin/etcd_store.hpp).
//  - A watch on the state key applies every change another instance commits, as a local write
//    would be applied; a broken or compacted watch is followed by a full re-read, so no change
//    is missed.
//  - A heartbeat every second keeps this instance's lease, publishes its member document
//    (applied version, per-arm and per-variant counts) under the lease, reads the others', and
//    holds or contends for the rollout leadership (a key attached to the leader's lease: when the
//    leader dies, the key goes with its lease and another instance takes it).
//  - The leader's rollout analysis reads fleet-wide counts: its own live counts plus every other
//    member's last published ones (FleetTotals).
// etcd being down never stops the data plane: the last applied state keeps serving; writes fail
// with 503 (the store says kUnavailable) and storeUp() says why.
#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "admin/etcd_client.hpp"
#include "admin/etcd_store.hpp"
#include "admin/metrics.hpp"
#include "proxy/log.hpp"

namespace fledge::admin {

class AdminApi;

// Counts keyed "a:<route>/<arm>" (a route arm) or "v:<flag>/<variant>" (a flag variant).
using CountsByKey = std::map<std::string, ArmCounts>;
std::string armCountsKey(const std::string& route, const std::string& arm);
std::string variantCountsKey(const std::string& flag, const std::string& variant);

// Fleet-wide cumulative counts from each member's published cumulative counts. Totals never go
// backwards: a member whose counts drop (it restarted) continues from where it was, and a member
// that left keeps its last counts in the total.
class FleetTotals {
 public:
  void update(const std::string& member, const CountsByKey& counts);
  // The sum over every member but `except` (the caller adds its own live counts).
  ArmCounts total(const std::string& key, const std::string& except) const;

 private:
  struct Series {
    ArmCounts last, offset;
  };
  std::map<std::string, std::map<std::string, Series>> members_;  // member -> key -> series
};

// The member document's counts as JSON ({"key": [5 classes..., latency buckets...]}) and back.
std::string countsToJson(const CountsByKey& counts);
bool countsFromJson(const std::string& json, CountsByKey& out);

struct FleetMember {
  std::string id;
  std::string admin;       // its admin listener, host:port
  std::uint64_t version = 0;  // the config version it serves
  std::int64_t updated_ms = 0;  // when it last published (its clock)
};

class Fleet {
 public:
  struct Options {
    etcd::Options etcd;
    EtcdKeys keys;
    std::string member_id;
    std::string admin_address;
    std::chrono::seconds lease_ttl{3};
  };
  // `work`: the admin work thread's executor (AdminApi runs there). `applied_version`: the
  // version this instance serves (any thread). `local_counts`: this instance's cumulative
  // counts of every route arm and observed flag variant (any thread).
  Fleet(Options options, AdminApi& api, boost::asio::any_io_executor work, std::function<std::uint64_t()> applied_version,
        std::function<CountsByKey()> local_counts);
  ~Fleet();

  // Watches from `revision` (the store revision the state was loaded at) and starts the
  // heartbeat. stop() revokes the lease: the leadership and membership end at once.
  void start(std::int64_t revision);
  void stop();

  bool isLeader() const { return leader_.load(std::memory_order_relaxed); }
  bool storeUp() const { return store_up_.load(std::memory_order_relaxed); }
  std::string storeError() const;
  // Fleet-wide cumulative counts for the leader's analysis (any thread).
  ArmCounts counts(const std::string& key) const;
  // GET /api/v1/fleet: members, their versions and lag, the leader, the store's state.
  std::string view() const;
  std::vector<prometheus::MetricFamily> metrics() const;

 private:
  void watchLoop(std::int64_t revision);  // revision < 0: begin with a full re-read
  void watchUntilStopped(std::int64_t revision);
  void catchUp();
  void heartbeatLoop();
  void heartbeat(etcd::Client& client);
  void apply(std::string state_json, std::int64_t revision);
  void setStore(bool up, const std::string& error);
  bool sleepFor(std::chrono::milliseconds d);  // false: stopping

  Options opt_;
  AdminApi& api_;
  boost::asio::any_io_executor work_;
  std::function<std::uint64_t()> applied_version_;
  std::function<CountsByKey()> local_counts_;

  std::atomic<bool> leader_{false}, store_up_{true}, stopping_{false};
  std::atomic<std::uint64_t> resyncs_{0}, applied_remote_{0};
  std::atomic<std::int64_t> latest_seen_{0};  // newest state revision the watch delivered
  log::Limiter beat_log_, catch_up_log_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::string store_error_;
  std::string leader_id_;
  std::vector<FleetMember> members_;
  FleetTotals totals_;
  std::int64_t lease_ = 0;
  std::chrono::steady_clock::time_point last_contact_;
  etcd::Watch* watch_ = nullptr;  // the running watch, cancelled by stop()
  std::thread watcher_, heart_;
};

}  // namespace fledge::admin
