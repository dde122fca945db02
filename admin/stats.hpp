#pragma once
// GET /api/v1/stats/...: the live numbers the web console draws (per-second series of a route's
// arms or an observed flag's variants, flag evaluation counts, endpoint health), read from the
// metrics the admin thread already keeps. Any token may read them.
#include <functional>
#include <memory>
#include <vector>

#include "admin/api.hpp"
#include "admin/http_server.hpp"
#include "admin/metrics.hpp"
#include "proxy/health.hpp"

namespace fledge::admin {

struct StatsSources {
  std::function<std::shared_ptr<const proxy::Snapshot>()> snapshot;  // the configuration served now
  const Metrics* metrics = nullptr;
  std::function<std::vector<proxy::HealthChecker::EndpointHealth>()> health;
};

// Registers GET /api/v1/stats/ on `server` (before AdminApi::install, whose prefix it shadows).
void installStats(HttpServer& server, StatsSources sources, std::vector<ApiToken> tokens);

// The answer to one stats request (tests call it directly).
Response statsEndpoint(const Request& req, const StatsSources& sources, const std::vector<ApiToken>& tokens);

}  // namespace fledge::admin
