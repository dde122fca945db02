// proxy/file_watcher.hpp against real files: every way a file changes wakes the watcher once the
// burst settles; other files in the directory do not.
#include "proxy/file_watcher.hpp"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

namespace fledge::proxy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fledge-watch-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    file_ = (dir_ / "flags.json").string();
    write(file_, "{}");
  }
  void TearDown() override {
    watcher_.reset();
    fs::remove_all(dir_);
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  }
  void start() {
    watcher_ = std::make_unique<FileWatcher>([this] {
      std::lock_guard lock(mu_);
      ++calls_;
      cv_.notify_all();
    }, 50ms);
    std::string error;
    ASSERT_TRUE(watcher_->watch({file_}, error)) << error;
  }
  // Waits for the callback count to reach `n` (bounded); returns the count.
  int awaitCalls(int n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return calls_ >= n; });
    return calls_;
  }

  fs::path dir_;
  std::string file_;
  std::unique_ptr<FileWatcher> watcher_;
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
};

TEST_F(FileWatcherTest, EveryKindOfChangeIsSeen) {
  start();
  write(file_, R"({"a":1})");  // in place
  EXPECT_EQ(awaitCalls(1), 1);
  write((dir_ / ".tmp").string(), R"({"a":2})");  // replaced by rename
  fs::rename(dir_ / ".tmp", file_);
  EXPECT_EQ(awaitCalls(2), 2);
  fs::resize_file(file_, 3);  // truncated
  EXPECT_EQ(awaitCalls(3), 3);
  fs::remove(file_);  // deleted
  EXPECT_EQ(awaitCalls(4), 4);
  write(file_, "{}");  // created again
  EXPECT_EQ(awaitCalls(5), 5);
}

TEST_F(FileWatcherTest, ABurstOfWritesIsOneCall) {
  start();
  {
    std::ofstream out(file_, std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 20; ++i) out << "{}" << std::flush;  // many writes, well inside 50 ms
  }
  EXPECT_EQ(awaitCalls(1), 1);
  EXPECT_EQ(awaitCalls(2, 300ms), 1);  // nothing more came
}

TEST_F(FileWatcherTest, OtherFilesInTheDirectoryAreIgnored) {
  start();
  write((dir_ / "notes.txt").string(), "x");
  fs::remove(dir_ / "notes.txt");
  EXPECT_EQ(awaitCalls(1, 300ms), 0);
  write(file_, "{}");
  EXPECT_EQ(awaitCalls(1), 1);
}

TEST_F(FileWatcherTest, ABusyNeighbourDoesNotPostponeTheCall) {
  start();
  write(file_, R"({"changed":true})");
  // A neighbour written every 10 ms, longer than the settle time: the watched file's change
  // is still reported once it settles.
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < 400ms) {
    write((dir_ / "busy.log").string(), "x");
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(awaitCalls(1, 10ms), 1);
}

TEST_F(FileWatcherTest, WatchReplacesTheSetAndReportsAMissingDirectory) {
  start();
  const std::string other = (dir_ / "other.json").string();
  std::string error;
  ASSERT_TRUE(watcher_->watch({other}, error)) << error;
  write(file_, R"({"no":"longer watched"})");
  EXPECT_EQ(awaitCalls(1, 300ms), 0);
  write(other, "{}");
  EXPECT_EQ(awaitCalls(1), 1);
  EXPECT_FALSE(watcher_->watch({"/nonexistent-dir-for-fledge/flags.json"}, error));
  EXPECT_NE(error.find("cannot watch directory \"/nonexistent-dir-for-fledge\""), std::string::npos) << error;
  write(other, R"({"still":"watched"})");  // the previous set stays
  EXPECT_EQ(awaitCalls(2), 2);
}

}  // namespace
}  // namespace fledge::proxy
