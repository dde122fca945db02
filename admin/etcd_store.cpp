#include "admin/etcd_store.hpp"

#include <cstdio>
#include <cstdlib>

#include "admin/json_edit.hpp"

namespace fledge::admin {

std::string EtcdKeys::audit(std::uint64_t seq) const {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(seq));
  return auditPrefix() + digits;
}

EtcdStore::EtcdStore(etcd::Options options, EtcdKeys keys) : client_(std::move(options)), keys_(std::move(keys)) {}

namespace {
std::string describe(const etcd::Status& s) { return "etcd: " + s.message; }
}  // namespace

std::optional<std::pair<std::uint64_t, std::string>> EtcdStore::load(std::string& error) {
  etcd::RangeResult r;
  if (auto s = client_.range(keys_.state(), "", r); !s.ok()) {
    error = describe(s);
    return std::nullopt;
  }
  if (r.kvs.empty()) {
    loaded_revision_ = 0;
    return std::nullopt;
  }
  const auto& kv = r.kvs.front();
  const auto version = getMember(kv.value, "version");
  char* end = nullptr;
  const unsigned long long v = version ? std::strtoull(version->c_str(), &end, 10) : 0;
  if (!version || version->empty() || *end != '\0') {
    error = "the state in etcd (" + keys_.state() + ") has no valid version";
    return std::nullopt;
  }
  loaded_revision_ = kv.mod_revision;
  return std::make_pair(static_cast<std::uint64_t>(v), kv.value);
}

CommitResult EtcdStore::commit(std::uint64_t version, const std::string& state, const std::string& audit_json,
                               std::string& error) {
  etcd::Compare unchanged;
  unchanged.key = keys_.state();
  unchanged.target = etcd::Compare::Target::kMod;
  unchanged.result = etcd::Compare::Result::kEqual;
  unchanged.number = revision_;  // 0: the key must not exist yet
  etcd::Op put_state{etcd::Op::Kind::kPut, keys_.state(), state, "", 0};
  etcd::Op put_audit{etcd::Op::Kind::kPut, keys_.audit(version), audit_json, "", 0};
  etcd::TxnResult r;
  const etcd::Status s = client_.txn({unchanged}, {put_state, put_audit}, {}, r);
  if (!s.ok()) {
    error = describe(s);
    return s.code == etcd::Status::Code::kUnavailable ? CommitResult::kUnavailable : CommitResult::kFailed;
  }
  if (!r.succeeded) {
    error = "another instance changed the state first";
    return CommitResult::kConflict;
  }
  revision_ = r.revision;
  return CommitResult::kOk;
}

std::vector<std::string> EtcdStore::audit(std::uint64_t since, std::size_t limit, std::string& error) {
  etcd::RangeResult r;
  std::vector<std::string> out;
  if (auto s = client_.range(keys_.audit(since), etcd::prefixEnd(keys_.auditPrefix()), r, 0, static_cast<std::int64_t>(limit)); !s.ok()) {
    error = describe(s);
    return out;
  }
  for (auto& kv : r.kvs) out.push_back(std::move(kv.value));
  return out;
}

void EtcdStore::adopt(std::int64_t revision) {
  if (revision > revision_) revision_ = revision;
}

}  // namespace fledge::admin
