#include "admin/fleet.hpp"

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "admin/api.hpp"
#include "admin/api_util.hpp"
#include "proxy/log.hpp"

namespace fledge::admin {

namespace json = boost::json;

std::string armCountsKey(const std::string& route, const std::string& arm) { return "a:" + route + "/" + arm; }
std::string variantCountsKey(const std::string& flag, const std::string& variant) { return "v:" + flag + "/" + variant; }

namespace {

void addInto(ArmCounts& to, const ArmCounts& c) {
  for (std::size_t i = 0; i < to.by_class.size(); ++i) to.by_class[i] += c.by_class[i];
  for (std::size_t i = 0; i < to.latency.size(); ++i) to.latency[i] += c.latency[i];
}

std::int64_t msNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

void FleetTotals::update(const std::string& member, const CountsByKey& counts) {
  auto& series = members_[member];
  for (const auto& [key, c] : counts) {
    Series& s = series[key];
    if (c.requests() < s.last.requests()) addInto(s.offset, s.last);  // the member restarted
    s.last = c;
  }
}

ArmCounts FleetTotals::total(const std::string& key, const std::string& except) const {
  ArmCounts sum;
  for (const auto& [member, series] : members_) {
    if (member == except) continue;
    if (auto it = series.find(key); it != series.end()) {
      addInto(sum, it->second.last);
      addInto(sum, it->second.offset);
    }
  }
  return sum;
}

std::string countsToJson(const CountsByKey& counts) {
  json::object o;
  for (const auto& [key, c] : counts) {
    json::array a;
    a.reserve(c.by_class.size() + c.latency.size());
    for (auto v : c.by_class) a.push_back(v);
    for (auto v : c.latency) a.push_back(v);
    o[key] = std::move(a);
  }
  return json::serialize(o);
}

bool countsFromJson(const std::string& text, CountsByKey& out) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return false;
  for (const auto& [key, value] : v.get_object()) {
    const auto* a = value.if_array();
    ArmCounts c;
    if (!a || a->size() != c.by_class.size() + c.latency.size()) return false;
    std::size_t i = 0;
    // Boost.JSON keeps a small non-negative number as int64: take any exact non-negative integer.
    auto next = [&](std::uint64_t& slot) {
      boost::system::error_code nec;
      slot = (*a)[i++].to_number<std::uint64_t>(nec);
      return !nec;
    };
    for (auto& slot : c.by_class)
      if (!next(slot)) return false;
    for (auto& slot : c.latency)
      if (!next(slot)) return false;
    out[std::string(key)] = c;
  }
  return true;
}

Fleet::Fleet(Options options, AdminApi& api, boost::asio::any_io_executor work, std::function<std::uint64_t()> applied_version,
             std::function<CountsByKey()> local_counts)
    : opt_(std::move(options)),
      api_(api),
      work_(std::move(work)),
      applied_version_(std::move(applied_version)),
      local_counts_(std::move(local_counts)) {}

Fleet::~Fleet() { stop(); }

void Fleet::start(std::int64_t revision) {
  last_contact_ = std::chrono::steady_clock::now();
  watcher_ = std::thread([this, revision] { watchLoop(revision); });
  heart_ = std::thread([this] { heartbeatLoop(); });
}

void Fleet::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_.exchange(true)) return;
    if (watch_) watch_->cancel();
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
  if (heart_.joinable()) heart_.join();
  leader_ = false;
}

bool Fleet::sleepFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_.load(); });
}

std::string Fleet::storeError() const {
  std::lock_guard lock(mu_);
  return store_error_;
}

void Fleet::setStore(bool up, const std::string& error) {
  const bool was = store_up_.exchange(up);
  {
    std::lock_guard lock(mu_);
    store_error_ = up ? std::string() : error;
    if (up) last_contact_ = std::chrono::steady_clock::now();
  }
  if (was && !up) log::error("fleet store unreachable; serving the last applied state, admin writes answer 503", {{"error", error}});
  if (!was && up) log::info("fleet store reachable again");
}

void Fleet::apply(std::string state_json, std::int64_t revision) {
  std::int64_t seen = latest_seen_.load();
  while (revision > seen && !latest_seen_.compare_exchange_weak(seen, revision)) {
  }
  boost::asio::post(work_, [this, state_json = std::move(state_json), revision] {
    std::string error;
    try {
      if (api_.applyStored(revision, state_json, error)) {
        applied_remote_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty())
      log::error("state from the fleet store not applied; the previous one keeps serving (retried every second)",
                 {{"revision", std::to_string(revision)}, {"error", error}});
  });
}

void Fleet::catchUp() {
  // A state that did not apply (a name that did not resolve yet, ...) is tried again, so an
  // instance does not stay behind until the next change.
  const std::int64_t seen = latest_seen_.load();
  boost::asio::post(work_, [this, seen] {
    if (api_.storeRevision() >= seen) return;
    std::string error;
    try {
      if (api_.resync(error)) return;
    } catch (const std::exception& e) {
      error = e.what();
    }
    log::limited(catch_up_log_, log::Level::kError, "still behind the fleet's newest state", {{"error", error}});
  });
}

void Fleet::watchLoop(std::int64_t revision) {
  for (;;) {
    try {
      watchUntilStopped(revision);
      return;
    } catch (const std::exception& e) {  // start again from a full re-read
      log::error("fleet watch failed; re-reading the state", {{"error", e.what()}});
      revision = -1;
      if (!sleepFor(std::chrono::milliseconds(500))) return;
    }
  }
}

void Fleet::watchUntilStopped(std::int64_t revision) {
  etcd::Client reader(opt_.etcd);
  bool resync = revision < 0;  // after a broken or compacted watch: read the whole state first
  while (!stopping_) {
    if (resync) {
      etcd::RangeResult r;
      const etcd::Status s = reader.range(opt_.keys.state(), "", r);
      if (!s.ok()) {
        setStore(false, s.message);
        if (!sleepFor(std::chrono::milliseconds(500))) return;
        continue;
      }
      setStore(true, "");
      resyncs_.fetch_add(1, std::memory_order_relaxed);
      if (!r.kvs.empty()) apply(r.kvs.front().value, r.kvs.front().mod_revision);
      revision = r.revision;
      resync = false;
    }
    etcd::Watch watch(opt_.etcd, opt_.keys.state(), "", revision + 1);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      watch_ = &watch;
    }
    struct Unpublish {  // stop() must never see a watch that is gone, however this scope ends
      Fleet& f;
      ~Unpublish() {
        std::lock_guard lock(f.mu_);
        f.watch_ = nullptr;
      }
    } unpublish{*this};
    std::vector<etcd::Watch::Event> events;
    for (;;) {
      events.clear();
      std::int64_t at = 0;
      const etcd::Status s = watch.next(events, at, std::chrono::seconds(1));
      if (!s.ok()) {
        if (!stopping_) {
          if (s.code == etcd::Status::Code::kCompacted) {
            log::warn("fleet watch fell behind a compaction; re-reading the state", {{"compact_revision", std::to_string(s.compact_revision)}});
          } else {
            setStore(false, s.message);
          }
        }
        resync = true;
        break;
      }
      for (auto& e : events)
        if (e.type == etcd::Watch::Event::Type::kPut) apply(std::move(e.kv.value), e.kv.mod_revision);
      if (at > revision) revision = at;
    }
    if (!stopping_ && !storeUp() && !sleepFor(std::chrono::milliseconds(500))) return;
  }
}

void Fleet::heartbeatLoop() {
  etcd::Client client(opt_.etcd);
  do {
    try {
      heartbeat(client);
    } catch (const std::exception& e) {  // e.g. a member document Boost.JSON refuses: skip this beat
      log::limited(beat_log_, log::Level::kError, "fleet heartbeat failed", {{"error", e.what()}});
    }
    catchUp();
  } while (sleepFor(std::chrono::seconds(1)));
  // A clean stop hands the leadership over at once instead of after the lease's TTL.
  std::int64_t lease;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
  }
  if (lease) client.leaseRevoke(lease);
}

void Fleet::heartbeat(etcd::Client& client) {
  auto fail = [&](const etcd::Status& s) {
    setStore(false, s.message);
    // Without contact for a lease's TTL the leadership must be assumed lost.
    std::lock_guard lock(mu_);
    if (std::chrono::steady_clock::now() - last_contact_ >= opt_.lease_ttl) leader_ = false;
  };
  std::int64_t lease;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
  }
  std::int64_t ttl = 0;
  if (lease) {
    if (auto s = client.leaseKeepAlive(lease, ttl); !s.ok()) return fail(s);
  }
  if (!lease || ttl <= 0) {  // first beat, or the lease expired while etcd was out of reach
    if (auto s = client.leaseGrant(opt_.lease_ttl.count(), lease); !s.ok()) return fail(s);
    std::lock_guard lock(mu_);
    lease_ = lease;
  }
  // This member's document.
  json::object doc;
  doc["id"] = opt_.member_id;
  doc["admin"] = opt_.admin_address;
  doc["version"] = applied_version_();
  doc["updated_ms"] = msNow();
  const CountsByKey mine = local_counts_();
  doc["counts"] = json::parse(countsToJson(mine));
  std::int64_t rev = 0;
  if (auto s = client.put(opt_.keys.member(opt_.member_id), json::serialize(doc), lease, rev); !s.ok()) return fail(s);
  // The leadership: take it if nobody holds it; otherwise read who does.
  etcd::Compare vacant{opt_.keys.leader(), etcd::Compare::Target::kCreate, etcd::Compare::Result::kEqual, 0, ""};
  etcd::Op take{etcd::Op::Kind::kPut, opt_.keys.leader(), opt_.member_id, "", lease};
  etcd::Op read{etcd::Op::Kind::kRange, opt_.keys.leader(), "", "", 0};
  etcd::TxnResult t;
  if (auto s = client.txn({vacant}, {take}, {read}, t); !s.ok()) return fail(s);
  std::string leader = opt_.member_id;
  std::int64_t leader_lease = lease;
  if (!t.succeeded) {
    leader.clear();
    if (!t.ranges.empty() && !t.ranges.front().kvs.empty()) {
      leader = t.ranges.front().kvs.front().value;
      leader_lease = t.ranges.front().kvs.front().lease;
    }
  }
  // Everyone's documents.
  etcd::RangeResult r;
  if (auto s = client.range(opt_.keys.membersPrefix(), etcd::prefixEnd(opt_.keys.membersPrefix()), r); !s.ok()) return fail(s);
  std::vector<FleetMember> members;
  std::vector<std::pair<std::string, CountsByKey>> counts;
  for (const auto& kv : r.kvs) {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (!o) continue;
    FleetMember m;
    if (const auto* id = o->if_contains("id"); id && id->is_string()) m.id = std::string(id->get_string());
    if (const auto* a = o->if_contains("admin"); a && a->is_string()) m.admin = std::string(a->get_string());
    boost::system::error_code nec;  // another member's document: never trusted to be well-formed
    if (const auto* ver = o->if_contains("version"); ver && ver->is_number()) m.version = ver->to_number<std::uint64_t>(nec);
    if (nec) m.version = 0;
    nec.clear();
    if (const auto* u = o->if_contains("updated_ms"); u && u->is_number()) m.updated_ms = u->to_number<std::int64_t>(nec);
    if (nec) m.updated_ms = 0;
    CountsByKey c;
    if (const auto* cj = o->if_contains("counts"); cj && countsFromJson(json::serialize(*cj), c)) counts.emplace_back(m.id, std::move(c));
    if (!m.id.empty()) members.push_back(std::move(m));
  }
  setStore(true, "");
  const bool leading = leader == opt_.member_id && leader_lease == lease;
  if (leading != leader_.load()) log::info(leading ? "fleet: this instance leads the rollouts" : "fleet: this instance no longer leads the rollouts",
                                           {{"member", opt_.member_id}, {"leader", leader}});
  leader_ = leading;
  std::lock_guard lock(mu_);
  leader_id_ = leader;
  members_ = std::move(members);
  for (const auto& [id, c] : counts) totals_.update(id, c);
}

ArmCounts Fleet::counts(const std::string& key) const {
  ArmCounts c;
  {
    std::lock_guard lock(mu_);
    c = totals_.total(key, opt_.member_id);
  }
  const CountsByKey mine = local_counts_();
  if (auto it = mine.find(key); it != mine.end()) addInto(c, it->second);
  return c;
}

std::string Fleet::view() const {
  std::lock_guard lock(mu_);
  std::uint64_t newest = 0;
  for (const auto& m : members_) newest = std::max(newest, m.version);
  json::array members;
  for (const auto& m : members_) {
    json::object o;
    o["id"] = m.id;
    o["admin"] = m.admin;
    o["version"] = m.version;
    o["lag"] = newest - m.version;
    o["updated_ms"] = m.updated_ms;
    o["leader"] = m.id == leader_id_;
    members.push_back(std::move(o));
  }
  json::object out;
  out["self"] = opt_.member_id;
  out["leader"] = leader_id_;
  out["version"] = applied_version_();
  out["store"] = {{"kind", "etcd"}, {"prefix", opt_.keys.prefix}, {"up", store_up_.load()}, {"error", store_error_}};
  out["members"] = std::move(members);
  return json::serialize(out);
}

std::vector<prometheus::MetricFamily> Fleet::metrics() const {
  using prometheus::MetricType;
  auto gauge = [](const char* name, const char* help) {
    prometheus::MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = MetricType::Gauge;
    return f;
  };
  auto one = [](prometheus::MetricFamily& f, double v, std::vector<prometheus::ClientMetric::Label> labels = {}) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    m.gauge.value = v;
    f.metric.push_back(std::move(m));
  };
  auto up = gauge("fledge_fleet_store_up", "1 while the fleet's etcd answers; 0: serving the last applied state, admin writes answer 503.");
  one(up, storeUp() ? 1 : 0);
  auto leader = gauge("fledge_fleet_leader", "1 on the instance that drives the fleet's rollouts.");
  one(leader, isLeader() ? 1 : 0);
  auto version = gauge("fledge_fleet_member_version", "The config version each member of the fleet serves, as it last published it.");
  auto lag = gauge("fledge_fleet_member_lag", "Versions each member is behind the newest one in the fleet.");
  prometheus::MetricFamily resyncs;
  resyncs.name = "fledge_fleet_resyncs_total";
  resyncs.help = "Full re-reads of the state after a broken or compacted watch.";
  resyncs.type = MetricType::Counter;
  prometheus::ClientMetric r;
  r.counter.value = static_cast<double>(resyncs_.load());
  resyncs.metric.push_back(r);
  {
    std::lock_guard lock(mu_);
    std::uint64_t newest = 0;
    for (const auto& m : members_) newest = std::max(newest, m.version);
    for (const auto& m : members_) {
      one(version, static_cast<double>(m.version), {{"member", m.id}});
      one(lag, static_cast<double>(newest - m.version), {{"member", m.id}});
    }
  }
  return {std::move(up), std::move(leader), std::move(version), std::move(lag), std::move(resyncs)};
}

}  // namespace fledge::admin
