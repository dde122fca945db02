#pragma once
// Header rewriting between the two hops of a proxied exchange (RFC 9110 §7.6.1).
#include <boost/beast/http/fields.hpp>

#include <string_view>

namespace fledge::proxy {

// Removes hop-by-hop fields: Connection and every field it names, Keep-Alive, TE, Trailer,
// Upgrade, and Proxy-*. Transfer-Encoding stays: the serializer re-frames the body from it.
void stripHopByHop(boost::beast::http::fields& fields);

struct ForwardInfo {
  std::string_view client_ip;
  std::string_view proto;       // "http"
  std::string_view request_id;  // used when the request has no X-Request-Id
};

// Appends the client to X-Forwarded-For, sets X-Forwarded-Proto and X-Forwarded-Host,
// appends to Via, and ensures an X-Request-Id.
void addForwardingHeaders(boost::beast::http::fields& fields, unsigned version, const ForwardInfo& info);

// Appends this hop to Via on a response.
void addVia(boost::beast::http::fields& fields, unsigned version);

}  // namespace fledge::proxy
