#include "proxy/sd_notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <system_error>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace fledge::proxy {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string failure(std::string_view socket, std::string_view what, int error) {
  return "NOTIFY_SOCKET=\"" + std::string(socket) + "\": " + std::string(what) + ": " + std::system_category().message(error);
}

// `head` plus a STATUS line when there is a status, kept on one line whatever it contains.
std::string withStatus(std::string head, std::string_view status) {
  if (status.empty()) return head;
  head += head.empty() ? "STATUS=" : "\nSTATUS=";
  for (char c : status) head += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  return head;
}

}  // namespace

bool sdNotify(std::string_view state, std::string& err) {
  err.clear();
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || *env == '\0') return false;
  const std::string_view name(env);
  if (state.empty()) {
    err = "empty notification";
    return false;
  }
  // systemd ignores a whole message that contains a NUL byte.
  if (state.find('\0') != std::string_view::npos) {
    err = "notification contains a NUL byte";
    return false;
  }

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  socklen_t addr_len = 0;
  if (name[0] == '/') {
    if (name.size() >= sizeof(addr.sun_path)) {
      err = "NOTIFY_SOCKET=\"" + std::string(name) + "\": path longer than " + std::to_string(sizeof(addr.sun_path) - 1) + " bytes";
      return false;
    }
    std::memcpy(addr.sun_path, name.data(), name.size());
    addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
  } else if (name[0] == '@') {
    // Abstract namespace: a leading NUL, then the name; the length says where it ends.
    if (name.size() > sizeof(addr.sun_path)) {
      err = "NOTIFY_SOCKET=\"" + std::string(name) + "\": abstract name longer than " + std::to_string(sizeof(addr.sun_path) - 1) +
            " bytes";
      return false;
    }
    addr.sun_path[0] = '\0';
    std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
    addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  } else {
    err = "NOTIFY_SOCKET=\"" + std::string(name) + "\": not an absolute path or an @abstract name";
    return false;
  }

  Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) {
    err = failure(name, "cannot create a socket", errno);
    return false;
  }
  ssize_t sent;
  do {
    sent = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    err = failure(name, "cannot send", errno);
    return false;
  }
  if (static_cast<std::size_t>(sent) != state.size()) {  // a datagram goes whole or not at all
    err = "NOTIFY_SOCKET=\"" + std::string(name) + "\": sent " + std::to_string(sent) + " of " + std::to_string(state.size()) + " bytes";
    return false;
  }
  return true;
}

bool sdNotify(std::string_view state) {
  std::string err;
  return sdNotify(state, err);
}

bool sdNotifyReady(std::string_view status, std::string& err) { return sdNotify(withStatus("READY=1", status), err); }

bool sdNotifyReloading(std::string_view status, std::string& err) {
  return sdNotify(withStatus("RELOADING=1", status) + "\nMONOTONIC_USEC=" + std::to_string(monotonicUsec()), err);
}

bool sdNotifyStopping(std::string_view status, std::string& err) { return sdNotify(withStatus("STOPPING=1", status), err); }

bool sdNotifyStatus(std::string_view status, std::string& err) { return sdNotify(withStatus("", status), err); }

std::uint64_t monotonicUsec() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

}  // namespace fledge::proxy
