#pragma once
// An immutable, fully validated view of the configuration that the data plane runs on.
// Endpoints are resolved and routes compiled before a snapshot is published.
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

#include "flags/flag_set.hpp"
#include "proxy/config.hpp"
#include "proxy/http_head.hpp"
#include "proxy/router.hpp"
#include "proxy/split.hpp"
#include "proxy/tls.hpp"

namespace fledge::proxy {

struct ResolvedCluster {
  const ClusterConfig* config = nullptr;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  std::vector<std::string> names;  // "host:port" as configured, for logs
  std::shared_ptr<const ClientTls> tls;  // the cluster speaks TLS to its endpoints
  std::vector<std::string> tls_names;    // per endpoint: the name sent (SNI) and verified
};

// What a route evaluates per request, resolved against the flag set.
struct RouteFlags {
  std::vector<const flags::Flag*> flags;  // sorted by key, for x-fledge-flags
  const ContextSpec* context = nullptr;   // the route's, else the global one
  const flags::Flag* require = nullptr;
  std::string_view require_variant;
  unsigned require_status = 404;
  bool active() const { return !flags.empty() || require; }
};

// A route's split, compiled: cumulative weights and the header lines each arm adds.
struct RouteSplit {
  const SplitConfig* config = nullptr;  // nullptr: the route has a plain cluster
  SplitTable table;
  std::vector<std::string> upstream_lines;  // "x-fledge-arm: canary\r\n"
  std::uint32_t override_header_key = 0;    // fieldKey of overrides->header
  std::size_t armIndex(std::string_view name) const {
    for (std::size_t i = 0; i < config->arms.size(); ++i)
      if (config->arms[i].name == name) return i;
    return config->arms.size();
  }
};

struct Snapshot {
  Config config;
  RouteTable routes;
  std::vector<ResolvedCluster> clusters;  // index-aligned with config.clusters
  std::vector<RouteFlags> route_flags;    // index-aligned with config.routes
  std::vector<RouteSplit> route_splits;   // index-aligned with config.routes
  // x-fledge-flags items, [flag index in the set][variant index]: "key=variant" with the variant
  // percent-encoded (keys are names, [A-Za-z0-9._-]), so a request only concatenates them.
  std::vector<std::vector<std::string>> flag_items;
  // metrics.flag_outcomes: for each flag in the set, its slot there, or -1 (not counted).
  std::vector<std::int16_t> outcome_slot;

  explicit Snapshot(Config c) : config(std::move(c)), routes(config.routes) {}

  // Resolves every endpoint (numeric addresses and names, e.g. "localhost").
  static std::shared_ptr<const Snapshot> create(Config config, std::string& error);
};

// Resolves "host:port" to one endpoint, preferring IPv4 for names. Empty error on success.
std::string resolveHostPort(const HostPort& hp, boost::asio::ip::tcp::endpoint& out);

}  // namespace fledge::proxy
