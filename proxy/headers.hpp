#pragma once
// Writing the heads of a proxied exchange (RFC 9110 §7.6): hop-by-hop fields removed, framing
// chosen by the proxy, forwarding fields added. Pure functions over a parsed Head.
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http_head.hpp"

namespace fledge::proxy {

// How a body is delimited on the outgoing hop.
enum class Framing {
  kNone,     // no body (request without one)
  kLength,   // Content-Length
  kChunked,  // Transfer-Encoding: ... chunked
  kClose,    // delimited by closing the connection (HTTP/1.0 clients)
  kAsIs,     // HEAD/304: repeat the upstream's Content-Length/Transfer-Encoding, send no body
};

struct ForwardInfo {
  std::string_view client_ip;
  std::string_view proto;       // "http"
  std::string_view request_id;  // used when the request has no X-Request-Id
};

// Every header line Fledge composes itself (x-fledge-*, Set-Cookie, Host) is checked here, so no
// configured or computed byte can end a line or start another.
bool isFieldName(std::string_view name);    // an RFC 9110 token
bool isFieldValue(std::string_view value);  // VCHAR, obs-text, SP and HTAB; no edge whitespace
// Appends "name: value\r\n" when both are valid; otherwise appends nothing and returns false.
bool appendHeaderLine(std::string& out, std::string_view name, std::string_view value);
// Percent-encodes (uppercase hex) every byte outside [A-Za-z0-9._~-]: how variant names travel
// in x-fledge-flags, where ',', '=' and spaces delimit.
void appendPercentEncoded(std::string& out, std::string_view s);

// True when the message's Transfer-Encoding is exactly "chunked" (one coding over all fields).
bool onlyChunked(const Head& head);

struct RequestHeadInfo {
  std::string_view method;
  std::string_view target;
  // Sent as Host, replacing the client's (RFC 9112 §3.2.2: the authority of an absolute-form
  // target, else the client's Host, else the upstream endpoint); never removable by Connection.
  std::string_view host;
  std::string_view forwarded_host;  // X-Forwarded-Host: the host the request was routed on
  Framing framing = Framing::kNone;
  std::uint64_t content_length = 0;
  ForwardInfo forward;
  std::string_view extra;  // complete header lines Fledge adds ("x-fledge-flags: ...\r\n")
};

struct ResponseHeadInfo {
  unsigned version = 11;  // the client's
  unsigned status = 200;
  std::string_view reason;
  Framing framing = Framing::kLength;
  std::uint64_t content_length = 0;
  bool keep_alive = true;
  std::string_view extra;  // complete header lines Fledge adds (x-fledge-arm, Set-Cookie)
};

// Appends an HTTP/1.1 upstream request head: Host, the client's fields minus Host, hop-by-hop
// ones, Expect and every x-fledge-* field (only Fledge may set those), then framing, `extra`,
// X-Forwarded-For (appended), X-Forwarded-Proto, X-Forwarded-Host, Via (appended), and
// X-Request-Id when absent.
void appendRequestHead(std::string& out, const Head& head, const RequestHeadInfo& info);

// Appends the downstream response head in the client's HTTP version.
void appendResponseHead(std::string& out, const Head& head, const ResponseHeadInfo& info);

}  // namespace fledge::proxy
