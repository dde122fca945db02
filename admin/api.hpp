#pragma once
// The admin API (/api/v1): clusters, routes and flags read and changed at runtime. Every write
// is validated against the whole resulting configuration, committed to the Store with its audit
// entry, and then published to the workers as a new snapshot.
#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "admin/http_server.hpp"
#include "admin/metrics.hpp"
#include "admin/rollouts.hpp"
#include "admin/store.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::admin {

// The runtime-changeable part of the configuration, as JSON texts.
struct State {
  std::vector<std::pair<std::string, std::string>> clusters;  // name -> cluster object
  std::vector<std::pair<std::string, std::string>> routes;    // name -> route object, in match order
  std::string flags = R"({"flags":{}})";                       // a flagd document
  std::vector<std::pair<std::string, std::string>> rollouts;  // name -> {"spec": ..., "status": ...}
  std::string toJson(std::uint64_t version) const;
  static bool fromJson(std::string_view json, State& out);
};

struct ApiToken {
  std::string name;
  bool write = false;
  std::string token;
};

// Tokens as "name:role:token" lines (role read or write) from a file and/or an environment
// variable (comma-separated).
bool loadApiTokens(const std::string& file, const char* env_var, std::vector<ApiToken>& out, std::string& error);

// Who sent an admin request: the token it presents ("Authorization: Bearer ...", compared in
// constant time; none or unknown: 401). With no tokens configured (a loopback-only admin
// listener) every request is the writer "local", except what a web page in a browser on this
// host could forge (403): a Host that is not a loopback name (DNS rebinding), or a write from
// another origin (Origin, Sec-Fetch-Site).
struct Caller {
  const ApiToken* token = nullptr;  // null: refused
  unsigned status = 0;              // 401 or 403 when refused
  std::string error;
};
Caller authenticateToken(const Request& req, const std::vector<ApiToken>& tokens);

// GET / PUT /api/v1/log-level ({"level": "debug" | "info" | "warn" | "error"}): the process's
// log level, changed at run time without a restart. Not stored: a restart or a SIGHUP reload
// goes back to the configuration's log_level. Served with or without admin.data_dir.
Response logLevelEndpoint(const Request& req, const std::vector<ApiToken>& tokens);

class AdminApi {
 public:
  using Publish = std::function<void(std::shared_ptr<const proxy::Snapshot>)>;

  // `config_json` is the configuration file; its clusters, routes and flags seed an empty store.
  AdminApi(std::unique_ptr<Store> store, std::string config_json, std::string base_dir, std::vector<ApiToken> tokens,
           Publish publish);

  // Loads the store (or seeds it, or re-seeds it from the file when `reseed`), and returns the
  // snapshot to start with. Errors are startup errors.
  std::shared_ptr<const proxy::Snapshot> start(bool reseed, std::string& error);

  void install(HttpServer& server);
  std::uint64_t version() const { return version_; }

  // A shared store (etcd): the state another instance committed at store `revision`, applied
  // here as a local write would be (validated, published). Skipped when this instance already
  // has that revision or a newer one (`revision` 0: always applied). On the admin work thread.
  bool applyStored(std::int64_t revision, const std::string& state_json, std::string& error);
  // Re-reads the store and applies what it holds.
  bool resync(std::string& error);
  // Whether this instance drives rollouts (a fleet's leader; always when alone).
  void setRolloutDriver(std::function<bool()> is_driver) { is_driver_ = std::move(is_driver); }
  // GET /api/v1/fleet answers with this (fleet mode); unset: 404.
  void setFleetView(std::function<std::string()> view) { fleet_view_ = std::move(view); }
  // The store revision of the state this instance serves (a shared store; 0 for RocksDB).
  std::int64_t storeRevision() const { return store_->revision(); }

  // Where rollouts read their counts: a route arm's (admin::Metrics::armCounts) and a flag
  // variant's (admin::Metrics::flagOutcomeCounts).
  using CountsSource = std::function<ArmCounts(const std::string& route_or_flag, const std::string& arm_or_variant)>;
  void setCounts(CountsSource arms, CountsSource flag_variants) {
    arm_counts_ = std::move(arms);
    variant_counts_ = std::move(flag_variants);
  }
  // Where rollout webhooks run (the executor of the thread tickRollouts runs on).
  void setWebhookExecutor(boost::asio::any_io_executor ex) { webhook_executor_ = std::move(ex); }
  // fledge_rollout_* families (any thread).
  std::vector<prometheus::MetricFamily> rolloutMetrics() const;
  // Advances every rollout: analysis of the last interval, then rollback, next step or success.
  // On the admin work thread (where writes run), once a second.
  void tickRollouts();

  struct Error {
    unsigned status = 0;  // 0: no error
    std::string message;
    std::string field;
  };

  // A write as handle() checks it once the caller may write: `path` below /api/v1/ ("batch" for
  // a batch of operations) applied to a copy of the current state, which is then validated.
  // Nothing is stored or published (tests/fuzz/admin_body_fuzz.cpp drives this).
  struct Write {
    State next;                                   // the state after the write
    std::shared_ptr<const proxy::Snapshot> snap;  // `next`, validated and compiled
    std::string resource, before, after;          // for the answer and the audit entry
    Error error;                                  // status 0: the write is valid
  };
  Write prepareWrite(std::string_view method, std::string_view path, std::string_view body) const;

 private:
  Response handle(const Request& req);
  Response handleOnce(const Request& req);
  // Applies one write to `state`; `resource` and `before`/`after` describe it for the answer
  // and the audit log.
  Error apply(State& state, std::string_view method, std::string_view path, std::string_view body, std::string& resource,
              std::string& before, std::string& after) const;
  std::shared_ptr<const proxy::Snapshot> validate(const State& state, Error& err) const;
  Response commitAndPublish(const Request& req, State next, std::shared_ptr<const proxy::Snapshot> snap,
                            const std::string& actor, const std::string& action, const std::string& resource,
                            const std::string& before, const std::string& after, const std::string& answer);
  std::string assemble(const State& state) const;
  State seedFromFile(std::string& error) const;

  // Rollouts (admin/rollout_controller.cpp).
  // One round of webhook calls (every webhook of one type, for one step).
  struct HookRound {
    std::string key;  // "pre-step 2", "confirm 1"
    std::uint64_t id = 0;
    std::size_t pending = 0;
    std::vector<std::string> failures;  // "name: answered 503"
    std::int64_t finished_ms = 0;
  };
  struct RolloutRuntime {
    RolloutSpec spec;
    HookRound hooks;
    std::string waiting;  // what the rollout waits for (a webhook), for the view
    std::unique_ptr<rollout::Analyzer> analyzer;
    ArmCounts last_canary, last_baseline;
    bool primed = false;
    std::uint64_t step_canary_requests = 0;
    std::vector<rollout::CheckStatus> checks;
    ArmCounts total_canary, total_baseline;  // since the rollout (or Fledge) started
  };
  Response handleRolloutWrite(const Request& req, const std::string& actor, std::string_view path);
  std::string rolloutView(const std::string& name, const std::string& stored) const;
  // Commits `next` (validated) with its audit entry and publishes it; false with `error` if not stored.
  bool commitInternal(State next, std::shared_ptr<const proxy::Snapshot> snap, const std::string& actor,
                      const std::string& action, const std::string& resource, const std::string& before,
                      const std::string& after, Error& error);
  // Moves rollout `name` to `status` and its target (route weights or flag) with it; the audit
  // actor is `actor`, `decision` labels fledge_rollout_decisions_total.
  bool transition(const std::string& name, const RolloutSpec& spec, RolloutStatus status, const std::string& actor,
                  const std::string& why, const char* decision, Error& error);
  // Runs the webhooks of `type` for the step in `key`: nullopt while they run, then whether all
  // answered 200 (failures in rt.hooks). A failed confirm round is tried again a second later.
  std::optional<bool> runHooks(const std::string& name, RolloutRuntime& rt, RolloutWebhook::Type type, const std::string& key,
                               const RolloutStatus& st, std::int64_t now);
  void countDecision(const std::string& rollout, const std::string& decision);
  void refreshRolloutGauges();
  CountsSource arm_counts_, variant_counts_;
  boost::asio::any_io_executor webhook_executor_;
  std::uint64_t hook_rounds_ = 0;
  std::map<std::string, RolloutRuntime> runtime_;
  struct RolloutGauge {
    std::string name;
    RolloutPhase phase;
    std::size_t step;
    unsigned weight;
  };
  mutable std::mutex gauges_mu_;  // the gauges and counters below are read by /metrics
  std::vector<RolloutGauge> gauges_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> decisions_;

  std::unique_ptr<Store> store_;
  std::string config_json_;
  std::string base_json_;  // the file without clusters, routes, flags and flag_files
  std::string base_dir_;
  std::vector<ApiToken> tokens_;
  Publish publish_;
  State state_;
  std::uint64_t version_ = 0;
  bool conflict_ = false;              // the last commit lost to another instance (handle() retries)
  std::function<bool()> is_driver_;    // unset: this instance drives rollouts
  std::function<std::string()> fleet_view_;
  bool was_driver_ = false;
};

}  // namespace fledge::admin
