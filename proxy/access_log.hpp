#pragma once
// Optional access log: JSON lines written by a thread of its own. Each worker hands lines to
// its own fixed-size single-producer queue; when a queue is full the line is dropped (and the
// worker counts it), so a slow or stuck disk never blocks a request.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/config.hpp"

namespace fledge::proxy {

class AccessLog {
 public:
  AccessLog(const AccessLogConfig& config, unsigned workers);
  ~AccessLog();

  // Opens nothing yet: the writer thread opens the file, so even that cannot block a worker.
  void start();
  // Writes what is queued and stops; gives up on a writer stuck in a write after `grace`.
  // Returns false if it had to leave the writer behind (then this object must outlive it).
  bool stop(std::chrono::milliseconds grace = std::chrono::milliseconds(1000));

  // Worker `w` only. False when the queue is full (the line is dropped).
  bool push(unsigned w, std::string&& line);

 private:
  struct Queue {
    explicit Queue(std::size_t n) : slots(n) {}
    std::vector<std::string> slots;
    alignas(64) std::atomic<std::size_t> head{0};  // next to read (writer thread)
    alignas(64) std::atomic<std::size_t> tail{0};  // next to fill (worker)
  };
  void run();

  AccessLogConfig config_;
  std::vector<std::unique_ptr<Queue>> queues_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace fledge::proxy
