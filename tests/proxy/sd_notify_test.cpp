// systemd notifications against a real notify socket: an AF_UNIX datagram socket bound in a
// temporary directory or in the abstract namespace, named by NOTIFY_SOCKET as systemd does.
#include "proxy/sd_notify.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace fledge::proxy {
namespace {

// Stands in for systemd's notify socket; bound at construction, closed and removed at destruction.
class FakeNotifySocket {
 public:
  enum class Kind { kPath, kAbstract };

  explicit FakeNotifySocket(Kind kind) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "socket");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    socklen_t len = 0;
    if (kind == Kind::kPath) {
      std::string tmpl = (std::filesystem::temp_directory_path() / "fledge-sd-notify-XXXXXX").string();
      if (::mkdtemp(tmpl.data()) == nullptr) throw std::system_error(errno, std::system_category(), "mkdtemp");
      dir_ = tmpl;
      address_ = dir_ + "/notify";
      if (address_.size() >= sizeof(addr.sun_path)) throw std::runtime_error("temporary directory path too long: " + dir_);
      std::memcpy(addr.sun_path, address_.data(), address_.size());
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size() + 1);
    } else {
      address_ = "@fledge-sd-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
      std::memcpy(addr.sun_path + 1, address_.data() + 1, address_.size() - 1);
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    }
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0)
      throw std::system_error(errno, std::system_category(), "bind " + address_);
  }
  ~FakeNotifySocket() {
    close();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  FakeNotifySocket(const FakeNotifySocket&) = delete;
  FakeNotifySocket& operator=(const FakeNotifySocket&) = delete;

  // The value NOTIFY_SOCKET takes to name this socket.
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next datagram, or nullopt if none arrives within two seconds.
  std::optional<std::string> receive(int timeout_ms = 2000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 || static_cast<std::size_t>(n) > sizeof buf) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }
  // True when no datagram is waiting.
  bool nothingReceived() { return !receive(0); }

 private:
  int fd_ = -1;
  std::string dir_;
  std::string address_;
};

class SdNotify : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = std::getenv("NOTIFY_SOCKET")) saved_ = v;
    ::unsetenv("NOTIFY_SOCKET");
  }
  void TearDown() override {
    if (saved_) ::setenv("NOTIFY_SOCKET", saved_->c_str(), 1);
    else ::unsetenv("NOTIFY_SOCKET");
  }
  static void point(const std::string& address) { ::setenv("NOTIFY_SOCKET", address.c_str(), 1); }

  std::string err_ = "not cleared";

 private:
  std::optional<std::string> saved_;
};

std::uint64_t clockMonotonicUsec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

TEST_F(SdNotify, SendsOneDatagramToAPathSocket) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  point(sock.address());
  EXPECT_TRUE(sdNotify("READY=1\nSTATUS=up", err_)) << err_;
  EXPECT_EQ(err_, "");
  EXPECT_EQ(sock.receive(), "READY=1\nSTATUS=up");
  EXPECT_TRUE(sock.nothingReceived());
}

TEST_F(SdNotify, SendsToAnAbstractNamespaceSocket) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kAbstract);
  point(sock.address());
  EXPECT_TRUE(sdNotify("STATUS=abstract", err_)) << err_;
  EXPECT_EQ(sock.receive(), "STATUS=abstract");
}

TEST_F(SdNotify, ReadyWithAndWithoutStatus) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  point(sock.address());
  ASSERT_TRUE(sdNotifyReady("serving on 127.0.0.1:8080", err_)) << err_;
  EXPECT_EQ(sock.receive(), "READY=1\nSTATUS=serving on 127.0.0.1:8080");
  ASSERT_TRUE(sdNotifyReady("", err_)) << err_;
  EXPECT_EQ(sock.receive(), "READY=1");
}

TEST_F(SdNotify, ReloadingCarriesClockMonotonicInMicroseconds) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kAbstract);
  point(sock.address());
  const std::uint64_t before = clockMonotonicUsec();
  ASSERT_TRUE(sdNotifyReloading("reloading certificates", err_)) << err_;
  const std::uint64_t after = clockMonotonicUsec();
  auto msg = sock.receive();
  ASSERT_TRUE(msg);
  const std::string prefix = "RELOADING=1\nSTATUS=reloading certificates\nMONOTONIC_USEC=";
  ASSERT_EQ(msg->substr(0, prefix.size()), prefix) << *msg;
  const std::string digits = msg->substr(prefix.size());
  std::uint64_t usec = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), usec);
  ASSERT_TRUE(ec == std::errc() && end == digits.data() + digits.size() && !digits.empty()) << *msg;
  EXPECT_GE(usec, before);
  EXPECT_LE(usec, after);

  ASSERT_TRUE(sdNotifyReloading("", err_)) << err_;
  msg = sock.receive();
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << *msg;
}

TEST_F(SdNotify, StoppingAndStatus) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  point(sock.address());
  ASSERT_TRUE(sdNotifyStopping("draining (SIGTERM)", err_)) << err_;
  EXPECT_EQ(sock.receive(), "STOPPING=1\nSTATUS=draining (SIGTERM)");
  ASSERT_TRUE(sdNotifyStatus("3 listeners, 12 routes", err_)) << err_;
  EXPECT_EQ(sock.receive(), "STATUS=3 listeners, 12 routes");
}

// A status names things from the configuration; a line break in it must not become a variable.
TEST_F(SdNotify, ControlCharactersInAStatusBecomeSpaces) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  point(sock.address());
  ASSERT_TRUE(sdNotifyStatus(std::string_view("a\nREADY=1\r\tb\0c", 14), err_)) << err_;
  EXPECT_EQ(sock.receive(), "STATUS=a READY=1  b c");
  ASSERT_TRUE(sdNotifyStopping("x\ny", err_)) << err_;
  EXPECT_EQ(sock.receive(), "STOPPING=1\nSTATUS=x y");
}

TEST_F(SdNotify, UnsetOrEmptyVariableSendsNothingAndIsNoError) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  EXPECT_FALSE(sdNotify("READY=1", err_));
  EXPECT_EQ(err_, "");
  EXPECT_FALSE(sdNotifyReady("up", err_));
  EXPECT_EQ(err_, "");
  EXPECT_FALSE(sdNotifyReloading("", err_));
  EXPECT_FALSE(sdNotifyStopping("", err_));
  EXPECT_FALSE(sdNotifyStatus("s", err_));
  EXPECT_EQ(err_, "");
  EXPECT_FALSE(sdNotify("READY=1"));
  ::setenv("NOTIFY_SOCKET", "", 1);
  EXPECT_FALSE(sdNotify("READY=1", err_));
  EXPECT_EQ(err_, "");
  EXPECT_TRUE(sock.nothingReceived());
}

TEST_F(SdNotify, MissingSocketIsAnError) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  const std::string missing = sock.dir() + "/does-not-exist";
  point(missing);
  EXPECT_FALSE(sdNotifyReady("up", err_));
  EXPECT_NE(err_.find(missing), std::string::npos) << err_;
  EXPECT_NE(err_.find("No such file or directory"), std::string::npos) << err_;
  EXPECT_TRUE(sock.nothingReceived());
}

TEST_F(SdNotify, SocketNobodyReadsIsAnError) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  point(sock.address());
  sock.close();  // the file stays, the socket is gone
  EXPECT_FALSE(sdNotifyStatus("s", err_));
  EXPECT_NE(err_.find("Connection refused"), std::string::npos) << err_;
}

TEST_F(SdNotify, UnsupportedAddressesAreErrors) {
  point("run/systemd/notify");
  EXPECT_FALSE(sdNotify("READY=1", err_));
  EXPECT_EQ(err_, "NOTIFY_SOCKET=\"run/systemd/notify\": not an absolute path or an @abstract name");
  point("vsock:2:1234");
  EXPECT_FALSE(sdNotify("READY=1", err_));
  EXPECT_NE(err_.find("not an absolute path or an @abstract name"), std::string::npos) << err_;
  point("/" + std::string(107, 'x'));  // sun_path holds 107 bytes and the terminating NUL
  EXPECT_FALSE(sdNotify("READY=1", err_));
  EXPECT_NE(err_.find("path longer than 107 bytes"), std::string::npos) << err_;
  point("@" + std::string(108, 'x'));
  EXPECT_FALSE(sdNotify("READY=1", err_));
  EXPECT_NE(err_.find("abstract name longer than 107 bytes"), std::string::npos) << err_;
}

TEST_F(SdNotify, EmptyOrNulMessagesAreRefused) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kPath);
  point(sock.address());
  EXPECT_FALSE(sdNotify("", err_));
  EXPECT_EQ(err_, "empty notification");
  EXPECT_FALSE(sdNotifyStatus("", err_));
  EXPECT_EQ(err_, "empty notification");
  EXPECT_FALSE(sdNotify(std::string_view("READY=1\0X", 9), err_));
  EXPECT_EQ(err_, "notification contains a NUL byte");
  EXPECT_TRUE(sock.nothingReceived());
}

TEST_F(SdNotify, OverloadWithoutReason) {
  FakeNotifySocket sock(FakeNotifySocket::Kind::kAbstract);
  point(sock.address());
  EXPECT_TRUE(sdNotify("STOPPING=1"));
  EXPECT_EQ(sock.receive(), "STOPPING=1");
  point(sock.address() + "-elsewhere");  // nobody bound there
  EXPECT_FALSE(sdNotify("STOPPING=1"));
}

TEST(SdNotifyClock, MonotonicUsecFollowsClockMonotonic) {
  const std::uint64_t before = clockMonotonicUsec();
  const std::uint64_t ours = monotonicUsec();
  const std::uint64_t after = clockMonotonicUsec();
  EXPECT_GE(ours, before);
  EXPECT_LE(ours, after);
}

}  // namespace
}  // namespace fledge::proxy
