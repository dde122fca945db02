#pragma once
// The memory an exchange works in: I/O buffers, the parsed heads and the lines Fledge composes.
// A worker keeps a bounded stock of them; a connection holds one only while a request is in
// flight (or pipelined bytes wait), so an idle keep-alive connection costs little more than its
// socket, and a new connection takes warm memory instead of allocating and zeroing its own.
#include <boost/beast/core/flat_buffer.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/http_head.hpp"

namespace fledge::proxy {

struct Exchange {
  static constexpr std::size_t kChunk = 64 * 1024;

  Exchange() : chunk(new char[kChunk]) {  // not zeroed: untouched pages cost no memory
    // Beast reads into a flat_buffer's spare capacity (at least 512 bytes): give it room so
    // large bodies move in big reads, not 512-byte ones.
    buf.reserve(kChunk);
    ubuf.reserve(kChunk);
  }

  boost::beast::flat_buffer buf;   // downstream bytes; pipelined bytes stay across requests
  boost::beast::flat_buffer ubuf;  // upstream bytes of the current exchange
  Head req_head, res_head;         // reused arenas: no allocation per request once warm
  BodySink sink;
  std::optional<HeadParser<true>> req;
  std::optional<HeadParser<false>> res;
  std::string flags_header;  // lines Fledge adds upstream: x-fledge-flags, x-fledge-arm
  std::string flags_value;   // the x-fledge-flags value (also logged)
  // The variants this request got of the flags whose outcomes are counted (metrics.flag_outcomes):
  // the response is counted for each of them.
  struct Outcome {
    std::uint8_t slot;
    std::int16_t variant;  // -1: no value
  };
  std::array<Outcome, MetricsConfig::kMaxFlagOutcomes> outcomes{};
  std::uint8_t outcome_count = 0;
  std::string down_extra;    // lines Fledge adds to the response: x-fledge-arm, Set-Cookie
  std::string mirror_body;
  std::string out_head;      // the head to send with the next body piece
  std::string scratch;       // local replies, 100-continue, Set-Cookie values
  std::string normalized;       // the normalized path (and query) when it differs from the target's
  std::string absolute_target;  // "/?query" for an absolute-form target without a path
  std::unique_ptr<char[]> chunk;  // body bytes between a read and a write
};

class ExchangePool {
 public:
  static constexpr std::size_t kKeep = 64;  // warm exchanges kept per worker
  std::unique_ptr<Exchange> take() {
    if (free_.empty()) return std::make_unique<Exchange>();
    auto x = std::move(free_.back());
    free_.pop_back();
    return x;
  }
  void give(std::unique_ptr<Exchange> x) {
    if (!x || free_.size() >= kKeep) return;
    x->buf.clear();
    x->ubuf.clear();
    x->req.reset();
    x->res.reset();
    if (x->mirror_body.capacity() > Exchange::kChunk) std::string().swap(x->mirror_body);
    free_.push_back(std::move(x));
  }
  std::size_t size() const { return free_.size(); }

 private:
  std::vector<std::unique_ptr<Exchange>> free_;
};

}  // namespace fledge::proxy
