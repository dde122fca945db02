#include "proxy/log.hpp"

#include "flags/value.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <unistd.h>

namespace fledge::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};
std::mutex g_mu;

const char* levelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "info";
}
}  // namespace

void setLevel(Level level) { g_level.store(static_cast<int>(level), std::memory_order_relaxed); }

bool setLevel(std::string_view name) {
  for (auto l : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (name == levelName(l)) {
      setLevel(l);
      return true;
    }
  }
  return false;
}

std::string_view levelName() { return levelName(static_cast<Level>(g_level.load(std::memory_order_relaxed))); }

bool enabled(Level level) { return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed); }

void appendJsonString(std::string& out, std::string_view s) { flags::appendJson(out, flags::Value::string(s)); }

bool Limiter::allow(std::uint64_t& suppressed) {
  return allow(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count(),
               suppressed);
}

bool Limiter::allow(std::int64_t now, std::uint64_t& suppressed) {
  auto second = second_.load(std::memory_order_relaxed);
  if (second != now && second_.compare_exchange_strong(second, now, std::memory_order_relaxed)) count_.store(0, std::memory_order_relaxed);
  if (count_.fetch_add(1, std::memory_order_relaxed) < kPerSecond) {
    suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

namespace {
void writeLine(Level level, std::string_view msg, std::initializer_list<Field> fields, const Field* extra);
}

void limited(Limiter& limiter, Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  std::uint64_t suppressed = 0;
  if (!limiter.allow(suppressed)) return;
  if (suppressed == 0) return writeLine(level, msg, fields, nullptr);
  const Field extra{"suppressed", std::to_string(suppressed)};
  writeLine(level, msg, fields, &extra);
}

void write(Level level, std::string_view msg, std::initializer_list<Field> fields) {
  if (!enabled(level)) return;
  writeLine(level, msg, fields, nullptr);
}

namespace {
void writeLine(Level level, std::string_view msg, std::initializer_list<Field> fields, const Field* extra) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  std::string line;
  line.reserve(128);
  line += "{\"ts\":\"";
  line += ts;
  line += "\",\"level\":\"";
  line += levelName(level);
  line += "\",\"msg\":";
  appendJsonString(line, msg);
  auto field = [&](const Field& f) {
    line.push_back(',');
    appendJsonString(line, f.first);
    line.push_back(':');
    appendJsonString(line, f.second);
  };
  for (const auto& f : fields) field(f);
  if (extra) field(*extra);
  line += "}\n";
  std::lock_guard lock(g_mu);
  // One write(2) per line so lines from several threads never interleave.
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
}
}  // namespace

}  // namespace fledge::log
