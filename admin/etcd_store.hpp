#pragma once
// The admin state in etcd, shared by a fleet of Fledge instances. Under `prefix`:
//   state               the state document (its "version" is the fleet's config version)
//   audit/<seq, 20 digits>  one audit entry per version
//   members/<id>        each instance's heartbeat, attached to its lease (admin/fleet.hpp)
//   leader              the rollout leader's id, attached to its lease
// A commit is one etcd transaction: if the state key's mod revision is still the one this
// instance last loaded, committed or adopted, put the state and its audit entry together.
#include <memory>
#include <string>

#include "admin/etcd_client.hpp"
#include "admin/store.hpp"

namespace fledge::admin {

struct EtcdKeys {
  std::string prefix;
  std::string state() const { return prefix + "state"; }
  std::string audit(std::uint64_t seq) const;  // zero-padded: keys sort by number
  std::string auditPrefix() const { return prefix + "audit/"; }
  std::string member(const std::string& id) const { return membersPrefix() + id; }
  std::string membersPrefix() const { return prefix + "members/"; }
  std::string leader() const { return prefix + "leader"; }
};

class EtcdStore : public Store {
 public:
  EtcdStore(etcd::Options options, EtcdKeys keys);
  std::optional<std::pair<std::uint64_t, std::string>> load(std::string& error) override;
  CommitResult commit(std::uint64_t version, const std::string& state, const std::string& audit_json, std::string& error) override;
  std::vector<std::string> audit(std::uint64_t since, std::size_t limit, std::string& error) override;
  void adopt(std::int64_t revision) override;
  std::int64_t revision() const override { return revision_; }
  std::int64_t loadedRevision() const override { return loaded_revision_; }

 private:
  etcd::Client client_;
  EtcdKeys keys_;
  std::int64_t revision_ = 0;  // mod revision of the state key this instance builds on
  std::int64_t loaded_revision_ = 0;  // mod revision of the state the last load() returned
};

}  // namespace fledge::admin
