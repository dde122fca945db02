#include "proxy/access_log.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include "proxy/log.hpp"

namespace fledge::proxy {

AccessLog::AccessLog(const AccessLogConfig& config, unsigned workers) : config_(config) {
  for (unsigned i = 0; i < workers; ++i) queues_.push_back(std::make_unique<Queue>(config.queue_size));
}

AccessLog::~AccessLog() { stop(); }

bool AccessLog::push(unsigned w, std::string&& line) {
  Queue& q = *queues_[w];
  const std::size_t tail = q.tail.load(std::memory_order_relaxed);
  const std::size_t next = (tail + 1) % q.slots.size();
  if (next == q.head.load(std::memory_order_acquire)) return false;  // full (one slot stays empty)
  q.slots[tail] = std::move(line);
  q.tail.store(next, std::memory_order_release);
  return true;
}

void AccessLog::start() {
  thread_ = std::thread([this] { run(); });
}

void AccessLog::run() {
  int fd = STDERR_FILENO;
  if (!config_.path.empty() && config_.path != "-") {
    fd = ::open(config_.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
      log::error("cannot open access log; lines will be dropped", {{"path", config_.path}, {"error", std::strerror(errno)}});
      finished_ = true;
      return;
    }
  }
  std::string batch;
  for (;;) {
    const bool stopping = stop_.load(std::memory_order_acquire);
    batch.clear();
    for (auto& qp : queues_) {
      Queue& q = *qp;
      std::size_t head = q.head.load(std::memory_order_relaxed);
      const std::size_t tail = q.tail.load(std::memory_order_acquire);
      while (head != tail && batch.size() < (1 << 20)) {
        batch += q.slots[head];
        std::string().swap(q.slots[head]);
        head = (head + 1) % q.slots.size();
      }
      q.head.store(head, std::memory_order_release);
    }
    std::size_t off = 0;
    while (off < batch.size()) {
      ssize_t n = ::write(fd, batch.data() + off, batch.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a broken sink loses this batch, not the process
      off += static_cast<std::size_t>(n);
    }
    if (batch.empty()) {
      if (stopping) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  if (fd != STDERR_FILENO) ::close(fd);
  finished_ = true;
}

bool AccessLog::stop(std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return true;
  stop_ = true;
  auto end = std::chrono::steady_clock::now() + grace;
  while (!finished_ && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  if (finished_) {
    thread_.join();
    return true;
  }
  thread_.detach();  // stuck writing to a sink nobody reads: the process exits anyway
  return false;
}

}  // namespace fledge::proxy
