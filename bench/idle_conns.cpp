// fledge_idle_conns: holds N idle HTTP/1.1 keep-alive connections open against one server, so
// that bench/load and bench/tls can measure what an idle connection costs a proxy. Each
// connection first completes one request (so per-connection buffers are warm), then waits;
// "ready N" on stdout says all N are idle. They stay open until stdin reaches EOF, a signal,
// or --hold seconds. With --tls every connection makes a full TLS handshake first (OpenSSL,
// no session resumption) and "tls PROTOCOL CIPHER GROUP KEY" on stdout, before "ready",
// describes the first one. POSIX sockets, epoll and OpenSSL, on purpose: nothing of Fledge's
// own stack is involved.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_common.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

using fledge_bench::Parse;

constexpr std::string_view kRequest = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
// Tags for the two non-connection descriptors in epoll's data field; connections use their index.
constexpr uint64_t kStdinTag = ~uint64_t{0};
constexpr uint64_t kSignalTag = ~uint64_t{0} - 1;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  long count = 0;
  int concurrency = 64;  // connections being set up at once; keeps the accept backlog short
  int timeout_s = 60;    // for getting all of them idle
  int hold_s = 600;      // the longest they are held, whatever stdin does
  bool tls = false;
  std::string cafile;                   // with --tls: verify the server against it
  std::string servername = "localhost";  // with --tls: SNI, and the name verified
};

enum class Phase { Connecting, Handshaking, Reading, Idle, Closed };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // with --tls
  Phase phase = Phase::Connecting;
  std::string in;
};

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fledge_idle_conns: %s\n", what.c_str());
  std::exit(1);
}

void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --port PORT --count N [--host 127.0.0.1] [--concurrency 64] "
               "[--timeout 60] [--hold 600] [--tls [--cafile CA.pem] [--servername localhost]]\n",
               argv0);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--tls") {
      o.tls = true;
      continue;
    }
    if (i + 1 >= argc) {
      usage(argv[0]);
      fail("missing value for " + std::string(a));
    }
    const char* v = argv[++i];
    if (a == "--host") o.host = v;
    else if (a == "--port") o.port = std::atoi(v);
    else if (a == "--count") o.count = std::atol(v);
    else if (a == "--concurrency") o.concurrency = std::atoi(v);
    else if (a == "--timeout") o.timeout_s = std::atoi(v);
    else if (a == "--hold") o.hold_s = std::atoi(v);
    else if (a == "--cafile") o.cafile = v;
    else if (a == "--servername") o.servername = v;
    else {
      usage(argv[0]);
      fail("unknown option " + std::string(a));
    }
  }
  if (o.port <= 0 || o.port > 65535 || o.count <= 0 || o.concurrency <= 0 || o.timeout_s <= 0 ||
      o.hold_s <= 0) {
    usage(argv[0]);
    fail("--port and --count are required; all numbers must be positive");
  }
  if (!o.tls && !o.cafile.empty()) fail("--cafile needs --tls");
  return o;
}

void raiseFdLimit(long needed) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) fail("getrlimit failed");
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_max != RLIM_INFINITY && static_cast<long>(rl.rlim_max) < needed)
    fail("need " + std::to_string(needed) + " descriptors, the hard limit is " +
         std::to_string(rl.rlim_max));
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parseOptions(argc, argv);
  raiseFdLimit(opt.count + 16);

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(opt.port));
  if (inet_pton(AF_INET, opt.host.c_str(), &addr.sin_addr) != 1) fail("bad --host " + opt.host);

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1 failed");

  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sigs, s);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  epoll_event sev{EPOLLIN, {.u64 = kSignalTag}};
  if (sfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &sev) != 0) fail("signalfd failed");
  // stdin is watched only if epoll can watch it (a pipe or a terminal, not /dev/null or a file).
  epoll_event iev{EPOLLIN | EPOLLRDHUP, {.u64 = kStdinTag}};
  bool watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &iev) == 0;
  bool stdin_closed = false, signalled = false;

  std::vector<Conn> conns(static_cast<size_t>(opt.count));
  long started = 0, idle = 0, closed_while_idle = 0;
  int in_setup = 0;

  auto startOne = [&] {
    Conn& c = conns[static_cast<size_t>(started)];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) fail(std::string("socket: ") + std::strerror(errno));
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS)
      fail(std::string("connect: ") + std::strerror(errno));
    epoll_event ev{EPOLLOUT, {.u64 = static_cast<uint64_t>(started)}};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) != 0) fail("epoll_ctl add failed");
    ++started;
    ++in_setup;
  };

  SSL_CTX* ctx = nullptr;
  std::string tls_description;  // of the first handshake
  if (opt.tls) {
    std::string err;
    ctx = fledge_bench::makeClientContext(opt.cafile, err);
    if (ctx == nullptr) fail(err);
  }

  auto watch = [&](size_t i, uint32_t events) {
    epoll_event ev{events, {.u64 = i}};
    epoll_ctl(ep, EPOLL_CTL_MOD, conns[i].fd, &ev);
  };
  auto what = [](size_t i) { return "connection " + std::to_string(i) + ": "; };

  // Reads what is there: true if the server closed the connection, or the connection failed
  // (then `error` says how).
  auto readAvailable = [&](size_t i, std::string& error) {
    Conn& c = conns[i];
    char buf[4096];
    for (;;) {
      if (c.ssl == nullptr) {
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n > 0) {
          c.in.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (n == 0) return true;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
        error = std::string("recv: ") + std::strerror(errno);
        return true;
      }
      int n = SSL_read(c.ssl, buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      switch (SSL_get_error(c.ssl, n)) {
        case SSL_ERROR_WANT_READ:  // also after a record that held no data (a session ticket)
          return false;
        case SSL_ERROR_ZERO_RETURN:  // close_notify
          return true;
        case SSL_ERROR_SYSCALL:
          if (errno == 0) return true;  // EOF without close_notify
          error = std::string("SSL_read: ") + std::strerror(errno);
          return true;
        default:
          error = "SSL_read: " + fledge_bench::sslError();
          return true;
      }
    }
  };

  // One readiness event on connection `i` during setup: finish connecting (and the TLS
  // handshake) and send the request, or read what the server sent and check whether the
  // response is complete.
  auto onSetupEvent = [&](size_t i, uint32_t events) {
    Conn& c = conns[i];
    if (c.phase == Phase::Connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) fail(what(i) + "connect: " + std::strerror(err));
      if (ctx == nullptr) {
        // The request is a few bytes on a fresh socket: it goes out in one send.
        if (send(c.fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kRequest.size()))
          fail(what(i) + "short send");
        c.phase = Phase::Reading;
        watch(i, EPOLLIN | EPOLLRDHUP);
        return;
      }
      c.ssl = fledge_bench::newClientConnection(ctx, c.fd, opt.servername, !opt.cafile.empty());
      if (c.ssl == nullptr) fail(what(i) + "SSL_new: " + fledge_bench::sslError());
      c.phase = Phase::Handshaking;
    }
    if (c.phase == Phase::Handshaking) {
      int r = SSL_do_handshake(c.ssl);
      if (r != 1) {
        int e = SSL_get_error(c.ssl, r);
        if (e == SSL_ERROR_WANT_READ) watch(i, EPOLLIN);
        else if (e == SSL_ERROR_WANT_WRITE) watch(i, EPOLLOUT);
        else fail(what(i) + "TLS handshake: " + fledge_bench::sslError());
        return;
      }
      if (SSL_session_reused(c.ssl)) fail(what(i) + "TLS session resumed, expected a full handshake");
      if (tls_description.empty()) tls_description = fledge_bench::describeTls(c.ssl);
      // One small record on a fresh connection: it fits the socket buffer.
      if (SSL_write(c.ssl, kRequest.data(), static_cast<int>(kRequest.size())) != static_cast<int>(kRequest.size()))
        fail(what(i) + "SSL_write: " + fledge_bench::sslError());
      c.phase = Phase::Reading;
      watch(i, EPOLLIN | EPOLLRDHUP);
      return;
    }
    std::string error;
    bool closed = readAvailable(i, error);
    if (!error.empty()) fail(what(i) + error);
    auto response = fledge_bench::parseResponse(c.in);
    if (response.state == Parse::Bad) fail(what(i) + response.why);
    if (response.state == Parse::Incomplete) {
      if (closed || (ctx == nullptr && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))))
        fail(what(i) + "closed by the server before its response ended");
      return;
    }
    if (response.status != 200) fail(what(i) + "status " + std::to_string(response.status) + ", expected 200");
    if (response.close || closed) fail(what(i) + "the server closed the connection after the response");
    std::string().swap(c.in);
    c.phase = Phase::Idle;
    --in_setup;
    ++idle;
  };

  // Anything arriving on an idle connection means the server closed it (or broke protocol),
  // except, over TLS, a record that holds no data (a late session ticket).
  auto onIdleEvent = [&](size_t i) {
    Conn& c = conns[i];
    if (c.phase != Phase::Idle) return;
    std::string error;
    if (c.ssl != nullptr && !readAvailable(i, error) && c.in.empty()) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.fd = -1;
    c.phase = Phase::Closed;
    --idle;
    ++closed_while_idle;
  };

  using Clock = std::chrono::steady_clock;
  auto setup_deadline = Clock::now() + std::chrono::seconds(opt.timeout_s);
  std::vector<epoll_event> events(1024);
  bool ready = false;
  Clock::time_point hold_deadline{};

  for (;;) {
    if (!ready) {
      while (started < opt.count && in_setup < opt.concurrency) startOne();
      if (idle + closed_while_idle == opt.count && in_setup == 0) {
        if (closed_while_idle > 0)
          fail(std::to_string(closed_while_idle) + " connections were closed by the server while the rest were set up");
        if (!tls_description.empty()) std::printf("tls %s\n", tls_description.c_str());
        std::printf("ready %ld\n", idle);
        std::fflush(stdout);
        ready = true;
        hold_deadline = Clock::now() + std::chrono::seconds(opt.hold_s);
      }
    }
    auto now = Clock::now();
    auto deadline = ready ? hold_deadline : setup_deadline;
    if (now >= deadline) {
      if (!ready)
        fail("only " + std::to_string(idle) + " of " + std::to_string(opt.count) + " connections idle after " +
             std::to_string(opt.timeout_s) + " s");
      break;  // held for --hold seconds: stop on our own
    }
    int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count()) + 1;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
    if (n < 0 && errno != EINTR) fail("epoll_wait failed");
    for (int k = 0; k < n; ++k) {
      uint64_t tag = events[static_cast<size_t>(k)].data.u64;
      uint32_t ev = events[static_cast<size_t>(k)].events;
      if (tag == kSignalTag) {
        signalled = true;
      } else if (tag == kStdinTag) {
        char buf[256];
        ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
        if (r <= 0 && !(r < 0 && errno == EAGAIN)) stdin_closed = true;
        if (ev & (EPOLLHUP | EPOLLRDHUP)) stdin_closed = true;
        if (stdin_closed) epoll_ctl(ep, EPOLL_CTL_DEL, STDIN_FILENO, nullptr);
      } else if (conns[tag].phase == Phase::Idle) {
        onIdleEvent(tag);
      } else if (conns[tag].phase != Phase::Closed) {
        onSetupEvent(tag, ev);
      }
    }
    if (signalled || (stdin_closed && watch_stdin)) {
      if (!ready) fail("stopped before all connections were idle");
      break;
    }
  }
  // What the caller may want to know: how many of the idle connections the server kept.
  std::printf("held %ld closed %ld\n", idle, closed_while_idle);
  std::fflush(stdout);
  return 0;
}
