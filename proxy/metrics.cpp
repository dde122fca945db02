#include "proxy/metrics.hpp"

#include <algorithm>

#include "flags/flag_set.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {

// Names are [A-Za-z0-9._-] (flags::isValidName); variant names have no control characters,
// so '\n' cannot occur inside either part.
std::string armKey(std::string_view route, std::string_view arm) {
  std::string k(route);
  k += '\n';
  k += arm;
  return k;
}

std::string variantKey(std::string_view flag, std::string_view variant) { return armKey(flag, variant); }

WorkerMetrics::WorkerMetrics(const Snapshot& snap, MetricsRegistry& registry, bool enabled)
    : worker_(registry.worker()), enabled_(enabled) {
  const auto& cfg = snap.config;
  auto addArm = [&](std::vector<std::shared_ptr<ArmCounters>>& row, std::string_view route, std::string_view arm) {
    std::string key = armKey(route, arm);
    row.push_back(registry.arms.take(key));
    arm_names_.emplace(std::move(key), row.back().get());
  };
  arms_.resize(cfg.routes.size() + 1);
  routes_.reserve(cfg.routes.size() + 1);
  for (std::size_t r = 0; r <= cfg.routes.size(); ++r) {
    const std::string_view name = r < cfg.routes.size() ? std::string_view(cfg.routes[r].name) : std::string_view();
    if (r < cfg.routes.size() && cfg.routes[r].split) {
      for (const auto& a : cfg.routes[r].split->arms) addArm(arms_[r], name, a.name);
    } else {
      addArm(arms_[r], name, "");
    }
    routes_.push_back(registry.routes.take(std::string(name)));
    route_names_.emplace(std::string(name), routes_.back().get());
  }
  for (const auto& c : cfg.clusters) {
    clusters_.push_back(registry.clusters.take(c.name));
    cluster_names_.emplace(c.name, clusters_.back().get());
  }
  if (const auto* set = cfg.flag_set.get()) {
    for (const auto& f : set->flags()) {
      auto& row = variants_.emplace_back();
      for (std::size_t v = 0; v <= f.variants.size(); ++v) {
        // The "no value" slot: a variant name is never empty, so "" cannot collide.
        std::string key = variantKey(f.key, v < f.variants.size() ? std::string_view(f.variants[v].name) : std::string_view());
        row.push_back(registry.variants.take(key));
        variant_names_.emplace(std::move(key), row.back().get());
      }
    }
    for (const auto& key : cfg.metrics.flag_outcomes) {
      const flags::Flag* f = set->find(key);
      auto& row = outcomes_.emplace_back();
      for (std::size_t v = 0; f && v <= f->variants.size(); ++v) {
        std::string k = variantKey(f->key, v < f->variants.size() ? std::string_view(f->variants[v].name) : std::string_view());
        row.push_back(registry.outcomes.take(k));
        outcome_names_.emplace(std::move(k), row.back().get());
      }
    }
  }
  registry.commit();
}

void WorkerMetrics::count(ArmCounters& a, unsigned status, std::chrono::microseconds duration) {
  const std::size_t cls = std::clamp<unsigned>(status / 100, 1, 5) - 1;
  bump(a.requests[cls]);
  const auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(duration.count(), 0));
  bump(a.latency[rollout::latencyBucket(us)]);
  bump(a.latency_sum_us, us);
}

namespace {
template <typename T>
const T* find(const std::unordered_map<std::string, const T*>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : it->second;
}
}  // namespace

const ArmCounters* WorkerMetrics::arm(std::string_view route, std::string_view arm) const {
  return find(arm_names_, armKey(route, arm));
}
const ClusterCounters* WorkerMetrics::cluster(std::string_view name) const { return find(cluster_names_, std::string(name)); }
const RouteCounters* WorkerMetrics::route(std::string_view name) const { return find(route_names_, std::string(name)); }
const ArmCounters* WorkerMetrics::outcome(std::string_view flag, std::string_view variant) const {
  return find(outcome_names_, variantKey(flag, variant));
}
const VariantCounters* WorkerMetrics::variant(std::string_view flag, std::string_view variant) const {
  return find(variant_names_, variantKey(flag, variant));
}

}  // namespace fledge::proxy
