// `cmake --install` of this build tree into a temporary DESTDIR: exactly the expected files, a
// binary and example configuration that work where they were installed, and a systemd unit that
// starts that binary on that configuration (checked by `systemd-analyze verify` where present).
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Result {
  int status = -1;  // exit status, or 128 + signal
  std::string out, err;
};

// Runs argv (looked up in PATH) with `env` added to this process's environment.
Result run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  Result r;
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    r.err = "pipe: " + std::string(std::strerror(errno));
    return r;
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    r.err = "fork: " + std::string(std::strerror(errno));
    return r;
  }
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open = 2;
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool hasLine(const std::vector<std::string>& ls, const std::string& line) {
  return std::find(ls.begin(), ls.end(), line) != ls.end();
}

// The value of the first `key=` line, or "" (with `found` false).
std::string value(const std::vector<std::string>& ls, const std::string& key, bool* found = nullptr) {
  for (const auto& l : ls)
    if (l.rfind(key + "=", 0) == 0) {
      if (found) *found = true;
      return l.substr(key.size() + 1);
    }
  if (found) *found = false;
  return "";
}

std::string findInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = std::string(path ? path : "") + ":/usr/bin:/bin:/usr/sbin:/sbin";
  std::istringstream in(dirs);
  for (std::string d; std::getline(in, d, ':');) {
    if (d.empty()) continue;
    fs::path p = fs::path(d) / name;
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

const std::string kBinary = FLEDGE_INSTALL_BINARY;
const std::string kConfigDir = FLEDGE_INSTALL_CONFIG_DIR;
const std::string kConfig = kConfigDir + "/fledge.json";
const std::string kFlags = kConfigDir + "/flags.json";
const std::string kUnit = FLEDGE_INSTALL_UNIT;
const std::string kReadme = FLEDGE_INSTALL_README;

class Install : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "fledge-install-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    destdir_ = tmpl;
    installed_ = install();
    ASSERT_EQ(installed_.status, 0) << installed_.out << installed_.err;
  }
  void TearDown() override {
    if (!destdir_.empty()) fs::remove_all(destdir_);
  }
  Result install() const { return run({FLEDGE_CMAKE_COMMAND, "--install", FLEDGE_BUILD_DIR}, {"DESTDIR=" + destdir_}); }
  // Where an installed absolute path is under DESTDIR.
  std::string staged(const std::string& path) const { return destdir_ + path; }

  std::string destdir_;
  Result installed_;
};

TEST_F(Install, InstallsTheBinaryConfigurationUnitAndReadmeOnly) {
  std::set<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(destdir_))
    if (!e.is_directory()) files.insert((fs::path("/") / fs::relative(e.path(), destdir_)).string());
  EXPECT_EQ(files, (std::set<std::string>{kBinary, kConfig, kFlags, kUnit, kReadme}));

  EXPECT_EQ(::access(staged(kBinary).c_str(), X_OK), 0) << kBinary << " is not executable";
  EXPECT_EQ(readFile(staged(kConfig)), readFile(FLEDGE_SOURCE_DIR "/configs/fledge.example.json"));
  EXPECT_EQ(readFile(staged(kFlags)), readFile(FLEDGE_SOURCE_DIR "/configs/flags.json"));
}

TEST_F(Install, InstalledBinaryPrintsItsVersion) {
  for (const char* flag : {"--version", "-V"}) {
    auto r = run({staged(kBinary), flag});
    EXPECT_EQ(r.status, 0) << flag << "\n" << r.err;
    EXPECT_EQ(r.out, "fledge " FLEDGE_VERSION "\n") << flag;
    EXPECT_EQ(r.err, "") << flag;
  }
  auto help = run({staged(kBinary), "--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("fledge --version, -V"), std::string::npos) << help.out;
  auto extra = run({staged(kBinary), "--version", "extra"});
  EXPECT_EQ(extra.status, 2);
  EXPECT_EQ(extra.out, "");
  EXPECT_NE(extra.err.find("usage:"), std::string::npos) << extra.err;
}

// The flag file is named relative to the configuration, so the pair works wherever installed.
TEST_F(Install, InstalledExampleConfigurationPassesCheckConfig) {
  auto r = run({staged(kBinary), "--check-config", staged(kConfig)});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, staged(kConfig) + ": ok\n") << r.err;
}

TEST_F(Install, UnitStartsTheInstalledBinaryOnTheInstalledConfiguration) {
  const std::string text = readFile(staged(kUnit));
  const auto unit = lines(text);
  EXPECT_EQ(text.find("@FLEDGE_"), std::string::npos) << "an unsubstituted placeholder:\n" << text;
  EXPECT_TRUE(hasLine(unit, "Type=notify"));
  EXPECT_TRUE(hasLine(unit, "ExecStart=" + kBinary + " --config " + kConfig)) << text;
  EXPECT_TRUE(hasLine(unit, "ExecReload=/bin/kill -HUP $MAINPID"));
  EXPECT_TRUE(hasLine(unit, "KillSignal=SIGTERM"));
  EXPECT_TRUE(hasLine(unit, "Restart=on-failure"));
  EXPECT_TRUE(hasLine(unit, "StateDirectory=fledge"));
  EXPECT_TRUE(hasLine(unit, "LogsDirectory=fledge"));
  EXPECT_EQ(hasLine(unit, "ConfigurationDirectory=fledge"), kConfigDir == "/etc/fledge");
  for (const char* line : {"DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
                           "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                           "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
                           "LimitNOFILE=1048576", "SystemCallFilter=@system-service"})
    EXPECT_TRUE(hasLine(unit, line)) << line;

  // Stopping waits for the drain: the example's drain_ms (10 s, also the default) must fit.
  const std::string config = readFile(staged(kConfig));
  EXPECT_NE(config.find("\"drain_ms\": 10000"), std::string::npos) << config;
  bool found = false;
  const std::string stop = value(unit, "TimeoutStopSec", &found);
  unsigned seconds = 0;
  auto [end, ec] = std::from_chars(stop.data(), stop.data() + stop.size(), seconds);
  ASSERT_TRUE(found && ec == std::errc() && end == stop.data() + stop.size()) << "TimeoutStopSec=" << stop;
  EXPECT_GT(seconds, 10u);

  // The example keeps its state and logs where the unit lets it write.
  EXPECT_NE(config.find("\"data_dir\": \"/var/lib/fledge/"), std::string::npos) << config;
  EXPECT_NE(config.find("\"path\": \"/var/log/fledge/"), std::string::npos) << config;
}

TEST_F(Install, SystemdAnalyzeVerifiesTheUnit) {
  const std::string analyze = findInPath("systemd-analyze");
  if (analyze.empty()) GTEST_SKIP() << "systemd-analyze not found (Debian package systemd): the unit's syntax is not verified";
  // verify also checks that ExecStart= is executable: point it at the staged binary.
  std::string text = readFile(staged(kUnit));
  const std::string exec = "ExecStart=" + kBinary + " ";
  auto at = text.find(exec);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, exec.size(), "ExecStart=" + staged(kBinary) + " ");
  fs::create_directories(destdir_ + "/verify");
  const std::string copy = destdir_ + "/verify/fledge.service";
  std::ofstream(copy) << text;
  auto r = run({analyze, "verify", "--man=no", copy});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  // Unknown keys and bad values are only warnings (exit 0): there must be none.
  EXPECT_EQ(r.out + r.err, "");
}

// The configuration is the administrator's once installed: installing again keeps an edited file
// and only puts back what is missing.
TEST_F(Install, ReinstallKeepsAnEditedConfiguration) {
  const std::string edited = readFile(staged(kConfig)) + "\n";
  std::ofstream(staged(kConfig), std::ios::trunc) << edited;
  fs::remove(staged(kFlags));
  auto again = install();
  ASSERT_EQ(again.status, 0) << again.out << again.err;
  EXPECT_EQ(readFile(staged(kConfig)), edited);
  EXPECT_NE(again.out.find("Kept: " + staged(kConfig)), std::string::npos) << again.out;
  EXPECT_EQ(readFile(staged(kFlags)), readFile(FLEDGE_SOURCE_DIR "/configs/flags.json"));
  // An unchanged file is reported as such, not as kept.
  auto third = install();
  EXPECT_NE(third.out.find("Up-to-date: " + staged(kFlags)), std::string::npos) << third.out;
}

}  // namespace
