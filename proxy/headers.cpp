#include "proxy/headers.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <string>
#include <vector>

namespace fledge::proxy {
namespace http = boost::beast::http;

void stripHopByHop(http::fields& f) {
  if (f.find(http::field::connection) != f.end()) {
    // Collect first: erasing while a token_list views the Connection value would dangle.
    // Same-named fields need not be adjacent, so walk the whole list.
    std::vector<std::string> named;
    for (const auto& field : f)
      if (field.name() == http::field::connection)
        for (auto tok : http::token_list{field.value()}) named.emplace_back(tok);
    for (const auto& n : named) {
      if (boost::beast::iequals(n, "transfer-encoding") || boost::beast::iequals(n, "content-length")) continue;
      f.erase(n);
    }
    f.erase(http::field::connection);
  }
  f.erase(http::field::keep_alive);
  f.erase(http::field::te);
  f.erase(http::field::trailer);
  f.erase(http::field::upgrade);
  f.erase(http::field::proxy_connection);
  // Proxy-Authorization, Proxy-Authenticate and any other Proxy-* field.
  for (auto it = f.begin(); it != f.end();) {
    auto name = it->name_string();
    if (name.size() >= 6 && boost::beast::iequals(name.substr(0, 6), "proxy-")) it = f.erase(it);
    else ++it;
  }
}

void addVia(http::fields& f, unsigned version) {
  std::string via;
  for (const auto& field : f) {
    if (field.name() != http::field::via) continue;
    via.append(field.value());
    via += ", ";
  }
  via += version == 10 ? "1.0 fledge" : "1.1 fledge";
  f.set(http::field::via, via);
}

void addForwardingHeaders(http::fields& f, unsigned version, const ForwardInfo& info) {
  // Several X-Forwarded-For lines are one comma list; keep them as one line with the client last.
  std::string xff;
  for (const auto& field : f) {
    if (!boost::beast::iequals(field.name_string(), "x-forwarded-for")) continue;
    if (!xff.empty()) xff += ", ";
    xff.append(field.value());
  }
  if (!xff.empty()) {
    f.erase("x-forwarded-for");
    xff += ", ";
  }
  xff.append(info.client_ip);
  f.set("X-Forwarded-For", xff);
  f.set("X-Forwarded-Proto", info.proto);
  auto host = f.find(http::field::host);
  if (host != f.end()) f.set("X-Forwarded-Host", std::string(host->value()));
  else f.erase("x-forwarded-host");
  addVia(f, version);
  if (f.find("x-request-id") == f.end()) f.set("X-Request-Id", info.request_id);
}

}  // namespace fledge::proxy
