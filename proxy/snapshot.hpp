#pragma once
// An immutable, fully validated view of the configuration that the data plane runs on.
// Endpoints are resolved and routes compiled before a snapshot is published.
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string>
#include <vector>

#include "proxy/config.hpp"
#include "proxy/router.hpp"

namespace fledge::proxy {

struct ResolvedCluster {
  const ClusterConfig* config = nullptr;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;
  std::vector<std::string> names;  // "host:port" as configured, for logs
};

struct Snapshot {
  Config config;
  RouteTable routes;
  std::vector<ResolvedCluster> clusters;  // index-aligned with config.clusters

  explicit Snapshot(Config c) : config(std::move(c)), routes(config.routes) {}

  // Resolves every endpoint (numeric addresses and names, e.g. "localhost").
  static std::shared_ptr<const Snapshot> create(Config config, std::string& error);
};

// Resolves "host:port" to one endpoint, preferring IPv4 for names. Empty error on success.
std::string resolveHostPort(const HostPort& hp, boost::asio::ip::tcp::endpoint& out);

}  // namespace fledge::proxy
