#pragma once
// The admin API (/api/v1): clusters, routes and flags read and changed at runtime. Every write
// is validated against the whole resulting configuration, committed to the Store with its audit
// entry, and then published to the workers as a new snapshot.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

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

  // Where rollouts read their arms' counts (admin::Metrics::armCounts).
  using ArmCountsSource = std::function<ArmCounts(const std::string& route, const std::string& arm)>;
  void setArmCounts(ArmCountsSource source) { arm_counts_ = std::move(source); }
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
  // Applies one write to `state`; `resource` and `before`/`after` describe it for the answer
  // and the audit log.
  Error apply(State& state, std::string_view method, std::string_view path, std::string_view body, std::string& resource,
              std::string& before, std::string& after) const;
  std::shared_ptr<const proxy::Snapshot> validate(const State& state, Error& err) const;
  Response commitAndPublish(const Request& req, State next, std::shared_ptr<const proxy::Snapshot> snap,
                            const std::string& actor, const std::string& action, const std::string& resource,
                            const std::string& before, const std::string& after, const std::string& answer);
  const ApiToken* authenticate(const Request& req) const;
  std::string assemble(const State& state) const;
  State seedFromFile(std::string& error) const;

  // Rollouts (admin/rollout_controller.cpp).
  struct RolloutRuntime {
    RolloutSpec spec;
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
  // Moves rollout `name` to `status`, with the route's weights; the audit actor is `actor`.
  bool transition(const std::string& name, const RolloutSpec& spec, RolloutStatus status, const std::string& actor,
                  const std::string& why, bool swap_clusters, Error& error);
  ArmCountsSource arm_counts_;
  std::map<std::string, RolloutRuntime> runtime_;

  std::unique_ptr<Store> store_;
  std::string config_json_;
  std::string base_json_;  // the file without clusters, routes, flags and flag_files
  std::string base_dir_;
  std::vector<ApiToken> tokens_;
  Publish publish_;
  State state_;
  std::uint64_t version_ = 0;
};

}  // namespace fledge::admin
