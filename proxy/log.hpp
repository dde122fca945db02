#pragma once
// Structured log lines (one JSON object per line) to stderr. Not for the per-request path:
// callers log start/stop, configuration problems and upstream failures.
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace fledge::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };

void setLevel(Level level);
bool setLevel(std::string_view name);
bool enabled(Level level);

using Field = std::pair<std::string_view, std::string>;

void write(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kDebug, m, f); }
inline void info(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kInfo, m, f); }
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kWarn, m, f); }
inline void error(std::string_view m, std::initializer_list<Field> f = {}) { write(Level::kError, m, f); }

// Appends `s` to `out` as a JSON string literal, escaping as RFC 8259 requires.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace fledge::log
