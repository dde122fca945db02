#pragma once
// Structured log lines (one JSON object per line) to stderr. Not for the per-request path:
// callers log start/stop, configuration problems and upstream failures.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace fledge::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };

void setLevel(Level level);
bool setLevel(std::string_view name);
bool enabled(Level level);
std::string_view levelName();  // the current level: "debug", "info", "warn" or "error"

using Field = std::pair<std::string_view, std::string>;

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kDebug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kInfo, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kWarn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kError, m, f); }

// Failure lines from the data plane: at most kPerSecond lines per second per limiter (one per
// kind of failure), so an outage cannot make every worker queue on stderr. The first line let
// through after some were held back carries "suppressed": N.
class Limiter {
 public:
  static constexpr std::uint32_t kPerSecond = 10;
  bool allow(std::uint64_t& suppressed);
  bool allow(std::int64_t now_seconds, std::uint64_t& suppressed);  // with an injected clock

 private:
  std::atomic<std::int64_t> second_{-1};
  std::atomic<std::uint32_t> count_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

void limited(Limiter& limiter, Level level, std::string_view msg, std::initializer_list<Field> fields = {});

// Appends `s` to `out` as a JSON string literal, escaping as RFC 8259 requires.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace fledge::log
