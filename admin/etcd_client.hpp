#pragma once
// A client for etcd's v3 API through its gRPC gateway (HTTP/1.1 + JSON, keys and values in
// base64), on Boost.Beast: key ranges, transactions, leases and watches. Blocking calls, each
// bounded by Options::timeout; one connection kept alive per Client, the next endpoint tried
// when one does not answer. Not thread-safe: one thread per Client (a Watch is its own
// connection and may be cancelled from another thread).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config.hpp"  // HostPort
#include "proxy/tls_config.hpp"

namespace fledge::admin::etcd {

struct Options {
  std::vector<proxy::HostPort> endpoints;     // tried in order; the one that answered is kept
  std::optional<proxy::TlsClientConfig> tls;  // https to etcd (verification as for clusters)
  std::string username, password;             // etcd authentication (empty: none)
  std::chrono::milliseconds timeout{2000};    // per call: connect + request + response
};

struct Status {
  enum class Code {
    kOk,
    kUnavailable,  // no endpoint answered (connect refused, timeout, broken stream), or the one
                   // that answered cannot serve (etcd's gRPC code 14: "no leader", ...)
    kCompacted,    // a watch's or range's revision was compacted away
    kError,        // etcd answered with an error (bad request, auth, ...)
  };
  Code code = Code::kOk;
  std::string message;        // why, naming the endpoint for kUnavailable
  std::int64_t compact_revision = 0;  // kCompacted: the oldest revision still kept (a watch's; 0
                                      // for a range, whose error from etcd does not say)
  bool ok() const { return code == Code::kOk; }
};

struct KeyValue {
  std::string key, value;  // decoded bytes
  std::int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

struct RangeResult {
  std::int64_t revision = 0;  // the store's revision when read
  std::vector<KeyValue> kvs;
  std::int64_t count = 0;  // keys in the range, also those a `limit` left out
  bool more = false;       // a `limit` left some out
};

struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kMod;
  Result result = Result::kEqual;
  std::int64_t number = 0;  // version / create_revision / mod_revision / lease
  std::string value;        // kValue
};

struct Op {
  enum class Kind { kPut, kDeleteRange, kRange };
  Kind kind = Kind::kPut;
  std::string key, value, range_end;  // range_end: "" one key; prefixEnd(p) a prefix
  std::int64_t lease = 0;             // kPut: attach to this lease (0: none)
};

struct TxnResult {
  bool succeeded = false;
  std::int64_t revision = 0;  // the store's revision after the transaction
  // Per op of the branch that ran, for kRange ops: what they read (others: empty).
  std::vector<RangeResult> ranges;
};

// The range_end that makes [prefix, prefixEnd(prefix)) every key starting with `prefix`.
std::string prefixEnd(const std::string& prefix);

class Client {
 public:
  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // [key, range_end) ("" = just `key`) at `revision` (0: latest), at most `limit` (0: all).
  Status range(const std::string& key, const std::string& range_end, RangeResult& out, std::int64_t revision = 0,
               std::int64_t limit = 0);
  Status put(const std::string& key, const std::string& value, std::int64_t lease, std::int64_t& revision);
  Status txn(const std::vector<Compare>& compare, const std::vector<Op>& success, const std::vector<Op>& failure,
             TxnResult& out);
  Status leaseGrant(std::int64_t ttl_seconds, std::int64_t& id);
  // Refreshes the lease; `ttl` is its remaining TTL after the refresh, <= 0 if it no longer exists.
  Status leaseKeepAlive(std::int64_t id, std::int64_t& ttl);
  Status leaseRevoke(std::int64_t id);
  Status compact(std::int64_t revision);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One watch stream on [key, range_end) from `start_revision`, on a connection of its own. The
// constructor connects and waits (up to Options::timeout) until etcd confirms the watch, so with
// start_revision 0 every change after construction is seen; a failure there is what the first
// next() returns.
class Watch {
 public:
  struct Event {
    enum class Type { kPut, kDelete };
    Type type = Type::kPut;
    KeyValue kv;
  };
  Watch(Options options, std::string key, std::string range_end, std::int64_t start_revision);
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Waits up to `wait` for the next batch: kOk with events appended (none if `wait` passed) and
  // `revision` the store revision the batch brings the watcher to (its last event's; with no
  // event yet, start_revision - 1, or the store's revision at creation for 0); kCompacted when
  // start_revision was compacted (re-read, then watch from the new revision); kUnavailable when
  // the stream broke or was cancelled. After a non-ok status the Watch is finished.
  Status next(std::vector<Event>& events, std::int64_t& revision, std::chrono::milliseconds wait);
  // Any thread: makes a blocked or later next() return kUnavailable.
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fledge::admin::etcd
