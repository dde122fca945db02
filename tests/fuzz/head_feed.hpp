#pragma once
// The read loops of proxy/session.cpp around HeadParser, for request_head and response_head:
// bytes arrive in pieces of fuzzer-chosen sizes; the head is parsed with explicit limits, then
// the body goes through a BodySink of fuzzer-chosen capacity that is drained ("relayed") each
// time it fills or the message ends. The same bytes fed as one piece are the reference the
// piecewise result must agree with.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/optional.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http_head.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace fledge::fuzz {

struct FeedOptions {
  std::uint32_t header_limit = 64 * 1024;
  std::uint64_t body_limit = UINT64_MAX;
  std::size_t sink_capacity = 64 * 1024;  // Exchange::kChunk
  proxy::UnderscoreHeaders underscores = proxy::UnderscoreHeaders::kAllow;
  bool skip_body = false;      // a response to HEAD
  bool eof_ends_body = false;  // responses: the upstream closing ends a close-delimited body
};

// Piece sizes for the reads: cycles through `sizes` (each 1..256 bytes; 0 = all that is left).
class Pieces {
 public:
  Pieces() = default;
  explicit Pieces(std::vector<std::size_t> sizes) : sizes_(std::move(sizes)) {}
  std::size_t next(std::size_t left) {
    if (sizes_.empty()) return left;
    std::size_t n = sizes_[i_++ % sizes_.size()];
    return n == 0 || n > left ? left : n;
  }

 private:
  std::vector<std::size_t> sizes_;
  std::size_t i_ = 0;
};

// What one message looked like to the session.
struct Fed {
  bool header_done = false;
  bool done = false;  // the whole message, body included
  boost::system::error_code ec;  // the first error, if any
  bool body_error = false;       // ec arose after the head
  std::string body;              // body bytes in relay order
  std::string consumed_head;     // start line + fields as the Head holds them, for comparing
  std::size_t head_bytes = 0;    // bytes the parser took for the head (skipped empty lines aside)
  unsigned version = 0;
  unsigned status = 0;
  boost::beast::http::verb method = boost::beast::http::verb::unknown;
  bool has_body = false;  // body bytes follow the head
  boost::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool keep_alive = false;
};

// The start line and fields as the Head holds them, for comparing two parses.
inline std::string describeHead(const proxy::Head& h) {
  std::string s = std::string(h.startA()) + " | " + std::string(h.startB()) + "\n";
  for (std::size_t i = 0; i < h.size(); ++i) s += std::string(h.name(i)) + ": " + std::string(h.value(i)) + "\n";
  return s;
}

// Reads one message from `input` (the bytes not yet read) as the session does; `buffer` keeps
// what was read but not consumed (pipelined data); `sink` is the one `parser` was made with.
// Empty lines before a request are skipped (RFC 9112 §2.2), and only before it.
// Session::parseBufferedHeader also skips them once Beast has consumed the start line or fields,
// so a head whose last CRLF arrives in a read of its own never completes (408), and
// "...\r\n\r" + "\nX: 1\r\n\r\n" adds X to the request (regressions/request_head/split-*);
// this models the fix.
template <bool isRequest>
Fed feed(proxy::HeadParser<isRequest>& parser, proxy::BodySink& sink, std::string_view& input, Pieces& pieces,
         const FeedOptions& opt, std::string& buffer) {
  namespace http = boost::beast::http;
  Fed r;
  auto read = [&]() {
    if (input.empty()) return false;
    std::size_t n = pieces.next(input.size());
    buffer.append(input.substr(0, n));
    input.remove_prefix(n);
    return true;
  };
  auto put = [&](boost::system::error_code& ec) {
    std::size_t used = parser.put(boost::asio::buffer(buffer.data(), buffer.size()), ec);
    FUZZ_CHECK(used <= buffer.size(), "parser consumed more than it was given");
    buffer.erase(0, used);
    return used;
  };
  std::unique_ptr<char[]> chunk(new char[opt.sink_capacity]);
  sink.reset(chunk.get(), opt.sink_capacity);

  parser.header_limit(opt.header_limit);
  parser.body_limit(boost::optional<std::uint64_t>(opt.body_limit));
  if constexpr (isRequest) parser.underscores(opt.underscores);
  if (opt.skip_body) parser.skip(true);

  // Head (Session::parseBufferedHeader, or Beast's read_header for responses).
  bool started = false;  // a byte of the start line was consumed
  while (!r.header_done) {
    if (isRequest && !started) {
      while (buffer.size() >= 2 && buffer.compare(0, 2, "\r\n") == 0) buffer.erase(0, 2);
      while (!buffer.empty() && buffer[0] == '\n') buffer.erase(0, 1);
    }
    if (!buffer.empty()) {
      boost::system::error_code ec;
      const std::size_t used = put(ec);
      r.head_bytes += used;
      if (used != 0) started = true;
      if (ec == http::error::need_more) ec = {};
      if (ec) {
        r.ec = ec;
        return r;
      }
      if (parser.is_header_done()) break;
    }
    if (!read()) return r;  // the peer went away mid-head
  }
  r.header_done = true;
  r.consumed_head = describeHead(parser.head());
  r.version = parser.version();
  r.status = parser.status();
  r.method = parser.method();
  r.has_body = !parser.is_done();
  r.content_length = parser.content_length();
  r.chunked = parser.chunked();
  r.keep_alive = parser.keep_alive();

  // Body (Session::readBody / pumpResponse), one sink-full at a time.
  auto relay = [&] {
    FUZZ_CHECK(sink.size <= sink.capacity, "sink overfilled");
    r.body.append(chunk.get(), sink.size);
    sink.reset(chunk.get(), opt.sink_capacity);
  };
  sink.reset(chunk.get(), opt.sink_capacity);
  while (!parser.is_done()) {
    boost::system::error_code ec;
    std::size_t used = 0;
    while (!buffer.empty() && sink.size < sink.capacity && !parser.is_done()) {
      used = put(ec);
      if (ec == http::error::need_more || ec == http::error::need_buffer) {
        ec = {};
        if (used == 0) break;
      } else if (ec) {
        break;
      }
    }
    if (ec) {
      r.ec = ec;
      r.body_error = true;
      return r;
    }
    if (parser.is_done() || sink.size == sink.capacity) {
      relay();
      continue;
    }
    if (!read()) {
      if (opt.eof_ends_body) {
        parser.put_eof(ec);
        if (ec) {
          r.ec = ec;
          r.body_error = true;
          return r;
        }
        FUZZ_CHECK(parser.is_done(), "put_eof without error left the parser unfinished");
        relay();
      }
      return r;
    }
  }
  if (sink.size != 0) relay();
  r.done = true;
  return r;
}

}  // namespace fledge::fuzz

namespace fledge::fuzz {

// A composed head is CRLF-delimited lines and nothing else: no bare CR or LF, no NUL, and
// exactly one empty line, at its end.
inline void checkLines(std::string_view out, const std::string& what) {
  const std::string w = what + "\ncomposed: " + printable(out, 2000);
  FUZZ_CHECK(out.size() >= 4 && out.substr(out.size() - 4) == "\r\n\r\n", w);
  FUZZ_CHECK(out.find("\r\n\r\n") == out.size() - 4, w);
  FUZZ_CHECK(out.find('\0') == std::string_view::npos, w);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\r') FUZZ_CHECK(i + 1 < out.size() && out[i + 1] == '\n', w);
    if (out[i] == '\n') FUZZ_CHECK(i > 0 && out[i - 1] == '\r', w);
  }
}

// Fields of `head` named `name` (case-insensitively).
inline std::vector<std::string_view> fieldValues(const proxy::Head& head, std::string_view name) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i < head.size(); ++i) {
    std::string_view n = head.name(i);
    if (n.size() != name.size()) continue;
    bool same = true;
    for (std::size_t k = 0; k < n.size() && same; ++k) {
      char a = n[k], b = name[k];
      if (a >= 'A' && a <= 'Z') a = static_cast<char>(a + 32);
      if (b >= 'A' && b <= 'Z') b = static_cast<char>(b + 32);
      same = a == b;
    }
    if (same) out.push_back(head.value(i));
  }
  return out;
}

}  // namespace fledge::fuzz
