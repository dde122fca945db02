// Upstream response heads (proxy/http_head.hpp HeadParser<false>) read as proxy/session.cpp
// reads them — interim 1xx heads skipped, the body relayed through a BodySink — then
// re-serialized for the client by proxy::appendResponseHead (proxy/headers.hpp).
//
// Input: byte 0 the client's request (HEAD, HTTP/1.0, keep-alive) and sink size, bytes 1-4
// read sizes, then the bytes the upstream sends.
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/headers.hpp"
#include "proxy/http_head.hpp"
#include "tests/fuzz/fuzz.hpp"
#include "tests/fuzz/head_feed.hpp"

namespace {
namespace http = boost::beast::http;
using boost::beast::iequals;
using fledge::fuzz::printable;
using namespace fledge::proxy;
using namespace fledge::fuzz;

constexpr std::string_view kExtra = "x-fledge-arm: canary\r\nSet-Cookie: fledge_uid=0123abcd; Path=/; Max-Age=2592000; SameSite=Lax; HttpOnly\r\n";
constexpr std::size_t kMaxHeads = 4;  // interim heads and the final one

struct Options {
  FeedOptions feed;
  std::vector<std::size_t> pieces;
  bool head_request = false;
  unsigned client_version = 11;
  bool keep_alive = true;
};

Options options(Bytes& in) {
  Options o;
  const std::uint8_t a = in.byte();
  static constexpr std::size_t kSinks[] = {64 * 1024, 1, 7, 100};
  o.head_request = a & 1;
  o.client_version = (a & 2) ? 10 : 11;
  o.keep_alive = (a & 4) == 0;
  o.feed.sink_capacity = kSinks[(a >> 3) & 3];
  o.feed.header_limit = 64 * 1024;  // Session's kResponseHeaderLimit
  o.feed.skip_body = o.head_request;
  o.feed.eof_ends_body = true;
  for (int i = 0; i < 4; ++i) {
    const std::uint8_t s = in.byte();
    o.pieces.push_back(s == 255 ? 0 : s + 1u);
  }
  return o;
}

// Transfer codings listed in a head's Transfer-Encoding fields, lowercased, in order.
std::vector<std::string> codings(const Head& head) {
  std::vector<std::string> out;
  for (auto v : fieldValues(head, "transfer-encoding"))
    for (auto tok : http::token_list{v}) {
      std::string t(tok.data(), tok.size());
      for (char& c : t)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      out.push_back(t);
    }
  return out;
}

// The client's view of the composed head.
void checkComposed(const Head& up, const Fed& fed, const ResponseHeadInfo& info, std::string_view out,
                   const std::string& what) {
  checkLines(out, what);
  const std::string w = what + "\ncomposed: " + printable(out, 2000);
  const std::string first = std::string(info.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(info.status) + " ";
  FUZZ_CHECK(out.substr(0, first.size()) == first, w);

  Head head;
  BodySink sink;
  HeadParser<false> parser(head, sink);
  parser.header_limit(UINT32_MAX);
  parser.body_limit(boost::none);
  if (info.framing == Framing::kAsIs) parser.skip(true);  // HEAD, 204, 304: no body follows
  boost::system::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(out.data(), out.size()), ec);
  FUZZ_CHECK(!ec && parser.is_header_done() && used == out.size(), w + "\nclient parse: " + ec.message());
  FUZZ_CHECK(parser.status() == info.status && parser.version() == info.version, w);

  auto count = [&](std::string_view name) { return fieldValues(head, name).size(); };
  for (auto name : {"keep-alive", "te", "trailer", "upgrade", "proxy-connection", "proxy-authenticate"})
    FUZZ_CHECK(count(name) == 0, w + "\nhop-by-hop field forwarded: " + name);
  FUZZ_CHECK(fieldValues(head, "x-fledge-arm") == std::vector<std::string_view>{"canary"}, w);
  FUZZ_CHECK(count("set-cookie") >= 1, w);
  // Connection is Fledge's own: close, keep-alive for an HTTP/1.0 client, else absent.
  const auto conn = fieldValues(head, "connection");
  if (!info.keep_alive && info.version == 11) FUZZ_CHECK(conn == std::vector<std::string_view>{"close"}, w);
  else if (info.keep_alive && info.version == 10) FUZZ_CHECK(conn == std::vector<std::string_view>{"keep-alive"}, w);
  else FUZZ_CHECK(conn.empty(), w);
  FUZZ_CHECK(parser.keep_alive() == info.keep_alive, w);
  // Fields the upstream's Connection header named stay on the upstream hop.
  static constexpr std::string_view kOwn[] = {"content-length", "transfer-encoding", "connection", "x-fledge-arm",
                                              "set-cookie"};
  for (auto named : fieldValues(up, "connection"))
    for (auto tok : http::token_list{named}) {
      std::string_view t(tok.data(), tok.size());
      bool own = false;
      for (auto o : kOwn) own |= iequals(t, o);
      if (!own) FUZZ_CHECK(count(t) == 0, w + "\nConnection-named field forwarded: " + std::string(t));
    }

  // Framing: the codings the upstream applied stay declared (except a final chunked, which the
  // parser removed, and identity); the body's length is stated exactly once.
  std::vector<std::string> applied = codings(up);
  if (fed.chunked) applied.pop_back();
  std::erase(applied, "identity");
  const std::vector<std::string> declared = codings(head);
  // Known gap, not checked: a chunked the parser did not decode (not the final coding, or
  // listed twice) is left out of the declared codings, though the relayed bytes still carry it
  // (regressions/response_head/nonfinal-chunked). RFC 9112 §6.1 forbids applying chunked twice,
  // and declaring it would break the client's framing: the session should refuse such a
  // response (502), as the planner refuses such requests.
  const bool undecoded_chunked = std::find(applied.begin(), applied.end(), "chunked") != applied.end();
  switch (info.framing) {
    case Framing::kLength:
      FUZZ_CHECK(fieldValues(head, "content-length") == std::vector<std::string_view>{std::to_string(info.content_length)}, w);
      FUZZ_CHECK(declared.empty(), w);
      // Known gap, not checked: Beast frames "Transfer-Encoding: gzip" followed by a
      // Content-Length by the length, and the session relays it with the length and without
      // the coding, where RFC 9112 §6.3 has the coding win and the body end at close
      // (regressions/response_head/te-then-content-length).
      if (fieldValues(up, "transfer-encoding").empty()) FUZZ_CHECK(applied.empty(), w);
      break;
    case Framing::kChunked: {
      FUZZ_CHECK(count("content-length") == 0 && parser.chunked(), w);
      applied.push_back("chunked");
      if (!undecoded_chunked) FUZZ_CHECK(declared == applied, w + "\ntransfer codings changed");
      break;
    }
    case Framing::kClose:
      FUZZ_CHECK(count("content-length") == 0 && !parser.chunked(), w);
      if (!undecoded_chunked) FUZZ_CHECK(declared == applied, w + "\ntransfer codings changed");
      break;
    case Framing::kAsIs:
      FUZZ_CHECK(fieldValues(head, "content-length") == fieldValues(up, "content-length"), w);
      FUZZ_CHECK(fieldValues(head, "transfer-encoding") == fieldValues(up, "transfer-encoding"), w);
      break;
    case Framing::kNone: FUZZ_CHECK(false, w); break;
  }
}

// Reads one exchange's response the way the session does; `ref` (if any) is the same bytes
// read in one piece.
std::vector<Fed> readResponse(std::string_view input, const Options& o, Pieces pieces, FeedOptions feed_opt,
                              const std::vector<Fed>* ref) {
  std::vector<Fed> out;
  const std::string_view payload = input;
  std::string buffer;
  for (std::size_t i = 0; i < kMaxHeads; ++i) {
    Head head;
    BodySink sink;
    HeadParser<false> parser(head, sink);
    // An interim head says nothing about the final one's body: each gets a fresh parser.
    Fed fed = feed(parser, sink, input, pieces, feed_opt, buffer);
    out.push_back(fed);
    const std::string what = "response " + std::to_string(i) + " of \"" + printable(payload, 1000) + "\"";
    if (ref && i < ref->size()) {
      const Fed& r = (*ref)[i];
      if (fed.header_done && r.header_done)
        FUZZ_CHECK(fed.consumed_head == r.consumed_head,
                   what + "\nin pieces:\n" + printable(fed.consumed_head) + "\nin one piece:\n" + printable(r.consumed_head));
      if (r.header_done && !r.ec && !fed.ec) FUZZ_CHECK(fed.header_done, what + "\nhead never completed in pieces");
      if (fed.done && r.done) FUZZ_CHECK(fed.body == r.body, what + "\nbody differs when read in pieces");
      if (r.done && !fed.ec) FUZZ_CHECK(fed.done, what + "\nmessage never completed in pieces");
    }
    if (!fed.header_done) break;
    if (fed.done && fed.content_length && !fed.chunked && !o.head_request && fed.status != 204 && fed.status != 304 &&
        fed.status >= 200)
      FUZZ_CHECK(fed.body.size() == *fed.content_length, what);

    const unsigned status = fed.status;
    if (status < 100 || status > 599) break;  // 502
    if (status < 200) {
      if (status == 101) break;  // 502
      FUZZ_CHECK(fed.body.empty(), what);
      continue;  // interim: not relayed
    }
    if (!ref) break;  // the reference only records
    const bool body_expected = !o.head_request && status != 204 && status != 304;
    ResponseHeadInfo info;
    info.version = o.client_version;
    info.status = status;
    info.reason = head.startA();
    info.keep_alive = o.keep_alive;
    if (!body_expected) {
      info.framing = Framing::kAsIs;
      FUZZ_CHECK(fed.body.empty(), what);
    } else if (fed.content_length && !fed.chunked) {
      info.framing = Framing::kLength;
      info.content_length = *fed.content_length;
    } else if (o.client_version == 11) {
      info.framing = Framing::kChunked;
    } else {
      info.framing = Framing::kClose;
      info.keep_alive = false;
    }
    info.extra = kExtra;
    std::string composed;
    appendResponseHead(composed, head, info);
    checkComposed(head, fed, info, composed, what);
    break;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const Options o = options(in);
  const std::string_view payload = in.rest();
  FeedOptions whole = o.feed;
  whole.sink_capacity = 64 * 1024;
  const std::vector<Fed> ref = readResponse(payload, o, Pieces(), whole, nullptr);
  readResponse(payload, o, Pieces(o.pieces), o.feed, &ref);
  return 0;
}
