#pragma once
// Builds the flag evaluation context from a request: targetingKey from the first configured
// source present, named attributes from headers/cookies/query parameters, and the built-in
// `request` object {ip, method, path, host}. Values are views into the request; only cookie and
// query decoding ever copies, into the arena.
#include <string_view>

#include "flags/value.hpp"
#include "proxy/config.hpp"
#include "proxy/http_head.hpp"

namespace fledge::proxy {

struct RequestView {
  const Head& head;           // fields of the request
  std::string_view target;    // origin-form target, with query
  std::string_view method;
  std::string_view host;
  std::string_view client_ip;
};

flags::Value buildContext(const ContextSpec& spec, const RequestView& req, flags::Arena& arena);

// Finds one value by source; empty view when absent. Exposed for tests.
std::string_view findSource(const ValueSource& src, const RequestView& req, flags::Arena& arena, bool& found);

}  // namespace fledge::proxy
