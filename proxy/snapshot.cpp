#include "proxy/snapshot.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

namespace fledge::proxy {
namespace asio = boost::asio;
using asio::ip::tcp;

std::string resolveHostPort(const HostPort& hp, tcp::endpoint& out) {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(hp.host, ec);
  if (!ec) {
    out = tcp::endpoint(addr, hp.port);
    return {};
  }
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
  if (ec || results.empty()) return "cannot resolve \"" + hp.host + "\": " + (ec ? ec.message() : "no address");
  out = results.begin()->endpoint();
  for (const auto& r : results) {
    if (r.endpoint().address().is_v4()) {
      out = r.endpoint();
      break;
    }
  }
  return {};
}

std::shared_ptr<const Snapshot> Snapshot::create(Config config, std::string& error) {
  auto snap = std::make_shared<Snapshot>(std::move(config));
  snap->clusters.reserve(snap->config.clusters.size());
  for (std::size_t ci = 0; ci < snap->config.clusters.size(); ++ci) {
    const auto& cc = snap->config.clusters[ci];
    ResolvedCluster rc;
    rc.config = &cc;
    for (std::size_t ei = 0; ei < cc.endpoints.size(); ++ei) {
      tcp::endpoint ep;
      std::string err = resolveHostPort(cc.endpoints[ei], ep);
      if (!err.empty()) {
        error = "clusters." + cc.name + ".endpoints[" + std::to_string(ei) + "]: " + err;
        return nullptr;
      }
      rc.endpoints.push_back(ep);
      rc.names.push_back(cc.endpoints[ei].str());
    }
    snap->clusters.push_back(std::move(rc));
  }
  return snap;
}

}  // namespace fledge::proxy
