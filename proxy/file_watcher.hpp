#pragma once
// Watches a set of files with inotify and calls back once their changes settle. The directories
// are watched, not the files, so that every way of changing a file is seen: written in place,
// replaced by a rename (editors, `mv`, Kubernetes ConfigMap's `..data` swap), truncated, deleted
// and created again.
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fledge::proxy {

class FileWatcher {
 public:
  // `on_change` runs on the watcher's thread, `settle` after the last event of a burst (a file
  // written in several steps is read once, after the writer paused).
  FileWatcher(std::function<void()> on_change, std::chrono::milliseconds settle);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Replaces the watched set. False with `error` when inotify is unavailable or a directory
  // cannot be watched (the previous set stays watched).
  bool watch(const std::vector<std::string>& files, std::string& error);

 private:
  void run();
  bool relevant(int wd, const std::string& name);

  std::function<void()> on_change_;
  std::chrono::milliseconds settle_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: tells the thread to stop
  std::mutex mu_;
  std::map<int, std::string> dirs_;                 // watch descriptor -> directory
  std::map<std::string, std::set<std::string>> names_;  // directory -> watched file names in it
  std::thread thread_;
};

}  // namespace fledge::proxy
