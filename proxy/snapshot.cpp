#include "proxy/snapshot.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <algorithm>

#include "proxy/headers.hpp"

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
      if (cc.tls) rc.tls_names.push_back(cc.tls->server_name.empty() ? cc.endpoints[ei].host : cc.tls->server_name);
    }
    if (cc.tls) {
      std::string err;
      rc.tls = ClientTls::obtain(*cc.tls, err);
      if (!rc.tls) {
        error = "clusters." + cc.name + ".tls: " + err;
        return nullptr;
      }
    }
    snap->clusters.push_back(std::move(rc));
  }
  const auto* set = snap->config.flag_set.get();
  if (set) {
    for (const auto& f : set->flags()) {
      auto& items = snap->flag_items.emplace_back();
      for (const auto& v : f.variants) {
        std::string item;
        appendPercentEncoded(item, f.key);
        item += '=';
        appendPercentEncoded(item, v.name);
        items.push_back(std::move(item));
      }
    }
  }
  if (set) {
    snap->outcome_slot.assign(set->flags().size(), -1);
    const auto& keys = snap->config.metrics.flag_outcomes;
    for (std::size_t s = 0; s < keys.size(); ++s)
      if (const auto* f = set->find(keys[s])) snap->outcome_slot[static_cast<std::size_t>(f - set->flags().data())] = std::int16_t(s);
  }
  for (const auto& r : snap->config.routes) {
    RouteFlags rf;
    rf.context = r.context ? &*r.context : &snap->config.context;
    if (set) {
      if (r.all_flags) {
        for (const auto& f : set->flags()) rf.flags.push_back(&f);
      } else {
        for (const auto& key : r.flags)
          if (const auto* f = set->find(key)) rf.flags.push_back(f);
        std::sort(rf.flags.begin(), rf.flags.end(), [](auto* a, auto* b) { return a->key < b->key; });
        rf.flags.erase(std::unique(rf.flags.begin(), rf.flags.end()), rf.flags.end());
      }
      if (r.require_flag) {
        rf.require = set->find(r.require_flag->flag);
        rf.require_variant = r.require_flag->variant;
        rf.require_status = r.require_flag->status;
      }
    }
    snap->route_flags.push_back(std::move(rf));

    RouteSplit rs;
    if (r.split) {
      rs.config = &*r.split;
      std::vector<std::uint32_t> parts;
      for (const auto& arm : r.split->arms) {
        parts.push_back(arm.parts);
        std::string line;
        if (!appendHeaderLine(line, "x-fledge-arm", arm.name)) {
          error = "routes." + r.name + ".split: arm name \"" + arm.name + "\" cannot go into a header";
          return nullptr;
        }
        rs.upstream_lines.push_back(std::move(line));
      }
      rs.table = SplitTable(parts);
      if (r.split->overrides && !r.split->overrides->header.empty()) rs.override_header_key = fieldKey(r.split->overrides->header);
    }
    snap->route_splits.push_back(std::move(rs));
  }
  return snap;
}

}  // namespace fledge::proxy
