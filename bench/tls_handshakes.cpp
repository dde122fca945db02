// fledge_tls_handshakes: new TLS connections per second against one HTTPS server, for bench/tls.
// Each connection makes a full handshake (OpenSSL, never a resumed session: wrk resumes every
// session after its first, so its Connection: close runs measure resumptions), sends one
// "GET / HTTP/1.1" with Connection: close, reads the response, sends close_notify and closes;
// --connections of them are in flight at any time, spread over --threads epoll loops. After
// --duration seconds it prints "key value" lines: requests (responses completed in the
// window), rps, latency percentiles (connect to last response byte), errors by kind, how many
// handshakes were resumptions (0, or the numbers mean nothing) and the first connection's
// protocol, cipher, group and server key, and this client's own CPU time per connection.
// Exits 1 only on bad usage or if nothing succeeded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client_common.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using fledge_bench::Parse;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int connections = 64;
  int threads = 1;
  double duration_s = 10;
  std::string cafile;
  std::string servername = "localhost";
  std::string path = "/";
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fledge_tls_handshakes: %s\n", what.c_str());
  std::exit(1);
}

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --port PORT [--host 127.0.0.1] [--connections 64] [--threads 1] "
               "[--duration SECONDS] [--cafile CA.pem] [--servername localhost] [--path /]\n",
               argv0);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) {
      usage(argv[0]);
      fail("missing value for " + std::string(a));
    }
    const char* v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = std::atoi(v);
    else if (a == "--connections") o.connections = std::atoi(v);
    else if (a == "--threads") o.threads = std::atoi(v);
    else if (a == "--duration") o.duration_s = std::atof(v);
    else if (a == "--cafile") o.cafile = v;
    else if (a == "--servername") o.servername = v;
    else if (a == "--path") o.path = v;
    else {
      usage(argv[0]);
      fail("unknown option " + std::string(a));
    }
  }
  if (o.port <= 0 || o.port > 65535 || o.connections <= 0 || o.threads <= 0 || o.duration_s <= 0 ||
      o.threads > o.connections) {
    usage(argv[0]);
    fail("--port is required; all numbers must be positive, --threads at most --connections");
  }
  return o;
}

struct Counts {
  long requests = 0;  // complete responses, any status, within the window
  long non_2xx = 0;
  long resumed = 0;
  long connect_errors = 0;
  long handshake_errors = 0;
  long io_errors = 0;  // write or read failed, or the server closed before the response ended
  std::vector<uint32_t> latency_us;

  void add(const Counts& o) {
    requests += o.requests;
    non_2xx += o.non_2xx;
    resumed += o.resumed;
    connect_errors += o.connect_errors;
    handshake_errors += o.handshake_errors;
    io_errors += o.io_errors;
    latency_us.insert(latency_us.end(), o.latency_us.begin(), o.latency_us.end());
  }
};

// What the first finished handshake looked like, and the first few errors, across threads.
struct Shared {
  std::mutex mu;
  std::string tls;
  std::vector<std::string> first_errors;

  void error(std::string what) {
    std::lock_guard lock(mu);
    if (first_errors.size() < 5) first_errors.push_back(std::move(what));
  }
};

enum class State { Connecting, Handshaking, Writing, Reading };

struct Slot {
  int fd = -1;
  SSL* ssl = nullptr;
  State state = State::Connecting;
  uint32_t watching = 0;
  Clock::time_point started;
  std::string in;
};

// One epoll loop driving its share of the connections until `end`.
class Worker {
 public:
  Worker(const Options& opt, SSL_CTX* ctx, const sockaddr_in& addr, int slots, Shared& shared)
      : opt_(opt), ctx_(ctx), addr_(addr), slots_(static_cast<size_t>(slots)), shared_(shared) {
    request_ = "GET " + opt.path + " HTTP/1.1\r\nHost: " + opt.servername + "\r\nConnection: close\r\n\r\n";
  }

  Counts run(Clock::time_point end) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) fail("epoll_create1 failed");
    end_ = end;
    for (size_t i = 0; i < slots_.size(); ++i) start(i);
    std::vector<epoll_event> events(256);
    for (;;) {
      auto now = Clock::now();
      if (now >= end_) break;
      int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end_ - now).count()) + 1;
      int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), wait_ms);
      if (n < 0 && errno != EINTR) fail("epoll_wait failed");
      for (int k = 0; k < n; ++k) drive(events[static_cast<size_t>(k)].data.u64);
    }
    // Connections still in flight are dropped uncounted, as wrk does.
    for (size_t i = 0; i < slots_.size(); ++i) release(i, false);
    close(ep_);
    return counts_;
  }

 private:
  void start(size_t i) {
    Slot& s = slots_[i];
    s = Slot{};
    s.started = Clock::now();
    s.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s.fd < 0) fail(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0 && errno != EINPROGRESS) {
      connectFailed(i, errno);
      return;
    }
    s.watching = EPOLLOUT;
    epoll_event ev{EPOLLOUT, {.u64 = i}};
    if (epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev) != 0) fail("epoll_ctl add failed");
  }

  void connectFailed(size_t i, int err) {
    ++counts_.connect_errors;
    shared_.error(std::string("connect: ") + std::strerror(err));
    release(i, false);
    // A refused port fails at once: do not spin on it.
    if (counts_.connect_errors > 1000 && counts_.requests == 0) fail("connect keeps failing: " + std::string(std::strerror(err)));
    start(i);
  }

  void watch(size_t i, uint32_t events) {
    Slot& s = slots_[i];
    if (s.watching == events) return;
    s.watching = events;
    epoll_event ev{events, {.u64 = i}};
    epoll_ctl(ep_, EPOLL_CTL_MOD, s.fd, &ev);
  }

  // Waits for what OpenSSL asked for; false if the call failed for good.
  bool waitFor(size_t i, int ret) {
    switch (SSL_get_error(slots_[i].ssl, ret)) {
      case SSL_ERROR_WANT_READ:
        watch(i, EPOLLIN);
        return true;
      case SSL_ERROR_WANT_WRITE:
        watch(i, EPOLLOUT);
        return true;
      default:
        return false;
    }
  }

  void drive(size_t i) {
    Slot& s = slots_[i];
    if (s.fd < 0) return;
    if (s.state == State::Connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return connectFailed(i, err);
      s.ssl = fledge_bench::newClientConnection(ctx_, s.fd, opt_.servername, !opt_.cafile.empty());
      if (s.ssl == nullptr) fail("SSL_new: " + fledge_bench::sslError());
      s.state = State::Handshaking;
    }
    if (s.state == State::Handshaking) {
      int r = SSL_do_handshake(s.ssl);
      if (r != 1) {
        if (waitFor(i, r)) return;
        ++counts_.handshake_errors;
        return failed(i, "TLS handshake: " + fledge_bench::sslError());
      }
      if (SSL_session_reused(s.ssl)) ++counts_.resumed;
      if (!described_) {
        described_ = true;
        std::lock_guard lock(shared_.mu);
        if (shared_.tls.empty()) shared_.tls = fledge_bench::describeTls(s.ssl);
      }
      s.state = State::Writing;
    }
    if (s.state == State::Writing) {
      int r = SSL_write(s.ssl, request_.data(), static_cast<int>(request_.size()));
      if (r <= 0) {
        if (waitFor(i, r)) return;
        ++counts_.io_errors;
        return failed(i, "SSL_write: " + fledge_bench::sslError());
      }
      s.state = State::Reading;
    }
    char buf[4096];
    for (;;) {
      int r = SSL_read(s.ssl, buf, sizeof buf);
      if (r > 0) {
        s.in.append(buf, static_cast<size_t>(r));
        continue;
      }
      auto response = fledge_bench::parseResponse(s.in);
      if (response.state == Parse::Done) return finished(i, response.status);
      if (response.state == Parse::Bad) {
        ++counts_.io_errors;
        return failed(i, response.why);
      }
      if (waitFor(i, r)) return;
      ++counts_.io_errors;
      return failed(i, "closed before the response ended: " + fledge_bench::sslError());
    }
  }

  void finished(size_t i, int status) {
    Slot& s = slots_[i];
    auto now = Clock::now();
    if (now < end_) {
      ++counts_.requests;
      if (status < 200 || status > 299) ++counts_.non_2xx;
      counts_.latency_us.push_back(
          static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(now - s.started).count()));
    }
    release(i, true);
    start(i);
  }

  void failed(size_t i, std::string what) {
    shared_.error(std::move(what));
    release(i, false);
    start(i);
  }

  // Closes slot i; after a complete exchange with close_notify first, as a browser would.
  void release(size_t i, bool clean) {
    Slot& s = slots_[i];
    if (s.ssl != nullptr) {
      if (clean) SSL_shutdown(s.ssl);
      SSL_free(s.ssl);
      s.ssl = nullptr;
    }
    ERR_clear_error();
    if (s.fd >= 0) {
      close(s.fd);  // also takes it out of the epoll set
      s.fd = -1;
    }
  }

  const Options& opt_;
  SSL_CTX* ctx_;
  sockaddr_in addr_;
  std::vector<Slot> slots_;
  Shared& shared_;
  std::string request_;
  int ep_ = -1;
  Clock::time_point end_;
  Counts counts_;
  bool described_ = false;
};

uint32_t percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t k = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(k, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parseOptions(argc, argv);
  signal(SIGPIPE, SIG_IGN);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) fail("bad --host " + opt.host);

  std::string err;
  SSL_CTX* ctx = fledge_bench::makeClientContext(opt.cafile, err);
  if (ctx == nullptr) fail(err);

  Shared shared;
  std::vector<Counts> results(static_cast<size_t>(opt.threads));
  std::vector<std::thread> threads;
  auto begin = Clock::now();
  auto end = begin + std::chrono::microseconds(static_cast<long long>(opt.duration_s * 1e6));
  for (int t = 0; t < opt.threads; ++t) {
    // The connections spread as evenly as they go: 64 over 3 threads is 22, 21, 21.
    int slots = opt.connections / opt.threads + (t < opt.connections % opt.threads ? 1 : 0);
    threads.emplace_back([&, t, slots] {
      Worker worker(opt, ctx, addr, slots, shared);
      results[static_cast<size_t>(t)] = worker.run(end);
    });
  }
  for (auto& th : threads) th.join();
  double seconds = std::chrono::duration<double>(end - begin).count();

  Counts total;
  for (const auto& r : results) total.add(r);
  std::sort(total.latency_us.begin(), total.latency_us.end());
  std::printf("requests %ld\n", total.requests);
  std::printf("seconds %.3f\n", seconds);
  std::printf("rps %.2f\n", static_cast<double>(total.requests) / seconds);
  std::printf("p50_us %u\np90_us %u\np99_us %u\n", percentile(total.latency_us, 50),
              percentile(total.latency_us, 90), percentile(total.latency_us, 99));
  std::printf("non_2xx %ld\n", total.non_2xx);
  std::printf("connect_errors %ld\nhandshake_errors %ld\nio_errors %ld\n", total.connect_errors,
              total.handshake_errors, total.io_errors);
  std::printf("resumed %ld\n", total.resumed);
  std::printf("tls %s\n", shared.tls.empty() ? "none" : shared.tls.c_str());
  // This client's own CPU time per connection: on a machine it shares with the server, what
  // it spends is not there for the server.
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double cpu_us = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                  static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  std::printf("client_cpu_us_per_conn %.1f\n", total.requests > 0 ? cpu_us / static_cast<double>(total.requests) : 0.0);
  for (const auto& e : shared.first_errors) std::fprintf(stderr, "fledge_tls_handshakes: error: %s\n", e.c_str());
  SSL_CTX_free(ctx);
  return total.requests > 0 ? 0 : 1;
}
