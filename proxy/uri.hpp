#pragma once
// Request-target checks and path normalization (RFC 3986 §6.2.2, RFC 9112 §3.2). Pure functions:
// routing matches the normalized path so `//beta`, `/./beta`, `/x/../beta` and `/%62eta` cannot
// slip past a route on `/beta`; what is forwarded depends on the configured policy.
#include <string>
#include <string_view>

namespace fledge::proxy {

// What to do with %2F, %5C and a raw '\' in a path: refuse the request, or treat them as '/'.
enum class EncodedSlashes { kReject, kDecode };

enum class PathStatus {
  kNormal,   // already normalized: use the input (`out` holds nothing useful)
  kChanged,  // `out` holds the normalized path
  kBad,      // malformed or refused (bad escape, %00, encoded slash under kReject, '#')
};

// Normalizes the path part of an origin-form target (no query): percent-decodes unreserved
// characters, uppercases the hex of the remaining escapes, removes dot segments and merges
// repeated slashes. `path` must start with '/'.
PathStatus normalizePath(std::string_view path, EncodedSlashes slashes, std::string& out);

// A Host header value or absolute-form authority: reg-name, IPv4 or [IPv6], optional :port
// (RFC 3986 §3.2.2, without userinfo). Empty is valid (HTTP/1.1 allows an empty Host).
bool isValidHost(std::string_view host);

}  // namespace fledge::proxy
