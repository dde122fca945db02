// BOOST_ASSERT in the fuzz build (BOOST_ENABLE_ASSERT_HANDLER): aborts as assert() does, except
// for one assertion in Boost 1.81's HTTP parser that is wrong, not the code it guards: a chunked
// body's last chunk "0\r\n" followed by fewer than two more bytes in the next put() trips
// `n >= 5` in basic_parser::parse_chunk_header (boostorg/beast#2861, fixed in Boost 1.86).
// The parser handles that input; only Debug builds of Fledge stop on it
// (regressions/response_head/beast-last-chunk-assert).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace boost {

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed%s%s\n", file, line, function, expr, msg ? ": " : "",
               msg ? msg : "");
  std::abort();
}

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
  if (std::strcmp(expr, "n >= 5") == 0 && std::string_view(file).ends_with("beast/http/impl/basic_parser.ipp")) return;
  assertion_failed_msg(expr, nullptr, function, file, line);
}

}  // namespace boost
