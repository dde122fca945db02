#pragma once
// Durable control-plane state. A write stores the new state and its audit entry in one atomic,
// synced batch, committed before the API answers. Only the admin thread uses a Store.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fledge::admin {

enum class CommitResult {
  kOk,
  kConflict,     // a shared store: another instance committed since this one last loaded
  kUnavailable,  // the store cannot be reached; nothing was written
  kFailed,       // the store refused or failed the write; nothing was written
};

class Store {
 public:
  virtual ~Store() = default;
  // The stored state document and its version, or nullopt for an empty store.
  virtual std::optional<std::pair<std::uint64_t, std::string>> load(std::string& error) = 0;
  // Atomically: state := `state` at `version`, plus audit entry `version` = `audit_json`. A
  // shared store commits only if nobody else did since this instance's last load, commit or
  // adopt (kConflict otherwise).
  virtual CommitResult commit(std::uint64_t version, const std::string& state, const std::string& audit_json,
                              std::string& error) = 0;
  // A shared store: the state at store revision `revision` was applied (seen by a watch).
  virtual void adopt(std::int64_t revision) { (void)revision; }
  // A shared store: the store revision commits build on — that of the state last committed or
  // adopted (0: local). load() does not move it: the caller adopts what it loaded once it applied.
  virtual std::int64_t revision() const { return 0; }
  // A shared store: the store revision of the state the last load() returned.
  virtual std::int64_t loadedRevision() const { return 0; }
  // Audit entries with seq >= since, oldest first, at most `limit`.
  virtual std::vector<std::string> audit(std::uint64_t since, std::size_t limit, std::string& error) = 0;
};

// RocksDB under `dir`. A store that cannot be opened (corrupt, unreadable, locked by another
// process) is an error, never silently replaced.
std::unique_ptr<Store> openRocksStore(const std::string& dir, std::string& error);

}  // namespace fledge::admin
