#pragma once
// Shared pieces of the libFuzzer targets: invariant checks that abort (libFuzzer keeps the input
// as a crash) and slicing of the fuzzer's bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts with the condition and a message when an invariant does not hold.
#define FUZZ_CHECK(cond, what)                                                                   \
  do {                                                                                           \
    if (!(cond)) ::fledge::fuzz::fail(#cond, what, __FILE__, __LINE__);                          \
  } while (0)

namespace fledge::fuzz {

[[noreturn]] inline void fail(const char* cond, std::string_view what, const char* file, int line) {
  std::fprintf(stderr, "\n%s:%d: invariant failed: %s\n  %.*s\n", file, line, cond, static_cast<int>(what.size()),
               what.data());
  std::abort();
}

// `s` with control and non-ASCII bytes as \xNN, for failure messages.
inline std::string printable(std::string_view s, std::size_t max = 400) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s.substr(0, max)) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

// Reads the fuzzer's bytes front to back: control bytes first, then the payload.
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : s_(reinterpret_cast<const char*>(data), size) {}
  // The next byte, or 0 once the input is used up.
  std::uint8_t byte() {
    if (s_.empty()) return 0;
    auto b = static_cast<std::uint8_t>(s_.front());
    s_.remove_prefix(1);
    return b;
  }
  // Everything up to the first `sep` (removed), or all that is left when there is none.
  std::string_view until(std::string_view sep) {
    auto at = s_.find(sep);
    std::string_view part = s_.substr(0, at);
    s_.remove_prefix(at == std::string_view::npos ? s_.size() : at + sep.size());
    return part;
  }
  std::string_view rest() const { return s_; }

 private:
  std::string_view s_;
};

}  // namespace fledge::fuzz
