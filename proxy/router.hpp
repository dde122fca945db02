#pragma once
// Route table: first route whose host and path prefix match wins. Built once per config
// snapshot; matching is allocation-free.
#include <optional>
#include <string_view>
#include <vector>

#include "proxy/config.hpp"

namespace fledge::proxy {

class RouteTable {
 public:
  explicit RouteTable(const std::vector<RouteConfig>& routes);

  // `host` is the request's Host header value (port and case are ignored);
  // `path` is the request target. Returns the index into the route list.
  std::optional<std::size_t> match(std::string_view host, std::string_view path) const;

  // Strips an optional ":port" (IPv6 literals keep their brackets) and a trailing dot.
  static std::string_view hostWithoutPort(std::string_view host);

 private:
  struct Entry {
    std::string host;  // lowercased; for wildcards, the suffix ".example.com"
    bool wildcard = false;
    std::string path_prefix;
  };
  std::vector<Entry> entries_;
};

}  // namespace fledge::proxy
