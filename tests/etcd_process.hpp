#pragma once
// A real etcd for tests: one member on 127.0.0.1 with a fresh data directory and free client and
// peer ports, started by the constructor and waited for until /health answers, stopped (SIGTERM,
// then SIGKILL) and its directory removed by the destructor. stop() and start() restart it on the
// same directory and ports. The binary is $FLEDGE_ETCD, else /usr/bin/etcd (Debian's etcd-server).
// Header-only; throws std::runtime_error (with the end of etcd's log) when etcd does not come up.
//
//   test::EtcdProcess etcd;
//   options.endpoints = {{"127.0.0.1", etcd.clientPort()}};
//   etcd.post("/v3/auth/enable", "{}");   // the v3 JSON gateway, for test setup
//
// etcd runs with PR_SET_PDEATHSIG: it dies with the thread that started it (start() from the
// test's own thread, not from a short-lived helper thread).
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fledge::test {

class EtcdProcess {
 public:
  struct Options {
    // Both set: clients speak https with this certificate (PEM files); /health is then polled on
    // a plain metrics listener of its own.
    std::string cert_file, key_file;
    std::vector<std::string> extra_args;
    std::chrono::milliseconds ready_timeout{15000};
  };

  EtcdProcess() : EtcdProcess(Options{}) {}
  explicit EtcdProcess(Options options) : options_(std::move(options)) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fledge-etcd-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    dir_ = tmpl;
    // Free ports can be taken by someone else before etcd binds them: then fresh ones.
    for (int attempt = 1;; ++attempt) {
      pickPorts();
      if (launch()) return;
      if (attempt == 5 || !portClash()) {
        const std::string why = "etcd did not come up on " + clientUrl() + ":\n" + logTail();
        removeDir();
        throw std::runtime_error(why);
      }
    }
  }

  ~EtcdProcess() {
    stop();
    removeDir();
  }
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // Starts it again (same data directory and ports) after stop().
  void start() {
    if (running()) return;
    for (int attempt = 1;; ++attempt) {
      if (launch()) return;
      // The ports just freed by stop() may linger a moment; they cannot change now.
      if (attempt == 5 || !portClash()) throw std::runtime_error("etcd did not come up again on " + clientUrl() + ":\n" + logTail());
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    }
  }

  // SIGTERM, then SIGKILL when it has not exited within 5 s.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (::waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }

  bool running() const { return pid_ > 0; }
  bool tls() const { return !options_.cert_file.empty(); }
  std::uint16_t clientPort() const { return client_port_; }
  std::uint16_t peerPort() const { return peer_port_; }
  std::string clientAddress() const { return "127.0.0.1:" + std::to_string(client_port_); }
  std::string clientUrl() const { return (tls() ? "https://" : "http://") + clientAddress(); }
  std::string dataDir() const { return dir_ + "/data"; }
  std::string log() const {
    std::ifstream in(dir_ + "/etcd.log", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // One POST of `body` (JSON) to the client port, plain http only: {HTTP status, body}; status 0
  // when there was no answer within `timeout`.
  std::pair<int, std::string> post(const std::string& path, const std::string& body, const std::string& token = "",
                                   std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const {
    if (tls()) throw std::logic_error("EtcdProcess::post speaks plain http only");
    std::string req = "POST " + path + " HTTP/1.0\r\nHost: " + clientAddress() + "\r\nContent-Type: application/json\r\n";
    if (!token.empty()) req += "Authorization: " + token + "\r\n";
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    return http10(client_port_, req, timeout);
  }

 private:
  static std::string binary() {
    const char* env = std::getenv("FLEDGE_ETCD");
    return env && *env ? env : "/usr/bin/etcd";
  }

  // Ports the kernel has just handed out, all distinct (the sockets are open together).
  void pickPorts() {
    std::uint16_t ports[3];
    int fds[3];
    for (int i = 0; i < 3; ++i) {
      fds[i] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof a;
      if (fds[i] < 0 || ::bind(fds[i], reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
          ::getsockname(fds[i], reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("cannot pick a free port: " + std::string(std::strerror(errno)));
      ports[i] = ntohs(a.sin_port);
    }
    for (int fd : fds) ::close(fd);
    client_port_ = ports[0];
    peer_port_ = ports[1];
    health_port_ = ports[2];
  }

  bool portClash() const { return log().find("address already in use") != std::string::npos; }

  std::string logTail() const {
    const std::string all = log();
    return all.size() > 4000 ? "..." + all.substr(all.size() - 4000) : all;
  }

  void removeDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Spawns etcd and waits until /health says true; false (and etcd stopped) if it does not.
  bool launch() {
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    std::vector<std::string> args = {binary(),
                                     "--name=test",
                                     "--data-dir=" + dataDir(),
                                     "--listen-client-urls=" + clientUrl(),
                                     "--advertise-client-urls=" + clientUrl(),
                                     "--listen-peer-urls=" + peer,
                                     "--initial-advertise-peer-urls=" + peer,
                                     "--initial-cluster=test=" + peer,
                                     // One member: its first election needs no long timeout.
                                     "--heartbeat-interval=10",
                                     "--election-timeout=100",
                                     "--logger=zap",
                                     "--log-outputs=stderr"};
    if (tls()) {
      args.push_back("--cert-file=" + options_.cert_file);
      args.push_back("--key-file=" + options_.key_file);
      args.push_back("--listen-metrics-urls=http://127.0.0.1:" + std::to_string(health_port_));
    }
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    const std::string log_path = dir_ + "/etcd.log";
    const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (log_fd < 0 || null_fd < 0) throw std::runtime_error("cannot open " + log_path + ": " + std::strerror(errno));
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);  // the parent is already gone
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0) throw std::runtime_error("fork failed: " + std::string(std::strerror(errno)));
    pid_ = pid;

    const std::uint16_t health = tls() ? health_port_ : client_port_;
    const std::string get = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited (a port taken, a bad flag, ...)
        pid_ = -1;
        return false;
      }
      const auto [status, body] = http10(health, get, std::chrono::milliseconds(500));
      if (status == 200 && body.find("\"true\"") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  // An HTTP/1.0 exchange (the answer is not chunked and ends when etcd closes), every step
  // bounded by `timeout` through SO_SNDTIMEO / SO_RCVTIMEO.
  static std::pair<int, std::string> http10(std::uint16_t port, const std::string& request, std::chrono::milliseconds timeout) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {0, {}};
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    std::string answer;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) answer.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    // "HTTP/1.x NNN ..." then the head, a blank line, the body.
    const auto head_end = answer.find("\r\n\r\n");
    if (answer.compare(0, 5, "HTTP/") != 0 || answer.size() < 12 || head_end == std::string::npos) return {0, answer};
    return {std::atoi(answer.substr(9, 3).c_str()), answer.substr(head_end + 4)};
  }

  Options options_;
  std::string dir_;
  pid_t pid_ = -1;
  std::uint16_t client_port_ = 0, peer_port_ = 0, health_port_ = 0;
};

}  // namespace fledge::test
