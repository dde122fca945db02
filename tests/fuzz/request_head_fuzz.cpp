// Request heads (proxy/http_head.hpp HeadParser<true>) read as proxy/session.cpp reads them,
// with the configuration's header and body limits, then planned by proxy::plan — refusals,
// routing on the normalized path, flags, split arms, overrides, mirror sample — which composes
// the upstream head with proxy::appendRequestHead. The mirror copy's head is composed as
// Session::sendMirror does.
//
// Input: byte 0 the configuration (policies and limits), byte 1 the sink size, byte 2 the random
// seed, bytes 3-6 read sizes, then the bytes a client sends (up to three pipelined requests).
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/headers.hpp"
#include "proxy/http_head.hpp"
#include "proxy/planner.hpp"
#include "proxy/snapshot.hpp"
#include "tests/fuzz/fuzz.hpp"
#include "tests/fuzz/head_feed.hpp"

namespace {
namespace http = boost::beast::http;
using boost::beast::iequals;
using fledge::fuzz::printable;
using namespace fledge::proxy;
using namespace fledge::fuzz;

constexpr std::string_view kClientIp = "192.0.2.7";
constexpr std::string_view kRequestId = "0123456789abcdef0123456789abcdef";

// The demo's flags and routes, plus a route with every split feature and mirrors; four
// variants of the http policies and limits.
std::string configJson(int variant) {
  static constexpr const char* kHttp[] = {
      R"("http": {"path_normalization": "forward_normalized", "encoded_slashes": "reject", "underscores_in_headers": "drop"},
         "limits": {"max_header_bytes": 65536, "max_request_line": 8192, "max_headers": 100, "max_body_bytes": 0})",
      R"("http": {"path_normalization": "match_only", "encoded_slashes": "decode", "underscores_in_headers": "reject"},
         "limits": {"max_header_bytes": 1024, "max_request_line": 512, "max_headers": 100, "max_body_bytes": 4096})",
      R"("http": {"path_normalization": "reject", "encoded_slashes": "decode", "underscores_in_headers": "allow"},
         "limits": {"max_header_bytes": 256, "max_request_line": 128, "max_headers": 8, "max_body_bytes": 16})",
      R"("http": {"path_normalization": "forward_normalized", "encoded_slashes": "decode", "underscores_in_headers": "allow"},
         "limits": {"max_header_bytes": 8192, "max_request_line": 8192, "max_headers": 5, "max_body_bytes": 1})",
  };
  return std::string(R"({
    "listeners": [{"name": "main", "address": "127.0.0.1:8080"}],
    )") + kHttp[variant] + R"(,
    "flags": {
      "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
      "flags": {
        "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
          "targeting": {"if": [{"or": [{"in": [{"var": "plan"}, ["pro", "enterprise"]]}, {"$ref": "is_staff"}]}, "on", "off"]}},
        "banner-color": {"state": "ENABLED", "variants": {"red": "#c00", "green dark": "#0a0", "blue,=x": "#00c"},
          "defaultVariant": "red", "targeting": {"fractional": [["red", 50], ["green dark", 25], ["blue,=x", 25]]}},
        "beta-api": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
        "by-country": {"state": "ENABLED", "variants": {"eu": "eu", "us": "us", "none": ""}, "defaultVariant": null,
          "targeting": {"if": [{"in": [{"var": "country"}, ["de", "fr"]]}, "eu", {"==": [{"var": "country"}, "us"]}, "us", null]}}
      }
    },
    "evaluation_context": {
      "targeting_key": [{"header": "x-user-id"}, {"cookie": "uid"}, {"query": "uid"}],
      "attributes": {"plan": {"header": "x-plan"}, "email": {"header": "x-email"}, "country": {"query": "country"}}
    },
    "clusters": {
      "stable": {"endpoints": ["10.0.0.1:9001", "10.0.0.2:9001"]},
      "canary": {"endpoints": ["10.0.0.3:9002"]},
      "shadow": {"endpoints": ["[::1]:9003"]}
    },
    "routes": [
      {"name": "beta", "match": {"path_prefix": "/beta"}, "cluster": "canary",
       "require_flag": {"flag": "beta-api", "variant": "on", "status": 403}},
      {"name": "api", "match": {"host": "api.example.com", "path_prefix": "/v2/"}, "cluster": "canary", "flags": "*",
       "evaluation_context": {"targeting_key": [{"cookie": "session"}], "attributes": {"country": {"cookie": "cc"}}}},
      {"name": "shop", "match": {"host": "*.example.com", "path_prefix": "/shop"}, "flags": ["new-checkout", "by-country"],
       "split": {"arms": [{"name": "canary", "cluster": "canary", "weight": 10.5},
                          {"name": "stable", "cluster": "stable", "weight": 89.5}],
                 "sticky": [{"header": "x-user-id"}, {"cookie": "session"}],
                 "assign_cookie": {"name": "fledge_uid", "secure": true, "same_site": "Strict"},
                 "overrides": {"header": "x-force-arm", "cookie": "fledge_arm", "allow": ["canary"], "token": "t0ken"},
                 "expose_arm_header": true},
       "mirror": {"cluster": "shadow", "percent": 50, "max_body_bytes": 64}},
      {"name": "default", "match": {"path_prefix": "/"}, "cluster": "stable", "flags": ["new-checkout", "banner-color"],
       "mirror": {"cluster": "shadow", "percent": 100}}
    ]
  })";
}

const Snapshot& snapshot(int variant) {
  static std::shared_ptr<const Snapshot> snaps[4];
  if (!snaps[variant]) {
    auto r = parseConfig(configJson(variant));
    FUZZ_CHECK(r.ok(), r.errors.empty() ? "" : r.errors.front().str());
    std::string error;
    snaps[variant] = Snapshot::create(std::move(*r.config), error);
    FUZZ_CHECK(snaps[variant] != nullptr, error);
  }
  return *snaps[variant];
}

// The session's parser settings for a configuration (Session::prepareParser).
FeedOptions feedOptions(const Config& cfg, std::uint8_t sink_byte) {
  static constexpr std::size_t kSinks[] = {Exchange::kChunk, 1, 7, 100};
  FeedOptions o;
  o.header_limit = cfg.limits.max_header_bytes;
  o.body_limit = cfg.limits.max_body_bytes ? cfg.limits.max_body_bytes : UINT64_MAX;
  o.underscores = cfg.http.underscores_in_headers;
  o.sink_capacity = kSinks[sink_byte & 3];
  return o;
}

int hexValue(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

std::string percentDecoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Every line in `lines` is one CRLF-terminated header line.
void checkExtraLines(std::string_view lines, const std::string& what) {
  if (lines.empty()) return;
  checkLines(std::string(lines) + "\r\n", what + "\nextra lines: " + printable(lines));
  std::size_t at = 0;
  while (at < lines.size()) {
    const std::size_t eol = lines.find("\r\n", at);
    const std::string_view line = lines.substr(at, eol - at);
    const std::size_t colon = line.find(": ");
    FUZZ_CHECK(colon != std::string_view::npos && isFieldName(line.substr(0, colon)) &&
                   isFieldValue(line.substr(colon + 2)),
               what + "\nextra line: " + printable(line));
    at = eol + 2;
  }
}

// An upstream's parse of a composed head; returns the parser's view of it.
void parseComposed(std::string_view out, Head& head, const std::string& w) {
  BodySink sink;
  HeadParser<true> parser(head, sink);
  parser.header_limit(UINT32_MAX);
  parser.body_limit(boost::none);
  boost::system::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(out.data(), out.size()), ec);
  FUZZ_CHECK(!ec && parser.is_header_done() && used == out.size(), w + "\nupstream parse: " + ec.message());
}

void checkPlanned(const Head& in, const RequestFacts& facts, const Plan& p, const Exchange& x, const Snapshot& snap,
                  const std::string& what) {
  const Config& cfg = snap.config;
  const std::string_view out = x.out_head;
  const std::string w = what + "\ncomposed: " + printable(out, 2000);
  checkLines(out, what);
  FUZZ_CHECK(p.route < cfg.routes.size() && p.cluster < cfg.clusters.size(), w);
  const RouteConfig& route = cfg.routes[p.route];
  if (route.split) FUZZ_CHECK(p.arm < route.split->arms.size() && p.cluster == route.split->arms[p.arm].cluster_index, w);
  else FUZZ_CHECK(p.cluster == route.cluster_index, w);
  checkExtraLines(x.flags_header, what);
  checkExtraLines(x.down_extra, what);

  const std::string first = std::string(in.startA()) + " " + std::string(p.target) + " HTTP/1.1\r\n";
  FUZZ_CHECK(out.substr(0, first.size()) == first, w);
  FUZZ_CHECK(!p.target.empty() && (p.target[0] == '/' || p.target == "*"), w);

  Head head;
  parseComposed(out, head, w);
  auto one = [&](std::string_view name) {
    auto v = fieldValues(head, name);
    FUZZ_CHECK(v.size() == 1, w + "\nfield count of " + std::string(name) + ": " + std::to_string(v.size()));
    return v[0];
  };
  auto none = [&](std::string_view name) { FUZZ_CHECK(fieldValues(head, name).empty(), w + "\nunexpected " + std::string(name)); };

  FUZZ_CHECK(one("host") == p.host && isValidHost(p.host), w);
  for (auto name : {"connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "proxy-authorization", "expect"})
    none(name);
  for (std::size_t i = 0; i < head.size(); ++i) {
    std::string_view n = head.name(i);
    FUZZ_CHECK(!(n.size() >= 6 && iequals(n.substr(0, 6), "proxy-")), w);
    if (n.size() > 9 && iequals(n.substr(0, 9), "x-fledge-"))
      FUZZ_CHECK(iequals(n, "x-fledge-flags") || iequals(n, "x-fledge-arm"), w + "\nclient's x-fledge field forwarded");
  }
  if (route.split) FUZZ_CHECK(one("x-fledge-arm") == route.split->arms[p.arm].name, w);
  else none("x-fledge-arm");

  // x-fledge-flags: "key=variant" items of this route's flags, variants percent-encoded.
  if (x.flags_value.empty()) {
    none("x-fledge-flags");
  } else {
    FUZZ_CHECK(one("x-fledge-flags") == x.flags_value, w);
    const auto& set = *cfg.flag_set;
    std::string_view items = x.flags_value;
    while (!items.empty()) {
      const std::size_t comma = items.find(", ");
      const std::string_view it = items.substr(0, comma);
      items.remove_prefix(comma == std::string_view::npos ? items.size() : comma + 2);
      const auto eq = it.find('=');
      FUZZ_CHECK(eq != std::string_view::npos, w);
      const fledge::flags::Flag* f = set.find(it.substr(0, eq));
      FUZZ_CHECK(f && f->findVariant(percentDecoded(it.substr(eq + 1))), w + "\nx-fledge-flags item " + std::string(it));
      FUZZ_CHECK(route.all_flags || std::find(route.flags.begin(), route.flags.end(), f->key) != route.flags.end(), w);
    }
  }
  // Fields the client's Connection header named do not cross the hop (Host, framing and the
  // forwarding fields are Fledge's own).
  static constexpr std::string_view kOwn[] = {"host", "content-length", "transfer-encoding", "x-forwarded-for",
                                              "x-forwarded-proto", "x-forwarded-host", "via", "x-request-id",
                                              "x-fledge-flags", "x-fledge-arm"};
  for (auto named : fieldValues(in, "connection"))
    for (auto tok : http::token_list{named}) {
      std::string_view t(tok.data(), tok.size());
      bool own = false;
      for (auto o : kOwn) own |= iequals(t, o);
      if (!own) FUZZ_CHECK(fieldValues(head, t).empty(), w + "\nConnection-named field forwarded: " + std::string(t));
    }

  switch (p.framing) {
    case Framing::kLength:
      FUZZ_CHECK(facts.content_length && one("content-length") == std::to_string(*facts.content_length), w);
      none("transfer-encoding");
      break;
    case Framing::kChunked:
      none("content-length");
      FUZZ_CHECK(one("transfer-encoding") == "chunked" && facts.chunked, w);
      break;
    default:
      none("content-length");
      none("transfer-encoding");
      break;
  }
  FUZZ_CHECK(one("x-forwarded-for").ends_with(kClientIp), w);
  FUZZ_CHECK(one("x-forwarded-proto") == "http", w);
  if (!p.routed_host.empty()) FUZZ_CHECK(one("x-forwarded-host") == p.routed_host, w);
  else none("x-forwarded-host");
  FUZZ_CHECK(one("via").ends_with("1.1 fledge"), w);
  FUZZ_CHECK(!fieldValues(head, "x-request-id").empty(), w);

  // The shadow copy (Session::sendMirror): same head, its own framing and lines.
  if (p.mirror) {
    RequestHeadInfo info;
    info.method = in.startA();
    info.target = p.target;
    info.host = p.host;
    info.forwarded_host = p.routed_host;
    info.framing = p.framing != Framing::kNone ? Framing::kLength : Framing::kNone;
    info.content_length = 3;
    info.forward = ForwardInfo{kClientIp, "http", kRequestId};
    std::string extra = x.flags_header;
    extra += "x-fledge-shadow: 1\r\nConnection: close\r\n";
    info.extra = extra;
    std::string mirror;
    appendRequestHead(mirror, in, info);
    const std::string mw = what + "\nmirror: " + printable(mirror, 2000);
    checkLines(mirror, mw);
    Head mh;
    parseComposed(mirror, mh, mw);
    FUZZ_CHECK(fieldValues(mh, "x-fledge-shadow") == std::vector<std::string_view>{"1"}, mw);
    FUZZ_CHECK(fieldValues(mh, "connection") == std::vector<std::string_view>{"close"}, mw);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  const int variant = in.byte() & 3;
  const std::uint8_t sink_byte = in.byte();
  const std::uint8_t seed = in.byte();
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 4; ++i) {
    const std::uint8_t s = in.byte();
    sizes.push_back(s == 255 ? 0 : s + 1u);
  }
  const std::string_view payload = in.rest();
  const Snapshot& snap = snapshot(variant);
  const FeedOptions opt = feedOptions(snap.config, sink_byte);

  // Reference: the same bytes in one piece, into a sink that holds any body at once.
  std::vector<Fed> ref;
  {
    FeedOptions whole = opt;
    whole.sink_capacity = Exchange::kChunk;
    std::string_view input = payload;
    Pieces all;
    std::string buffer;
    for (int i = 0; i < 3; ++i) {
      Head head;
      BodySink sink;
      HeadParser<true> parser(head, sink);
      ref.push_back(feed(parser, sink, input, all, whole, buffer));
      if (!ref.back().done || (buffer.empty() && input.empty())) break;
    }
  }

  static Exchange x;  // a worker's exchanges are reused across requests
  static PlanScratch scratch;
  Random random(seed);
  std::string_view input = payload;
  Pieces pieces(sizes);
  std::string buffer;
  for (std::size_t i = 0; i < 3; ++i) {
    Head head;
    BodySink sink;
    HeadParser<true> parser(head, sink);
    const Fed fed = feed(parser, sink, input, pieces, opt, buffer);
    const std::string what = "request " + std::to_string(i) + " of \"" + printable(payload, 1000) + "\"";

    // Beast applies header_limit to the start line and to the fields separately, and to the
    // fields a put() sees, not to those consumed by earlier ones: a head can reach about three
    // times the limit (README "Fuzzing"), never more.
    if (fed.header_done)
      FUZZ_CHECK(fed.head_bytes <= 3ull * opt.header_limit, what + "\nhead of " + std::to_string(fed.head_bytes) +
                                                                 " bytes accepted with header_limit " +
                                                                 std::to_string(opt.header_limit));
    // Reading in pieces changes nothing a complete message means.
    if (i < ref.size()) {
      const Fed& r = ref[i];
      if (fed.header_done && r.header_done)
        FUZZ_CHECK(fed.consumed_head == r.consumed_head,
                   what + "\nin pieces:\n" + printable(fed.consumed_head) + "\nin one piece:\n" + printable(r.consumed_head));
      if (r.header_done && !r.ec && !fed.ec)
        FUZZ_CHECK(fed.header_done, what + "\nthe head was complete but reading it in pieces never finished it");
      if (fed.done && r.done) FUZZ_CHECK(fed.body == r.body, what + "\nbody differs when read in pieces");
      if (r.done && !fed.ec) FUZZ_CHECK(fed.done, what + "\nthe message was complete but reading it in pieces never finished it");
    }
    if (fed.done && fed.content_length && !fed.chunked) FUZZ_CHECK(fed.body.size() == *fed.content_length, what);
    if (fed.done) FUZZ_CHECK(fed.body.size() <= opt.body_limit, what);

    if (fed.header_done) {
      const RequestFacts facts{fed.version,
                               fed.method,
                               fed.chunked,
                               fed.content_length ? std::optional(*fed.content_length) : std::nullopt,
                               fed.has_body,
                               fed.keep_alive};
      // appendRequestHead keeps its lines whatever the planner would decide about this head.
      {
        RequestHeadInfo info;
        info.method = head.startA();
        info.target = head.startB();
        info.host = head.value(http::field::host);
        info.forwarded_host = info.host;
        info.framing = fed.chunked ? Framing::kChunked : fed.content_length ? Framing::kLength : Framing::kNone;
        info.content_length = fed.content_length.value_or(0);
        info.forward = ForwardInfo{kClientIp, "http", kRequestId};
        info.extra = "x-fledge-flags: new-checkout=on\r\n";
        std::string out;
        appendRequestHead(out, head, info);
        checkLines(out, what);
      }
      const Plan p = plan(head, facts, snap, kClientIp, kRequestId, random, scratch, x, nullptr, 1'800'000'000);
      if (p.status != 0) FUZZ_CHECK(p.status >= 400 && p.status <= 599 && *p.text, what);
      else checkPlanned(head, facts, p, x, snap, what);
    }
    if (!fed.done || (buffer.empty() && input.empty())) break;
  }
  return 0;
}
