#include "proxy/router.hpp"

namespace fledge::proxy {
namespace {

bool iequalsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

RouteTable::RouteTable(const std::vector<RouteConfig>& routes) {
  entries_.reserve(routes.size());
  for (const auto& r : routes) {
    Entry e;
    if (r.host.rfind("*.", 0) == 0) {
      e.wildcard = true;
      e.host = r.host.substr(1);  // ".example.com"
    } else {
      e.host = r.host;
    }
    e.path_prefix = r.path_prefix;
    entries_.push_back(std::move(e));
  }
}

std::string_view RouteTable::hostWithoutPort(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    return close == std::string_view::npos ? host : host.substr(0, close + 1);
  }
  auto colon = host.find(':');
  if (colon != std::string_view::npos) host = host.substr(0, colon);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  return host;
}

std::optional<std::size_t> RouteTable::match(std::string_view host, std::string_view path) const {
  host = hostWithoutPort(host);
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (!e.host.empty()) {
      if (e.wildcard) {
        // "*.example.com" matches "a.example.com" and "a.b.example.com", not "example.com".
        if (host.size() <= e.host.size() || !iequalsLower(host.substr(host.size() - e.host.size()), e.host)) continue;
      } else if (!iequalsLower(host, e.host)) {
        continue;
      }
    }
    if (!e.path_prefix.empty() && path.compare(0, e.path_prefix.size(), e.path_prefix) != 0) continue;
    return i;
  }
  return std::nullopt;
}

}  // namespace fledge::proxy
