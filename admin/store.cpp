#include "admin/store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

#include <cstdio>

namespace fledge::admin {
namespace {

constexpr const char* kStateKey = "state";
constexpr const char* kVersionKey = "version";

std::string auditKey(std::uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "audit/%020llu", static_cast<unsigned long long>(seq));
  return buf;
}

class RocksStore : public Store {
 public:
  explicit RocksStore(rocksdb::DB* db) : db_(db) {}

  std::optional<std::pair<std::uint64_t, std::string>> load(std::string& error) override {
    std::string state, version;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kStateKey, &state);
    if (s.IsNotFound()) return std::nullopt;
    if (!s.ok()) {
      error = "cannot read state: " + s.ToString();
      return std::nullopt;
    }
    s = db_->Get(rocksdb::ReadOptions(), kVersionKey, &version);
    if (!s.ok()) {
      error = "cannot read state version: " + s.ToString();
      return std::nullopt;
    }
    char* end = nullptr;
    unsigned long long v = std::strtoull(version.c_str(), &end, 10);
    if (version.empty() || *end != '\0') {
      error = "stored state version is corrupt";
      return std::nullopt;
    }
    return std::make_pair(static_cast<std::uint64_t>(v), std::move(state));
  }

  CommitResult commit(std::uint64_t version, const std::string& state, const std::string& audit_json, std::string& error) override {
    rocksdb::WriteBatch batch;
    batch.Put(kStateKey, state);
    batch.Put(kVersionKey, std::to_string(version));
    batch.Put(auditKey(version), audit_json);
    rocksdb::WriteOptions wo;
    wo.sync = true;  // on disk before the API answers
    rocksdb::Status s = db_->Write(wo, &batch);
    if (!s.ok()) error = "cannot write state: " + s.ToString();
    return s.ok() ? CommitResult::kOk : CommitResult::kFailed;
  }

  std::vector<std::string> audit(std::uint64_t since, std::size_t limit, std::string& error) override {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(auditKey(since)); it->Valid() && out.size() < limit; it->Next()) {
      if (!it->key().starts_with("audit/")) break;
      out.push_back(it->value().ToString());
    }
    if (!it->status().ok()) error = "cannot read audit log: " + it->status().ToString();
    return out;
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace

std::unique_ptr<Store> openRocksStore(const std::string& dir, std::string& error) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  options.keep_log_file_num = 2;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &db);
  if (!s.ok()) {
    error = "cannot open store at \"" + dir + "\": " + s.ToString();
    return nullptr;
  }
  return std::make_unique<RocksStore>(db);
}

}  // namespace fledge::admin
