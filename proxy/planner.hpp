#pragma once
// Request planning: from a parsed request head and the configuration the request pinned, decide
// everything about the exchange before any I/O — refusals, the route, flag results, the arm and
// tester overrides, the mirror sample and the upstream head. A function of its inputs only: the
// random source is a seeded generator and counters go to the metrics view passed in, so every
// decision is unit-tested without a socket (tests/proxy/planner_test.cpp).
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

#include "flags/flag_set.hpp"
#include "proxy/exchange.hpp"
#include "proxy/headers.hpp"
#include "proxy/metrics.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {

// splitmix64: sampled arms and mirror decisions, request ids and assigned visitor ids.
class Random {
 public:
  explicit Random(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next();
  void requestId(char out[32]);  // 128 random bits as 32 lowercase hex digits

 private:
  std::uint64_t s_;
};

// What the parser learned about the request besides its head.
struct RequestFacts {
  unsigned version = 11;  // 10 or 11 (anything else is refused)
  boost::beast::http::verb method = boost::beast::http::verb::get;
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool has_body = false;  // body bytes follow the head
  bool keep_alive = true;
  bool secure = false;  // arrived over TLS (X-Forwarded-Proto: https)
  std::uint16_t redirect_https_port = 0;  // non-zero: a redirect-to-HTTPS listener
};

// Reused evaluation memory (one per worker: requests are planned one at a time).
struct PlanScratch {
  flags::Arena arena;
  flags::EvalScratch eval;
};

struct Plan {
  unsigned status = 0;       // non-zero: Fledge answers the request itself with this status
  const char* text = "";     // ... and this body
  bool close = false;        // ... and closes the connection after it
  std::string_view location;  // ... with this Location (a redirect)
  bool client_close = false;  // the client asked to close
  bool head = false;          // a HEAD request
  bool expect_continue = false;  // Fledge answers 100 Continue before reading the body
  std::size_t route = 0;      // the routes' count when none matched
  std::size_t arm = 0;
  std::size_t cluster = 0;
  const MirrorConfig* mirror = nullptr;  // sampled for a shadow copy (admission is the caller's)
  Framing framing = Framing::kNone;      // of the upstream request body
  // For the upstream head and the mirror copy: views into the head, the exchange or `snap`.
  std::string_view target, host, routed_host;
};

// Plans `head` on `snap`. Composes into `x`: out_head (the upstream request head), flags_value,
// flags_header (x-fledge-* lines), down_extra (response lines), normalized, absolute_target.
// `metrics` (may be null) counts flag evaluations and overrides.
Plan plan(const Head& head, const RequestFacts& facts, const Snapshot& snap, std::string_view client_ip,
          std::string_view request_id, Random& random, PlanScratch& scratch, Exchange& x, WorkerMetrics* metrics,
          std::int64_t now_seconds);

}  // namespace fledge::proxy
