#include "proxy/file_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "proxy/log.hpp"

namespace fledge::proxy {

namespace {
constexpr std::uint32_t kEvents =
    IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;
}

FileWatcher::FileWatcher(std::function<void()> on_change, std::chrono::milliseconds settle)
    : on_change_(std::move(on_change)), settle_(settle) {
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (inotify_fd_ >= 0 && wake_fd_ >= 0) thread_ = std::thread([this] { run(); });
}

FileWatcher::~FileWatcher() {
  if (thread_.joinable()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool FileWatcher::watch(const std::vector<std::string>& files, std::string& error) {
  if (inotify_fd_ < 0 || wake_fd_ < 0) {
    error = std::string("inotify unavailable: ") + std::strerror(errno);
    return false;
  }
  std::map<std::string, std::set<std::string>> want;
  for (const auto& f : files) {
    std::filesystem::path p = std::filesystem::absolute(f).lexically_normal();
    want[p.parent_path().string()].insert(p.filename().string());
  }
  std::lock_guard lock(mu_);
  std::map<int, std::string> dirs;
  // Two spellings of one directory (a symlink) share a watch: their names are merged under the
  // spelling the watch is filed under.
  std::map<std::string, std::set<std::string>> merged;
  for (const auto& [dir, files] : want) {
    int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), kEvents | IN_ONLYDIR);
    if (wd < 0) {
      error = "cannot watch directory \"" + dir + "\": " + std::strerror(errno);
      for (const auto& [d, _] : dirs)
        if (!dirs_.count(d)) ::inotify_rm_watch(inotify_fd_, d);
      return false;
    }
    auto [at, fresh] = dirs.emplace(wd, dir);
    merged[at->second].insert(files.begin(), files.end());
  }
  for (const auto& [wd, _] : dirs_)
    if (!dirs.count(wd)) ::inotify_rm_watch(inotify_fd_, wd);
  dirs_ = std::move(dirs);
  names_ = std::move(merged);
  return true;
}

bool FileWatcher::relevant(int wd, const std::string& name) {
  std::lock_guard lock(mu_);
  auto d = dirs_.find(wd);
  if (d == dirs_.end()) return false;
  if (name.empty()) return true;  // the directory itself moved or went away
  const auto& names = names_[d->second];
  // Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink.
  return names.count(name) != 0 || name.rfind("..", 0) == 0;
}

void FileWatcher::run() {
  using Clock = std::chrono::steady_clock;
  alignas(inotify_event) char buf[16 * 1024];
  bool pending = false;
  Clock::time_point due;
  for (;;) {
    int timeout = -1;
    if (pending) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count();
      timeout = static_cast<int>(std::max<long long>(0, left));
    }
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      log::error("file watch failed; flag files are no longer watched", {{"error", std::strerror(errno)}});
      return;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) return;
    if (n > 0 && (fds[0].revents & POLLIN)) {
      bool seen = false;  // only the watched files' events delay the call, not their neighbours'
      for (;;) {
        ssize_t len = ::read(inotify_fd_, buf, sizeof buf);
        if (len <= 0) break;
        for (char* p = buf; p < buf + len;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          if (ev->mask & IN_Q_OVERFLOW) {
            seen = true;  // events were lost: assume the worst
            continue;
          }
          if (relevant(ev->wd, ev->len ? std::string(ev->name) : std::string())) seen = true;
        }
      }
      if (seen) {
        pending = true;
        due = Clock::now() + settle_;  // wait for the burst to end
      }
      continue;
    }
    if (pending && Clock::now() >= due) {
      pending = false;
      on_change_();
    }
  }
}

}  // namespace fledge::proxy
