// admin::etcd::Client and Watch against a real etcd (tests/etcd_process.hpp), one per test.
#include "admin/etcd_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <thread>

#include "tests/etcd_process.hpp"
#include "tests/integration/tls_certs.hpp"

namespace fledge::admin::etcd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Code = Status::Code;

std::int64_t msSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

Options optionsFor(const std::vector<std::uint16_t>& ports, std::chrono::milliseconds timeout = 2000ms) {
  Options o;
  for (auto p : ports) o.endpoints.push_back({"127.0.0.1", p});
  o.timeout = timeout;
  return o;
}

// A loopback port with nothing listening on it (connections are refused).
std::uint16_t deadPort() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

std::string describe(const Status& s) {
  static constexpr const char* kNames[] = {"kOk", "kUnavailable", "kCompacted", "kError"};
  return std::string(kNames[static_cast<int>(s.code)]) + ": " + s.message;
}

// Collects watch events until there are `n` (or `within` passes).
std::vector<Watch::Event> collect(Watch& w, std::size_t n, std::int64_t& revision, std::chrono::milliseconds within = 5s) {
  std::vector<Watch::Event> events;
  const auto deadline = Clock::now() + within;
  while (events.size() < n && Clock::now() < deadline) {
    const Status s = w.next(events, revision, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    EXPECT_TRUE(s.ok()) << describe(s);
    if (!s.ok()) break;
  }
  return events;
}

class EtcdClientTest : public ::testing::Test {
 protected:
  Options options() const { return optionsFor({etcd_.clientPort()}); }
  std::int64_t put(const std::string& key, const std::string& value, std::int64_t lease = 0) {
    std::int64_t revision = 0;
    const Status s = client_.put(key, value, lease, revision);
    EXPECT_TRUE(s.ok()) << describe(s);
    return revision;
  }
  RangeResult get(const std::string& key, const std::string& range_end = "", std::int64_t revision = 0, std::int64_t limit = 0) {
    RangeResult r;
    const Status s = client_.range(key, range_end, r, revision, limit);
    EXPECT_TRUE(s.ok()) << describe(s);
    return r;
  }

  test::EtcdProcess etcd_;
  Client client_{options()};
};

TEST(EtcdPrefixEnd, IncrementsTheLastByteThatCan) {
  EXPECT_EQ(prefixEnd("app/"), "app0");
  EXPECT_EQ(prefixEnd("a"), "b");
  EXPECT_EQ(prefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  EXPECT_EQ(prefixEnd(""), std::string(1, '\0'));
}

TEST_F(EtcdClientTest, PutThenRangeOneKey) {
  const std::string binary("v\0\xff\n\"x", 6);  // base64 carries any byte
  const std::int64_t rev = put("k1", binary);
  ASSERT_GT(rev, 1);
  put("k10", "other");
  RangeResult r = get("k1");
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].key, "k1");
  EXPECT_EQ(r.kvs[0].value, binary);
  EXPECT_EQ(r.kvs[0].create_revision, rev);
  EXPECT_EQ(r.kvs[0].mod_revision, rev);
  EXPECT_EQ(r.kvs[0].version, 1);
  EXPECT_EQ(r.kvs[0].lease, 0);
  EXPECT_EQ(r.revision, rev + 1);

  const std::int64_t rev2 = put("k1", "");
  r = get("k1");
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "");
  EXPECT_EQ(r.kvs[0].version, 2);
  EXPECT_EQ(r.kvs[0].mod_revision, rev2);

  r = get("missing");
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.revision, rev2);
}

TEST_F(EtcdClientTest, RangePrefixLimitAndRevision) {
  const std::int64_t first = put("app/a", "1");
  put("app/b", "2");
  put("app/c", "3");
  put("apq", "outside");
  put("ap", "outside");
  RangeResult r = get("app/", prefixEnd("app/"));
  ASSERT_EQ(r.kvs.size(), 3u);
  EXPECT_EQ(r.kvs[0].key, "app/a");
  EXPECT_EQ(r.kvs[1].key, "app/b");
  EXPECT_EQ(r.kvs[2].key, "app/c");

  EXPECT_EQ(r.count, 3);
  EXPECT_FALSE(r.more);

  r = get("app/", prefixEnd("app/"), 0, 2);
  ASSERT_EQ(r.kvs.size(), 2u);
  EXPECT_EQ(r.kvs[1].key, "app/b");
  EXPECT_EQ(r.count, 3);
  EXPECT_TRUE(r.more);

  EXPECT_EQ(get("", prefixEnd("")).kvs.size(), 5u);  // the whole keyspace

  put("app/a", "changed");
  EXPECT_EQ(get("app/a").kvs.at(0).value, "changed");
  r = get("app/a", "", first);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "1");
  EXPECT_EQ(get("app/b", "", first).kvs.size(), 0u);  // not yet written then
}

TEST_F(EtcdClientTest, RangeAtACompactedRevisionIsCompacted) {
  const std::int64_t first = put("k", "1");
  const std::int64_t last = put("k", "2");
  ASSERT_TRUE(client_.compact(last).ok());
  RangeResult r;
  const Status s = client_.range("k", "", r, first);
  EXPECT_EQ(s.code, Code::kCompacted) << describe(s);
  EXPECT_NE(s.message.find("compacted"), std::string::npos) << s.message;
  // And compacting the same revision again is an error of its own.
  EXPECT_EQ(client_.compact(last).code, Code::kCompacted);
}

TEST_F(EtcdClientTest, TxnOnModRevisionTakesEitherBranch) {
  const std::int64_t rev = put("cfg", "v1");
  const std::vector<Compare> unchanged = {{"cfg", Compare::Target::kMod, Compare::Result::kEqual, rev, ""}};

  TxnResult t;
  Status s = client_.txn(unchanged, {{Op::Kind::kPut, "cfg", "v2", "", 0}, {Op::Kind::kRange, "cfg", "", "", 0}},
                         {{Op::Kind::kRange, "cfg", "", "", 0}}, t);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_TRUE(t.succeeded);
  EXPECT_EQ(t.revision, rev + 1);
  ASSERT_EQ(t.ranges.size(), 2u);
  EXPECT_TRUE(t.ranges[0].kvs.empty());  // the put
  ASSERT_EQ(t.ranges[1].kvs.size(), 1u);
  EXPECT_EQ(t.ranges[1].kvs[0].value, "v2");  // a range after a put in the same txn reads it

  // The same comparison again: cfg changed since, so the failure branch runs.
  s = client_.txn(unchanged, {{Op::Kind::kPut, "cfg", "v3", "", 0}},
                  {{Op::Kind::kRange, "cfg", "", "", 0}, {Op::Kind::kDeleteRange, "cfg", "", "", 0}}, t);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_FALSE(t.succeeded);
  EXPECT_EQ(t.revision, rev + 2);
  ASSERT_EQ(t.ranges.size(), 2u);
  ASSERT_EQ(t.ranges[0].kvs.size(), 1u);
  EXPECT_EQ(t.ranges[0].kvs[0].value, "v2");
  EXPECT_EQ(t.ranges[0].kvs[0].mod_revision, rev + 1);
  EXPECT_TRUE(get("cfg").kvs.empty());

  // Create-if-absent (create revision 0) and a value comparison.
  s = client_.txn({{"cfg", Compare::Target::kCreate, Compare::Result::kEqual, 0, ""}}, {{Op::Kind::kPut, "cfg", "fresh", "", 0}}, {}, t);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_TRUE(t.succeeded);
  EXPECT_TRUE(t.ranges.at(0).kvs.empty());
  s = client_.txn({{"cfg", Compare::Target::kValue, Compare::Result::kNotEqual, 0, "fresh"}}, {}, {{Op::Kind::kRange, "cfg", "", "", 0}},
                  t);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_FALSE(t.succeeded);
  EXPECT_EQ(t.ranges.at(0).kvs.at(0).value, "fresh");
}

TEST_F(EtcdClientTest, AKeyOnALeaseGoesWithIt) {
  std::int64_t lease = 0;
  Status s = client_.leaseGrant(30, lease);
  ASSERT_TRUE(s.ok()) << describe(s);
  ASSERT_NE(lease, 0);
  put("owned", "x", lease);
  RangeResult r = get("owned");
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].lease, lease);

  std::int64_t ttl = 0;
  s = client_.leaseKeepAlive(lease, ttl);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 30);

  ASSERT_TRUE(client_.leaseRevoke(lease).ok());
  EXPECT_TRUE(get("owned").kvs.empty());
  s = client_.leaseKeepAlive(lease, ttl);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_LE(ttl, 0);

  s = client_.leaseRevoke(lease);
  EXPECT_EQ(s.code, Code::kError);
  EXPECT_NE(s.message.find("lease not found"), std::string::npos) << s.message;
  std::int64_t rev = 0;
  s = client_.put("k", "v", lease, rev);  // a put on a lease that is gone
  EXPECT_EQ(s.code, Code::kError);
}

TEST_F(EtcdClientTest, AnEtcdErrorIsAnErrorThatSaysWhy) {
  std::int64_t rev = 0;
  const Status s = client_.put("", "v", 0, rev);
  EXPECT_EQ(s.code, Code::kError);
  EXPECT_NE(s.message.find("key is not provided"), std::string::npos) << s.message;
  EXPECT_TRUE(client_.put("k", "v", 0, rev).ok());  // and the connection goes on
}

TEST_F(EtcdClientTest, WatchDeliversPutsAndDeletesInOrder) {
  const std::int64_t start = get("w/").revision + 1;
  Watch w(options(), "w/", prefixEnd("w/"), start);
  const std::int64_t a = put("w/a", "1");
  put("x", "outside the prefix");
  const std::int64_t b = put("w/b", "2");
  TxnResult t;
  ASSERT_TRUE(client_.txn({}, {{Op::Kind::kDeleteRange, "w/a", "", "", 0}}, {}, t).ok());
  const std::int64_t b2 = put("w/b", "3");

  std::int64_t revision = 0;
  const auto events = collect(w, 4, revision);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].type, Watch::Event::Type::kPut);
  EXPECT_EQ(events[0].kv.key, "w/a");
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[0].kv.mod_revision, a);
  EXPECT_EQ(events[1].kv.key, "w/b");
  EXPECT_EQ(events[1].kv.mod_revision, b);
  EXPECT_EQ(events[1].kv.create_revision, b);
  EXPECT_EQ(events[2].type, Watch::Event::Type::kDelete);
  EXPECT_EQ(events[2].kv.key, "w/a");
  EXPECT_EQ(events[2].kv.value, "");
  EXPECT_EQ(events[2].kv.mod_revision, t.revision);
  EXPECT_EQ(events[3].type, Watch::Event::Type::kPut);
  EXPECT_EQ(events[3].kv.value, "3");
  EXPECT_EQ(events[3].kv.version, 2);
  EXPECT_EQ(revision, b2);

  // Watching from an earlier revision replays the history.
  Watch replay(options(), "w/a", "", start);
  std::int64_t replay_revision = 0;
  const auto again = collect(replay, 2, replay_revision);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[1].type, Watch::Event::Type::kDelete);
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionIsCompacted) {
  const std::int64_t first = put("k", "1");
  put("k", "2");
  const std::int64_t last = put("k", "3");
  ASSERT_TRUE(client_.compact(last).ok());
  Watch w(options(), "k", "", first);
  std::vector<Watch::Event> events;
  std::int64_t revision = 0;
  Status s = w.next(events, revision, 5s);
  EXPECT_EQ(s.code, Code::kCompacted) << describe(s);
  EXPECT_EQ(s.compact_revision, last);
  EXPECT_TRUE(events.empty());
  s = w.next(events, revision, 5s);  // finished
  EXPECT_EQ(s.code, Code::kCompacted);
}

TEST_F(EtcdClientTest, WatchNextReturnsNothingWhenItsWaitPasses) {
  const std::int64_t now = put("other", "x");
  Watch w(options(), "k", "", 0);
  std::vector<Watch::Event> events;
  std::int64_t revision = -1;
  auto t0 = Clock::now();
  Status s = w.next(events, revision, 200ms);
  EXPECT_TRUE(s.ok()) << describe(s);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(revision, now);  // from now: the watcher is at the store's revision
  EXPECT_GE(msSince(t0), 190);
  EXPECT_LT(msSince(t0), 1500);
  s = w.next(events, revision, 0ms);
  EXPECT_TRUE(s.ok()) << describe(s);
  EXPECT_TRUE(events.empty());

  // The stream is still there.
  const std::int64_t rev = put("k", "v");
  s = w.next(events, revision, 5s);
  ASSERT_TRUE(s.ok()) << describe(s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.value, "v");
  EXPECT_EQ(revision, rev);
}

TEST_F(EtcdClientTest, CancelUnblocksAWaitingNext) {
  Watch w(options(), "k", "", 0);
  Status s;
  Clock::time_point returned;
  std::thread waiter([&] {
    std::vector<Watch::Event> events;
    std::int64_t revision = 0;
    s = w.next(events, revision, 10s);
    returned = Clock::now();
  });
  std::this_thread::sleep_for(200ms);  // let next() block
  const auto cancelled = Clock::now();
  w.cancel();
  waiter.join();
  EXPECT_EQ(s.code, Code::kUnavailable) << describe(s);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(returned - cancelled).count(), 500);
  std::vector<Watch::Event> events;
  std::int64_t revision = 0;
  EXPECT_EQ(w.next(events, revision, 1s).code, Code::kUnavailable);
}

TEST_F(EtcdClientTest, CancelBeforeNext) {
  Watch w(options(), "k", "", 0);
  w.cancel();
  put("k", "v");
  std::vector<Watch::Event> events;
  std::int64_t revision = 0;
  const auto t0 = Clock::now();
  EXPECT_EQ(w.next(events, revision, 5s).code, Code::kUnavailable);
  EXPECT_LT(msSince(t0), 500);
}

TEST(EtcdUnavailable, NothingListeningIsUnavailableAtOnce) {
  const std::uint16_t dead = deadPort();
  Client c(optionsFor({dead}));
  const auto t0 = Clock::now();
  std::int64_t rev = 0;
  const Status s = c.put("k", "v", 0, rev);
  EXPECT_LT(msSince(t0), 1000);
  EXPECT_EQ(s.code, Code::kUnavailable);
  EXPECT_NE(s.message.find("127.0.0.1:" + std::to_string(dead)), std::string::npos) << s.message;
  EXPECT_NE(s.message.find("refused"), std::string::npos) << s.message;

  Watch w(optionsFor({dead}), "k", "", 0);
  std::vector<Watch::Event> events;
  EXPECT_EQ(w.next(events, rev, 1s).code, Code::kUnavailable);
}

TEST(EtcdUnavailable, NoEndpointsIsAnError) {
  RangeResult r;
  EXPECT_EQ(Client(Options{}).range("k", "", r).code, Code::kError);
}

TEST(EtcdUnavailable, ASilentEndpointTimesOut) {
  // Listening (the kernel completes the handshake) but never answering.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  Client c(optionsFor({silent.local_endpoint().port()}, 300ms));
  const auto t0 = Clock::now();
  RangeResult r;
  const Status s = c.range("k", "", r);
  const auto took = msSince(t0);
  EXPECT_EQ(s.code, Code::kUnavailable) << describe(s);
  EXPECT_NE(s.message.find("timed out"), std::string::npos) << s.message;
  EXPECT_GE(took, 280);
  EXPECT_LT(took, 1000);

  const auto t1 = Clock::now();
  Watch w(optionsFor({silent.local_endpoint().port()}, 300ms), "k", "", 0);
  EXPECT_LT(msSince(t1), 1000);
  std::vector<Watch::Event> events;
  std::int64_t revision = 0;
  EXPECT_EQ(w.next(events, revision, 1s).code, Code::kUnavailable);
}

TEST_F(EtcdClientTest, FailsOverToAnEndpointThatAnswers) {
  const std::uint16_t dead = deadPort();
  Client c(optionsFor({dead, etcd_.clientPort()}));
  std::int64_t rev = 0;
  Status s = c.put("k", "v", 0, rev);
  ASSERT_TRUE(s.ok()) << describe(s);
  RangeResult r;
  s = c.range("k", "", r);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_EQ(r.kvs.at(0).value, "v");

  Watch w(optionsFor({dead, etcd_.clientPort()}), "k", "", 0);
  put("k", "w");
  std::int64_t revision = 0;
  const auto events = collect(w, 1, revision);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.value, "w");
}

TEST_F(EtcdClientTest, WatchIsUnavailableWhenEtcdStops) {
  Watch w(options(), "k", "", 0);
  std::vector<Watch::Event> events;
  std::int64_t revision = 0;
  ASSERT_TRUE(w.next(events, revision, 50ms).ok());
  etcd_.stop();
  const auto t0 = Clock::now();
  const Status s = w.next(events, revision, 10s);
  EXPECT_EQ(s.code, Code::kUnavailable) << describe(s);
  EXPECT_LT(msSince(t0), 3000);
  EXPECT_TRUE(events.empty());
}

TEST_F(EtcdClientTest, ClientReconnectsAfterEtcdRestarts) {
  put("k", "1");
  etcd_.stop();
  std::int64_t rev = 0;
  Status s = client_.put("k", "2", 0, rev);
  EXPECT_EQ(s.code, Code::kUnavailable) << describe(s);
  etcd_.start();
  s = client_.put("k", "3", 0, rev);
  ASSERT_TRUE(s.ok()) << describe(s);

  // A kept-alive connection that etcd's restart closed: a fresh one, transparently.
  etcd_.stop();
  etcd_.start();
  RangeResult r;
  s = client_.range("k", "", r);
  ASSERT_TRUE(s.ok()) << describe(s);
  EXPECT_EQ(r.kvs.at(0).value, "3");
}

TEST_F(EtcdClientTest, AuthenticatesWithUserAndPassword) {
  ASSERT_EQ(etcd_.post("/v3/auth/user/add", R"({"name":"root","password":"secret"})").first, 200);
  ASSERT_EQ(etcd_.post("/v3/auth/role/add", R"({"name":"root"})").first, 200);
  ASSERT_EQ(etcd_.post("/v3/auth/user/grant", R"({"user":"root","role":"root"})").first, 200);
  const auto enabled = etcd_.post("/v3/auth/enable", "{}");
  ASSERT_EQ(enabled.first, 200) << enabled.second;

  Options root = options();
  root.username = "root";
  root.password = "secret";
  Client authed(root);
  std::int64_t rev = 0;
  Status s = authed.put("k", "v", 0, rev);
  ASSERT_TRUE(s.ok()) << describe(s);
  RangeResult r;
  ASSERT_TRUE(authed.range("k", "", r).ok());
  EXPECT_EQ(r.kvs.at(0).value, "v");

  Client anonymous(options());
  s = anonymous.put("k", "x", 0, rev);
  EXPECT_EQ(s.code, Code::kError) << describe(s);
  EXPECT_NE(s.message.find("user name is empty"), std::string::npos) << s.message;

  Options wrong = root;
  wrong.password = "guess";
  s = Client(wrong).range("k", "", r);
  EXPECT_EQ(s.code, Code::kError) << describe(s);
  EXPECT_NE(s.message.find("authentication failed"), std::string::npos) << s.message;

  Watch watched(root, "k", "", 0);
  Watch unwatched(options(), "k", "", 0);
  ASSERT_TRUE(authed.put("k", "w", 0, rev).ok());
  std::int64_t revision = 0;
  const auto events = collect(watched, 1, revision);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.value, "w");
  std::vector<Watch::Event> none;
  s = unwatched.next(none, revision, 1s);
  EXPECT_EQ(s.code, Code::kError) << describe(s);

  // etcd's simple tokens die with the process: the client authenticates again by itself.
  etcd_.stop();
  etcd_.start();
  s = authed.put("k", "after restart", 0, rev);
  ASSERT_TRUE(s.ok()) << describe(s);
}

TEST(EtcdTls, HttpsVerifiedAgainstTheCa) {
  test::TempDir dir;
  const auto ca = test::makeCa(dir.path(), "etcd-ca");
  const auto other_ca = test::makeCa(dir.path(), "other-ca");
  const auto cert = test::makeCert(ca, dir.path(), "etcd");  // DNS:localhost, IP:127.0.0.1
  test::EtcdProcess::Options eo;
  eo.cert_file = cert.cert_file;
  eo.key_file = cert.key_file;
  test::EtcdProcess etcd(eo);

  Options o = optionsFor({etcd.clientPort()});
  o.tls.emplace();
  o.tls->ca_file = ca.cert_file;
  Client c(o);
  std::int64_t rev = 0;
  Status s = c.put("k", "secure", 0, rev);
  ASSERT_TRUE(s.ok()) << describe(s);
  Watch w(o, "k", "", rev);
  std::int64_t revision = 0;
  const auto events = collect(w, 1, revision);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kv.value, "secure");

  Options by_name = o;  // the certificate also names localhost
  by_name.tls->server_name = "localhost";
  RangeResult r;
  s = Client(by_name).range("k", "", r);
  EXPECT_TRUE(s.ok()) << describe(s);

  Options untrusted = o;
  untrusted.tls->ca_file = other_ca.cert_file;
  s = Client(untrusted).range("k", "", r);
  EXPECT_EQ(s.code, Code::kUnavailable) << describe(s);
  EXPECT_NE(s.message.find("certificate verify failed"), std::string::npos) << s.message;

  Options wrong_name = o;
  wrong_name.tls->server_name = "etcd.example.com";
  s = Client(wrong_name).range("k", "", r);
  EXPECT_EQ(s.code, Code::kUnavailable) << describe(s);

  Options unverified = untrusted;
  unverified.tls->verify = false;
  s = Client(unverified).range("k", "", r);
  EXPECT_TRUE(s.ok()) << describe(s);

  Options missing = o;
  missing.tls->ca_file = dir.path() + "/nope.crt";
  s = Client(missing).range("k", "", r);
  EXPECT_EQ(s.code, Code::kError) << describe(s);
  EXPECT_NE(s.message.find("nope.crt"), std::string::npos) << s.message;
}

}  // namespace
}  // namespace fledge::admin::etcd
