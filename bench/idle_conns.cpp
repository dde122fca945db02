// fledge_idle_conns: holds N idle HTTP/1.1 keep-alive connections open against one server, so
// that bench/load can measure what an idle connection costs a proxy. Each connection first
// completes one request (so per-connection buffers are warm), then waits; "ready N" on stdout
// says all N are idle. They stay open until stdin reaches EOF, a signal, or --hold seconds.
// Plain POSIX sockets and epoll, on purpose: nothing of Fledge's own stack is involved.
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

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

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
};

enum class Phase { Connecting, Reading, Idle, Closed };

struct Conn {
  int fd = -1;
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
               "[--timeout 60] [--hold 600]\n",
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
    else if (a == "--count") o.count = std::atol(v);
    else if (a == "--concurrency") o.concurrency = std::atoi(v);
    else if (a == "--timeout") o.timeout_s = std::atoi(v);
    else if (a == "--hold") o.hold_s = std::atoi(v);
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
  return o;
}

bool iequalsPrefix(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

// Length of the complete chunked body at the start of `body`, or nullopt if not all there yet.
std::optional<size_t> chunkedLength(std::string_view body) {
  size_t pos = 0;
  for (;;) {
    size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) return std::nullopt;
    unsigned long size = std::strtoul(std::string(body.substr(pos, eol - pos)).c_str(), nullptr, 16);
    pos = eol + 2;
    if (size == 0) {
      // Trailers, then an empty line.
      for (;;) {
        eol = body.find("\r\n", pos);
        if (eol == std::string_view::npos) return std::nullopt;
        bool empty = eol == pos;
        pos = eol + 2;
        if (empty) return pos;
      }
    }
    if (body.size() < pos + size + 2) return std::nullopt;
    pos += size + 2;
  }
}

enum class Parse { Incomplete, Done, Bad };

// Whether `in` holds one complete 200 response that leaves the connection open.
Parse parseResponse(std::string_view in, std::string& why) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return Parse::Incomplete;
  std::string_view head = in.substr(0, head_end + 2);
  if (head.substr(0, 9) != "HTTP/1.1 " || head.substr(9, 3) != "200") {
    why = "unexpected status line: " + std::string(head.substr(0, head.find("\r\n")));
    return Parse::Bad;
  }
  std::optional<size_t> content_length;
  bool chunked = false;
  for (size_t pos = head.find("\r\n") + 2; pos < head.size();) {
    size_t eol = head.find("\r\n", pos);
    std::string_view line = head.substr(pos, eol - pos);
    pos = eol + 2;
    if (iequalsPrefix(line, "content-length:")) {
      content_length = std::strtoul(std::string(line.substr(15)).c_str(), nullptr, 10);
    } else if (iequalsPrefix(line, "transfer-encoding:")) {
      chunked = line.find("chunked") != std::string_view::npos;
    } else if (iequalsPrefix(line, "connection:") && line.find("close") != std::string_view::npos) {
      why = "the server answered Connection: close";
      return Parse::Bad;
    }
  }
  std::string_view body = in.substr(head_end + 4);
  if (chunked) {
    auto n = chunkedLength(body);
    if (!n) return Parse::Incomplete;
    return *n == body.size() ? Parse::Done : (why = "bytes after the response", Parse::Bad);
  }
  if (!content_length) {
    why = "response without Content-Length or chunked encoding";
    return Parse::Bad;
  }
  if (body.size() < *content_length) return Parse::Incomplete;
  return body.size() == *content_length ? Parse::Done : (why = "bytes after the response", Parse::Bad);
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

  // One readiness event on connection `i` during setup: finish connecting and send the
  // request, or read what the server sent and check whether the response is complete.
  auto onSetupEvent = [&](size_t i, uint32_t events) {
    Conn& c = conns[i];
    if (c.phase == Phase::Connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) fail("connection " + std::to_string(i) + ": connect: " + std::strerror(err));
      // The request is a few bytes on a fresh socket: it goes out in one send.
      if (send(c.fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(kRequest.size()))
        fail("connection " + std::to_string(i) + ": short send");
      c.phase = Phase::Reading;
      epoll_event ev{EPOLLIN | EPOLLRDHUP, {.u64 = i}};
      epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      return;
    }
    char buf[4096];
    for (;;) {
      ssize_t n = recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) {
        c.in.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0) fail("connection " + std::to_string(i) + ": closed by the server before its response ended");
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      fail("connection " + std::to_string(i) + ": recv: " + std::strerror(errno));
    }
    std::string why;
    switch (parseResponse(c.in, why)) {
      case Parse::Incomplete:
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
          fail("connection " + std::to_string(i) + ": closed before its response ended");
        return;
      case Parse::Bad:
        fail("connection " + std::to_string(i) + ": " + why);
      case Parse::Done:
        std::string().swap(c.in);
        c.phase = Phase::Idle;
        --in_setup;
        ++idle;
        return;
    }
  };

  // Anything arriving on an idle connection means the server closed it (or broke protocol).
  auto onIdleEvent = [&](size_t i) {
    Conn& c = conns[i];
    if (c.phase != Phase::Idle) return;
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
