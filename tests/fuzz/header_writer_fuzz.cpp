// proxy/headers.hpp: the one place that checks every header line Fledge composes itself
// (appendHeaderLine, isFieldName, isFieldValue) and the percent-encoding of variant names in
// x-fledge-flags. Whatever is accepted must be exactly one line that an HTTP parser reads back
// as the same field; encoded text must stay in its alphabet and decode back to the input.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/field.hpp>

#include <string>
#include <string_view>

#include "proxy/headers.hpp"
#include "proxy/http_head.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
using fledge::fuzz::printable;
using namespace fledge::proxy;

// RFC 9110 §5.6.2 token, written independently of headers.cpp.
bool refFieldName(std::string_view s) {
  if (s.empty()) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(ch) == std::string_view::npos) return false;
  }
  return true;
}

// RFC 9110 §5.5 field-value without leading or trailing whitespace.
bool refFieldValue(std::string_view s) {
  if (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.back() == ' ' || s.back() == '\t')) return false;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (!(c == ' ' || c == '\t' || (c >= 0x21 && c <= 0x7e) || c >= 0x80)) return false;
  }
  return true;
}

void checkHeaderLine(std::string_view name, std::string_view value) {
  const std::string what = "name \"" + printable(name) + "\" value \"" + printable(value) + "\"";
  FUZZ_CHECK(isFieldName(name) == refFieldName(name), what);
  FUZZ_CHECK(isFieldValue(value) == refFieldValue(value), what);

  const std::string prefix = "x-before: 1\r\n";
  std::string out = prefix;
  const bool ok = appendHeaderLine(out, name, value);
  FUZZ_CHECK(ok == (isFieldName(name) && isFieldValue(value)), what);
  if (!ok) {
    FUZZ_CHECK(out == prefix, what);  // a refused line leaves nothing behind
    return;
  }
  const std::string_view line = std::string_view(out).substr(prefix.size());
  FUZZ_CHECK(line == std::string(name) + ": " + std::string(value) + "\r\n", what);
  const std::string_view body = line.substr(0, line.size() - 2);
  FUZZ_CHECK(body.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos, what);

  // An upstream parser reads the line back as one field with the same name and value (Beast also
  // checks the syntax of framing and Connection values, which is not this line's business).
  namespace http = boost::beast::http;
  switch (http::string_to_field(name)) {
    case http::field::content_length:
    case http::field::transfer_encoding:
    case http::field::connection:
    case http::field::proxy_connection:
    case http::field::upgrade:
      return;
    default:
      break;
  }
  const std::string msg = "GET / HTTP/1.1\r\n" + out + "\r\n";
  Head head;
  BodySink sink;
  HeadParser<true> parser(head, sink);
  parser.eager(true);
  boost::system::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(msg), ec);
  FUZZ_CHECK(!ec && parser.is_header_done() && used == msg.size(), what + ": " + ec.message());
  FUZZ_CHECK(head.size() == 2, what);
  FUZZ_CHECK(head.name(1) == name && head.value(1) == value, what + " read back as \"" + printable(head.name(1)) +
                                                                  "\": \"" + printable(head.value(1)) + "\"");
}

bool isUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }
int hexValue(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

void checkPercentEncoded(std::string_view s) {
  std::string out = "k=";
  appendPercentEncoded(out, s);
  const std::string_view enc = std::string_view(out).substr(2);
  const std::string what = "\"" + printable(s) + "\" -> \"" + printable(enc) + "\"";
  std::string decoded;
  for (std::size_t i = 0; i < enc.size(); ++i) {
    const char c = enc[i];
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                       c == '_' || c == '~' || c == '-';
    if (plain) {
      decoded += c;
      continue;
    }
    FUZZ_CHECK(c == '%' && i + 2 < enc.size(), what);
    FUZZ_CHECK(isUpperHex(enc[i + 1]) && isUpperHex(enc[i + 2]), what);
    decoded += static_cast<char>(hexValue(enc[i + 1]) * 16 + hexValue(enc[i + 2]));
    i += 2;
  }
  FUZZ_CHECK(decoded == s, what);
  // Encoded text is always a valid header value (it travels in x-fledge-flags).
  FUZZ_CHECK(isFieldValue(enc), what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fledge::fuzz::Bytes in(data, size);
  // The first byte is the name's length; the name is followed by the value.
  const std::size_t name_len = in.byte();
  std::string_view rest = in.rest();
  const std::string_view name = rest.substr(0, name_len);
  const std::string_view value = rest.substr(name.size());
  checkHeaderLine(name, value);
  checkHeaderLine("x-fledge-flags", value);
  checkPercentEncoded(rest);
  return 0;
}
