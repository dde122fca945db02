// `fledge ctl` end to end: the real binary as a subprocess against a real Fledge and echo
// upstreams, its exit codes and messages, and what its commands change (read back through the
// admin API and through proxied traffic).
#include <gtest/gtest.h>

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fcntl.h>
#include <mutex>
#include <poll.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "tests/integration/admin_stack.hpp"

extern char** environ;

namespace fledge::test {
namespace {

using namespace std::chrono_literals;

// `fledge ctl ARGS...` as a child process with its own environment (FLEDGE_ADMIN_* from `env`
// only), stdout and stderr collected separately.
class CtlProcess {
 public:
  CtlProcess(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env) {
    std::vector<std::string> argv{fledgeBinary(), "ctl"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> envp;
    for (char** e = environ; *e; ++e)
      if (std::string_view(*e).rfind("FLEDGE_ADMIN_", 0) != 0) envp.emplace_back(*e);
    for (const auto& [k, v] : env) envp.push_back(k + "=" + v);
    // Everything execve needs is built before fork: the child only calls async-signal-safe functions.
    std::vector<char*> cargv, cenvp;
    for (auto& a : argv) cargv.push_back(a.data());
    for (auto& e : envp) cenvp.push_back(e.data());
    cargv.push_back(nullptr);
    cenvp.push_back(nullptr);
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      int devnull = open("/dev/null", O_RDONLY);
      dup2(devnull, STDIN_FILENO);
      execve(cargv[0], cargv.data(), cenvp.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    readers_[0] = std::thread([this, fd = out[0]] { collect(fd, out_); });
    readers_[1] = std::thread([this, fd = err[0]] { collect(fd, err_); });
  }
  ~CtlProcess() {
    if (code_ == kRunning) {
      ::kill(pid_, SIGKILL);
      wait(5s);
    }
    for (auto& r : readers_)
      if (r.joinable()) r.join();
  }
  CtlProcess(const CtlProcess&) = delete;
  CtlProcess& operator=(const CtlProcess&) = delete;

  // The exit code; -1 if it was still running after `limit` (it is then killed).
  int wait(std::chrono::milliseconds limit = 15s) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (code_ == kRunning) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() >= end) {
        ::kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        code_ = kKilled;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    for (auto& r : readers_)
      if (r.joinable()) r.join();  // the pipes reach EOF once the child is gone
    return code_ == kKilled ? -1 : code_;
  }
  // Waits until stdout contains `needle`.
  bool waitForOut(const std::string& needle, std::chrono::milliseconds limit = 10s) const {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (out().find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  void signal(int sig) { ::kill(pid_, sig); }
  std::string out() const {
    std::lock_guard lock(mu_);
    return out_;
  }
  std::string err() const {
    std::lock_guard lock(mu_);
    return err_;
  }

 private:
  static constexpr int kRunning = -1000, kKilled = -1001;
  void collect(int fd, std::string& into) {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      std::lock_guard lock(mu_);
      into.append(buf, std::size_t(n));
    }
    close(fd);
  }
  pid_t pid_ = -1;
  int code_ = kRunning;
  std::thread readers_[2];
  mutable std::mutex mu_;
  std::string out_, err_;
};

struct CtlResult {
  int code;
  std::string out, err;
};

// A Fledge with the admin API on a fresh store, a split route "shop" (canary 0 / stable 100) and
// a flag "f"; traffic on demand, as in rollout_test.cpp.
struct CtlStack {
  EchoUpstream stable;
  EchoUpstream canary;
  std::string data_dir = tempDir();
  std::unique_ptr<Fledge> f;
  std::unique_ptr<BackgroundTraffic> traffic;

  explicit CtlStack(std::vector<std::string> canary_args = {}, const std::string& admin_extra = "")
      : stable("stable"), canary("canary", canary_args) {
    f = std::make_unique<Fledge>(config(
        R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
        R"([{"name":"shop","match":{"path_prefix":"/"},
             "split":{"arms":[{"name":"canary","cluster":"v2","weight":0},{"name":"stable","cluster":"v1","weight":100}]}}])",
        R"("admin":{"listen":"127.0.0.1:0","data_dir":")" + data_dir + "\"" + admin_extra + R"(},
           "flags":{"flags":{"f":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}}})"));
  }
  ~CtlStack() {
    traffic.reset();  // before Fledge goes
    f.reset();
    std::filesystem::remove_all(data_dir);
  }
  void startTraffic() { traffic = std::make_unique<BackgroundTraffic>(f->port()); }

  std::uint16_t admin() const { return f->adminPort(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(admin()); }
  std::string get(const std::string& path) { return call(admin(), http::verb::get, path).body(); }

  CtlResult ctl(const std::vector<std::string>& args, std::vector<std::pair<std::string, std::string>> env = {},
                std::chrono::milliseconds limit = 15s) {
    env.emplace_back("FLEDGE_ADMIN_URL", url());
    CtlProcess p(args, env);
    const int code = p.wait(limit);
    return {code, p.out(), p.err()};
  }
};

CtlResult ctlWith(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& env = {}) {
  CtlProcess p(args, env);
  const int code = p.wait();
  return {code, p.out(), p.err()};
}

// The weight of `arm` in a route's JSON (-1 if absent).
double armWeight(const std::string& route_json, const std::string& arm) {
  simdjson::dom::parser p;
  simdjson::dom::element root;
  simdjson::dom::array arms;
  if (p.parse(route_json).get(root) || root["split"]["arms"].get_array().get(arms)) return -1;
  for (auto a : arms) {
    std::string_view name;
    double w;
    if (!a["name"].get_string().get(name) && name == arm && !a["weight"].get_double().get(w)) return w;
    std::int64_t i;
    if (name == arm && !a["weight"].get_int64().get(i)) return double(i);
  }
  return -1;
}

bool isJson(const std::string& text) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return !p.parse(text).get(e);
}

std::string stemOf(const std::string& path) { return std::filesystem::path(path).stem().string(); }

TEST(Ctl, StatusShowsRoutesWeightsFlagsAndRollouts) {
  CtlStack s;
  auto r = s.ctl({"status"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want : {"config version 1", "shop", "canary 0% (v2), stable 100% (v1)", "1 (1 enabled, 0 disabled)", "rollouts  none"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  // -o json: one document holding the config and the rollouts.
  auto j = s.ctl({"status", "-o", "json"});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_TRUE(isJson(j.out)) << j.out;
  EXPECT_EQ(echoField(j.out, "rollouts"), "[]");
  EXPECT_NE(j.out.find(R"("version":1)"), std::string::npos) << j.out;
}

TEST(Ctl, SplitChangesTheRouteAndTheTraffic) {
  CtlStack s;
  auto r = s.ctl({"split", "shop", "canary=100"});  // one arm of two: the other gets the rest
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("canary 100% (v2), stable 0% (v1)"), std::string::npos) << r.out;
  const std::string route = s.get("/api/v1/routes/shop");
  EXPECT_EQ(armWeight(route, "canary"), 100) << route;
  EXPECT_EQ(armWeight(route, "stable"), 0) << route;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(echoField(get(s.f->port(), "/").body(), "name"), "canary");

  auto d = s.ctl({"--output=json", "split", "shop", "canary=12.5", "stable=87.5"});
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_TRUE(isJson(d.out)) << d.out;
  EXPECT_NE(d.out.find(R"("weight":12.5})"), std::string::npos) << d.out;  // written as given, not 1.25E1
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "stable"), 87.5);

  // Refused locally (exit 2) or by the API (exit 1, its message and field); nothing changes.
  const std::string before = s.get("/api/v1/config");
  EXPECT_EQ(s.ctl({"split", "shop", "canary=abc"}).code, 2);
  EXPECT_EQ(s.ctl({"split", "shop", "canary=101"}).code, 2);
  EXPECT_EQ(s.ctl({"split", "shop"}).code, 2);
  auto bad = s.ctl({"split", "shop", "ghost=5", "stable=95"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("fledge ctl: PUT /api/v1/routes/shop/split: 400 unknown arm \"ghost\" (field routes.shop.split.arms[0].name)"),
            std::string::npos)
      << bad.err;
  EXPECT_EQ(s.get("/api/v1/config"), before);
}

TEST(Ctl, FlagStateAndDefaultVariant) {
  CtlStack s;
  auto off = s.ctl({"flag", "f", "off"});
  ASSERT_EQ(off.code, 0) << off.err;
  EXPECT_NE(off.out.find("flag f: DISABLED [version 2]"), std::string::npos) << off.out;
  EXPECT_EQ(echoField(s.get("/api/v1/flags/f"), "state"), "DISABLED");
  ASSERT_EQ(s.ctl({"flag", "f", "default", "off"}).code, 0);
  EXPECT_EQ(echoField(s.get("/api/v1/flags/f"), "defaultVariant"), "off");
  auto show = s.ctl({"flag", "f"});
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_NE(show.out.find("DISABLED"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("on = true, off = false"), std::string::npos) << show.out;
  auto j = s.ctl({"-o", "json", "flag", "f"});
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_TRUE(isJson(j.out)) << j.out;
  EXPECT_EQ(echoField(j.out, "state"), "DISABLED");
  ASSERT_EQ(s.ctl({"flag", "f", "on"}).code, 0);
  EXPECT_EQ(echoField(s.get("/api/v1/flags/f"), "state"), "ENABLED");

  auto missing = s.ctl({"flag", "nope", "off"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("PUT /api/v1/flags/nope/state: 404 no flag \"nope\""), std::string::npos) << missing.err;
  EXPECT_EQ(s.ctl({"flag", "f", "maybe"}).code, 2);
}

TEST(Ctl, RolloutWaitSucceedsForAHealthyCanary) {
  CtlStack s;
  s.startTraffic();
  // The name comes from the file's "name" member, which is not sent. Latency checks off: two
  // echo upstreams on a loaded 2-core machine differ by more than noise now and then, and what
  // is tested here is ctl, not the analysis (rollout_test.cpp covers that).
  const std::string file = writeTempFile(R"({"name":"healthy","route":"shop","canary_arm":"canary","baseline_arm":"stable",
    "steps":[{"weight":20,"hold_s":1},{"weight":50,"hold_s":1},{"weight":100,"hold_s":0}],"analysis":{"latency":{"quantiles":[]}}})");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = s.ctl({"rollout", "start", file, "--wait"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 12s);
  // Without a terminal: one line per change of phase or step.
  for (const char* want : {"rollout healthy started: route shop, arm canary against stable", "healthy: progressing, step 1/3, canary 20%",
                           "healthy: succeeded"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  const std::string route = s.get("/api/v1/routes/shop");
  EXPECT_EQ(armWeight(route, "canary"), 0) << route;
  EXPECT_EQ(armWeight(route, "stable"), 100) << route;
  EXPECT_EQ(echoField(s.get("/api/v1/rollouts/healthy"), "name"), "healthy");

  auto list = s.ctl({"rollout", "list"});
  ASSERT_EQ(list.code, 0) << list.err;
  EXPECT_NE(list.out.find("healthy"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("succeeded"), std::string::npos) << list.out;
  auto status = s.ctl({"rollout", "status", "healthy"});
  ASSERT_EQ(status.code, 0) << status.err;
  for (const char* want : {"phase    succeeded", "[####################]", "canary 0%  baseline 100%", "req/s", "checks"})
    EXPECT_NE(status.out.find(want), std::string::npos) << want << "\n" << status.out;
  std::filesystem::remove(file);
}

TEST(Ctl, RolloutWaitExitsThreeWhenTheCanaryIsRolledBack) {
  CtlStack s({"--fail-rate", "1"});
  s.startTraffic();
  // No --name and no "name" member: the rollout is named after the file.
  const std::string file = writeTempFile(R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable",
    "steps":[{"weight":10,"hold_s":60},{"weight":100,"hold_s":0}]})");
  const std::string name = stemOf(file);
  auto r = s.ctl({"rollout", "start", file, "--wait", "-o", "json"});
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_NE(r.err.find("fledge ctl: rollout " + name + " rolled_back: errors"), std::string::npos) << r.err;
  EXPECT_TRUE(isJson(r.out)) << r.out;  // -o json --wait: the final view only
  EXPECT_NE(r.out.find(R"("phase":"rolled_back")"), std::string::npos) << r.out;
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "canary"), 0);
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "stable"), 100);
  std::filesystem::remove(file);
}

TEST(Ctl, RolloutControlsWaitLimitAndWatch) {
  CtlStack s;
  const std::string file = writeTempFile(R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable",
    "steps":[{"weight":5,"hold_s":600},{"weight":100,"hold_s":600}]})");
  auto start = s.ctl({"rollout", "start", file, "--name", "r3", "--wait", "--timeout-wait", "1"});
  EXPECT_EQ(start.code, 4) << start.out << start.err;
  EXPECT_NE(start.err.find("rollout r3 still progressing after 1 s (--timeout-wait)"), std::string::npos) << start.err;
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "canary"), 5);

  // A manual split change while the rollout progresses: the API's 409, word for word.
  auto refused = s.ctl({"split", "shop", "canary=50"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("fledge ctl: PUT /api/v1/routes/shop/split: 409 route \"shop\" is under rollout \"r3\"; pause or abort it "
                             "before changing the route (field routes.shop)"),
            std::string::npos)
      << refused.err;
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "canary"), 5);

  auto pause = s.ctl({"rollout", "pause", "r3"});
  ASSERT_EQ(pause.code, 0) << pause.err;
  EXPECT_NE(pause.out.find("r3: paused, step 1/2, canary 5%"), std::string::npos) << pause.out;
  EXPECT_NE(s.get("/api/v1/rollouts/r3").find(R"("phase":"paused")"), std::string::npos);
  EXPECT_EQ(s.ctl({"rollout", "pause", "r3"}).code, 1);  // already paused: the API's 409
  ASSERT_EQ(s.ctl({"rollout", "resume", "r3"}).code, 0);
  auto promote = s.ctl({"rollout", "promote", "r3"});
  ASSERT_EQ(promote.code, 0) << promote.err;
  EXPECT_NE(promote.out.find("r3: progressing, step 2/2, canary 100%"), std::string::npos) << promote.out;
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "canary"), 100);

  // --watch without a terminal: one line per poll; ends on Ctrl-C with exit 0.
  {
    CtlProcess watch({"rollout", "status", "r3", "--watch"}, {{"FLEDGE_ADMIN_URL", s.url()}});
    ASSERT_TRUE(watch.waitForOut("r3 progressing step 2/2 canary 100% baseline 0%")) << watch.out() << watch.err();
    watch.signal(SIGINT);
    EXPECT_EQ(watch.wait(5s), 0) << watch.err();
  }
  auto abort = s.ctl({"rollout", "abort", "r3"});
  ASSERT_EQ(abort.code, 0) << abort.err;
  EXPECT_NE(abort.out.find("r3: aborted"), std::string::npos) << abort.out;
  EXPECT_EQ(armWeight(s.get("/api/v1/routes/shop"), "canary"), 0);
  // Watching a finished rollout: one line, and the exit code of its outcome.
  auto watched = s.ctl({"rollout", "status", "r3", "--watch"});
  EXPECT_EQ(watched.code, 3) << watched.out << watched.err;
  EXPECT_NE(watched.out.find("r3 aborted step 2/2 canary 0% baseline 100%"), std::string::npos) << watched.out;

  auto del = s.ctl({"rollout", "delete", "r3"});
  ASSERT_EQ(del.code, 0) << del.err;
  EXPECT_EQ(call(s.admin(), http::verb::get, "/api/v1/rollouts/r3").result_int(), 404);
  auto gone = s.ctl({"rollout", "status", "r3"});
  EXPECT_EQ(gone.code, 1);
  EXPECT_NE(gone.err.find("GET /api/v1/rollouts/r3: 404 no rollout \"r3\""), std::string::npos) << gone.err;
  std::filesystem::remove(file);
}

TEST(Ctl, WatchFollowsARolloutToItsEnd) {
  CtlStack s;
  s.startTraffic();
  auto put = call(s.admin(), http::verb::put, "/api/v1/rollouts/w1", R"({"route":"shop","canary_arm":"canary","baseline_arm":"stable",
                   "steps":[{"weight":50,"hold_s":2},{"weight":100,"hold_s":0}],"analysis":{"latency":{"quantiles":[]}}})");
  ASSERT_EQ(put.result_int(), 200) << put.body();
  auto r = s.ctl({"rollout", "status", "w1", "--watch"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_GE(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
  EXPECT_NE(r.out.find("w1 progressing step 1/2 canary 50% baseline 50%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("req/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("w1 succeeded"), std::string::npos) << r.out;
}

TEST(Ctl, FlagRolloutsShowTheirVariantsAndAbortRestoresTheFlag) {
  CtlStack s;
  const std::string before = s.get("/api/v1/flags/f");
  const std::string file =
      writeTempFile(R"({"flag":"f","variant":"off","steps":[{"weight":10,"hold_s":600},{"weight":100,"hold_s":600}]})");
  auto start = s.ctl({"rollout", "start", file, "--name", "fr"});
  ASSERT_EQ(start.code, 0) << start.err;
  EXPECT_NE(start.out.find("rollout fr started: flag f, variant off against on"), std::string::npos) << start.out;
  auto status = s.ctl({"rollout", "status", "fr"});
  ASSERT_EQ(status.code, 0) << status.err;
  EXPECT_NE(status.out.find("step     1/2  [##########----------]  canary 10%  baseline 90%"), std::string::npos) << status.out;
  auto all = s.ctl({"status"});
  EXPECT_NE(all.out.find("fr  flag f, variant off against on  progressing  step 1/2  canary 10%"), std::string::npos) << all.out;
  EXPECT_NE(s.get("/api/v1/flags/f"), before);  // the variant is being raised through the flag's targeting
  auto abort = s.ctl({"rollout", "abort", "fr"});
  ASSERT_EQ(abort.code, 0) << abort.err;
  EXPECT_NE(abort.out.find("fr: aborted, step 1/2, canary 0%"), std::string::npos) << abort.out;
  EXPECT_EQ(s.get("/api/v1/flags/f"), before);
  std::filesystem::remove(file);
}

TEST(Ctl, FailuresNameWhatFailed) {
  // Nobody listening: exit 1, the address named.
  const std::string dead = deadAddress();
  auto down = ctlWith({"status"}, {{"FLEDGE_ADMIN_URL", "http://" + dead}});
  EXPECT_EQ(down.code, 1);
  EXPECT_NE(down.err.find("fledge ctl: cannot connect to " + dead + ": Connection refused"), std::string::npos) << down.err;
  auto flag_url = ctlWith({"--url", dead, "status"});
  EXPECT_EQ(flag_url.code, 1);
  EXPECT_NE(flag_url.err.find(dead), std::string::npos) << flag_url.err;

  // Usage: exit 2.
  auto unknown = ctlWith({"frobnicate"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("unknown command \"frobnicate\""), std::string::npos) << unknown.err;
  EXPECT_NE(unknown.err.find("usage: fledge ctl"), std::string::npos) << unknown.err;
  EXPECT_EQ(ctlWith({}).code, 2);
  EXPECT_EQ(ctlWith({"rollout", "list", "--wait"}).code, 2);
  EXPECT_EQ(ctlWith({"status"}, {{"FLEDGE_ADMIN_URL", "https://127.0.0.1:1"}}).code, 2);
  auto help = ctlWith({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("rollout start FILE.json"), std::string::npos) << help.out;

  // Files: exit 1 before any request.
  auto missing = ctlWith({"rollout", "start", "/nonexistent/rollout.json"}, {{"FLEDGE_ADMIN_URL", "http://" + dead}});
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("fledge ctl: /nonexistent/rollout.json: cannot read: No such file or directory"), std::string::npos)
      << missing.err;
  const std::string bad = writeTempFile("{\"route\": \"shop\",\n  \"steps\": [1,,2]}");
  auto bad_json = ctlWith({"rollout", "start", bad}, {{"FLEDGE_ADMIN_URL", "http://" + dead}});
  EXPECT_EQ(bad_json.code, 1);
  EXPECT_NE(bad_json.err.find(bad + ": not valid JSON: line 2, column"), std::string::npos) << bad_json.err;
  std::filesystem::remove(bad);
}

TEST(Ctl, TokensAreSentAndRolesEnforced) {
  const std::string tokens = writeTempFile("ops:write:w-secret\nviewer:read:r-secret\n", ".txt");
  CtlStack s({}, R"(,"tokens_file":")" + tokens + "\"");
  auto none = s.ctl({"status"});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("GET /api/v1/config: 401 missing or unknown token (set FLEDGE_ADMIN_TOKEN or --token)"), std::string::npos)
      << none.err;
  EXPECT_EQ(s.ctl({"status"}, {{"FLEDGE_ADMIN_TOKEN", "r-secret"}}).code, 0);
  auto read_only = s.ctl({"flag", "f", "off"}, {{"FLEDGE_ADMIN_TOKEN", "r-secret"}});
  EXPECT_EQ(read_only.code, 1);
  EXPECT_NE(read_only.err.find("fledge ctl: PUT /api/v1/flags/f/state: 403 token \"viewer\" may only read"), std::string::npos)
      << read_only.err;
  const auto read = [&] { return call(s.admin(), http::verb::get, "/api/v1/flags/f", "", {{"Authorization", "Bearer r-secret"}}).body(); };
  EXPECT_EQ(echoField(read(), "state"), "ENABLED");
  // --token overrides the environment.
  EXPECT_EQ(s.ctl({"--token", "w-secret", "flag", "f", "off"}, {{"FLEDGE_ADMIN_TOKEN", "r-secret"}}).code, 0);
  EXPECT_EQ(echoField(read(), "state"), "DISABLED");
  std::filesystem::remove(tokens);
}

}  // namespace
}  // namespace fledge::test
