#include "proxy/planner.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>

#include "proxy/flag_context.hpp"
#include "proxy/uri.hpp"

namespace fledge::proxy {
namespace beast = boost::beast;
namespace http = beast::http;

std::uint64_t Random::next() {
  std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void Random::requestId(char out[32]) {
  static constexpr char kHex[] = "0123456789abcdef";
  const std::uint64_t a = next(), b = next();
  for (int i = 0; i < 16; ++i) {
    out[i] = kHex[(a >> (60 - 4 * i)) & 0xf];
    out[16 + i] = kHex[(b >> (60 - 4 * i)) & 0xf];
  }
}

namespace {

// Constant-time comparison: the time taken does not reveal how much of a token matched.
bool tokenEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  return diff == 0;
}


struct Planner {
  const Head& head;
  const RequestFacts& facts;
  const Snapshot& snap;
  std::string_view client_ip;
  Random& random;
  PlanScratch& scratch;
  Exchange& x;
  WorkerMetrics* metrics;
  Plan p;

  Plan refuse(unsigned status, const char* text, bool close = true) {
    p.status = status;
    p.text = text;
    p.close = close;
    return p;
  }

  // The arm of a split route: a tester's override, else the sticky key's bucket, else an
  // assigned visitor id (set as a cookie), else a random draw.
  std::size_t chooseArm(const RouteSplit& rs, const RequestView& req) {
    const SplitConfig& sc = *rs.config;
    // Testers' override: "arm" or "arm;token=T", honoured only for allowlisted arms.
    if (sc.overrides) {
      const OverrideConfig& oc = *sc.overrides;
      std::string_view value;
      bool found = false;
      if (!oc.header.empty()) value = findSource(ValueSource{ValueSource::Kind::kHeader, oc.header}, req, scratch.arena, found);
      if (!found && !oc.cookie.empty())
        value = findSource(ValueSource{ValueSource::Kind::kCookie, oc.cookie}, req, scratch.arena, found);
      if (found) {
        std::string_view name = value.substr(0, value.find(';'));
        std::string_view token;
        if (auto t = value.find(";token="); t != std::string_view::npos) token = value.substr(t + 7);
        while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
        const bool allowed = std::find(oc.allow.begin(), oc.allow.end(), name) != oc.allow.end();
        const bool token_ok = oc.token.empty() || tokenEquals(token, oc.token);
        const std::size_t arm = rs.armIndex(name);
        if (allowed && token_ok && arm < sc.arms.size()) {
          if (metrics) metrics->override(p.route, arm);
          return arm;
        }
      }
    }
    for (const auto& src : sc.sticky) {
      std::string_view key;
      bool found = false;
      if (src.kind == ValueSource::Kind::kClientIp) key = client_ip, found = !key.empty();
      else key = findSource(src, req, scratch.arena, found);
      if (found && !key.empty()) return rs.table.pick(splitPoint(sc.salt, key));
    }
    if (sc.assign_cookie) {
      // The cookie Fledge assigned earlier is the key of last resort.
      bool found = false;
      std::string_view key = findSource(ValueSource{ValueSource::Kind::kCookie, sc.assign_cookie->name}, req, scratch.arena, found);
      if (found && !key.empty()) return rs.table.pick(splitPoint(sc.salt, key));
      // A new visitor: give them an id, bucket on it, and let the cookie keep them on this arm.
      char id[32];
      random.requestId(id);
      const AssignCookieConfig& ac = *sc.assign_cookie;
      std::string& cookie = x.scratch;
      cookie.assign(ac.name).append("=").append(id, sizeof id);
      cookie.append("; Path=").append(ac.path).append("; Max-Age=").append(std::to_string(ac.max_age));
      cookie.append("; SameSite=").append(ac.same_site);
      if (ac.secure) cookie.append("; Secure");
      if (ac.http_only) cookie.append("; HttpOnly");
      appendHeaderLine(x.down_extra, "Set-Cookie", cookie);
      return rs.table.pick(splitPoint(sc.salt, std::string_view(id, sizeof id)));
    }
    return rs.table.pick(static_cast<std::uint32_t>(random.next() % kSplitScale));
  }

  Plan run(std::string_view request_id, std::int64_t now_seconds) {
    const Config& cfg = snap.config;
    p.route = cfg.routes.size();
    x.flags_header.clear();
    x.flags_value.clear();
    x.down_extra.clear();
    p.client_close = !facts.keep_alive;
    p.head = facts.method == http::verb::head;
    if (facts.version != 10 && facts.version != 11) return refuse(505, "http version not supported");
    if (head.size() > cfg.limits.max_headers) return refuse(431, "too many header fields");
    std::string_view target = head.startB();
    if (target.size() > cfg.limits.max_request_line) return refuse(414, "request line too long");

    // Smuggling shapes Beast lets through: a Transfer-Encoding whose final coding is not chunked
    // leaves the body length undefined for a request (RFC 9112 §6.3), so refuse it. Codings other
    // than chunked are ones Fledge would not apply: 501, as nginx answers.
    if (head.has(http::field::transfer_encoding)) {
      if (!facts.chunked) return refuse(400, "bad request: unsupported transfer-encoding");
      if (!onlyChunked(head)) return refuse(501, "transfer-coding unsupported");
    }
    const std::size_t host_count = head.count(http::field::host);
    if (host_count > 1 || (facts.version == 11 && host_count == 0)) return refuse(400, "bad request: host");
    if (!isValidHost(head.value(http::field::host))) return refuse(400, "bad request: host");
    if (facts.content_length && cfg.limits.max_body_bytes && *facts.content_length > cfg.limits.max_body_bytes)
      return refuse(413, "request body too large");
    if (head.has(http::field::expect)) {
      if (!beast::iequals(head.value(http::field::expect), "100-continue")) return refuse(417, "expectation failed");
      p.expect_continue = facts.version == 11 && facts.has_body;
    }

    // Absolute-form carries its own authority, which replaces Host (RFC 9112 §3.2.2); the
    // upstream gets origin-form. Routing uses the normalized path (README: Security).
    if (target.find('#') != std::string_view::npos) return refuse(400, "bad request: target");
    std::string_view host = head.value(http::field::host);
    if (target.size() > 7 && beast::iequals(target.substr(0, 7), "http://")) {
      auto rest = target.substr(7);
      auto end = rest.find_first_of("/?");
      host = rest.substr(0, end);
      if (host.empty() || !isValidHost(host)) return refuse(400, "bad request: target authority");
      target = end == std::string_view::npos ? std::string_view("/") : rest.substr(end);
      if (target[0] == '?') {
        x.absolute_target.assign("/").append(target);
        target = x.absolute_target;
      }
    } else if (target.empty() || (target[0] != '/' && !(target == "*" && facts.method == http::verb::options))) {
      return refuse(400, "bad request: target");
    }
    std::string_view path = target.substr(0, target.find('?'));
    p.target = target;
    if (target != "*") {
      switch (normalizePath(path, cfg.http.encoded_slashes, x.normalized)) {
        case PathStatus::kBad: return refuse(400, "bad request: path");
        case PathStatus::kNormal: break;
        case PathStatus::kChanged: {
          if (cfg.http.path_normalization == PathNormalization::kReject) return refuse(400, "bad request: path not normalized");
          const std::size_t path_len = x.normalized.size();
          if (cfg.http.path_normalization == PathNormalization::kForwardNormalized) {
            x.normalized.append(target.substr(path.size()));  // the query, untouched
            p.target = x.normalized;
          }
          path = std::string_view(x.normalized).substr(0, path_len);
          break;
        }
      }
    }

    if (facts.redirect_https_port) {
      // The same host (its port replaced) and target, over HTTPS. Both were validated above.
      std::string_view name = host;
      if (!name.empty() && name[0] == '[') name = name.substr(0, name.find(']') + 1);
      else name = name.substr(0, name.find(':'));
      if (name.empty()) return refuse(400, "bad request: host");
      x.out_head.assign("https://").append(name);
      if (facts.redirect_https_port != 443) x.out_head.append(":").append(std::to_string(facts.redirect_https_port));
      x.out_head.append(target == "*" ? "/" : target);
      p.location = x.out_head;
      return refuse(308, "use https", facts.has_body);
    }
    auto route = snap.routes.match(host, path);
    if (!route) return refuse(404, "no route", facts.has_body);
    p.route = *route;
    p.cluster = cfg.routes[*route].cluster_index;
    const RequestView view{head, p.target, head.startA(), host, client_ip};

    // Flags: evaluated on a context built from this request; results go upstream in one header.
    const RouteFlags& rf = snap.route_flags[*route];
    if (rf.active()) {
      const flags::FlagSet& set = *cfg.flag_set;
      scratch.arena.reset();
      flags::Value ctx = buildContext(*rf.context, view, scratch.arena);
      auto count = [&](const flags::Flag& f, const flags::Evaluation& ev) {
        const auto index = static_cast<std::size_t>(&f - set.flags().data());
        const int variant = ev.variant ? static_cast<int>(ev.variant - f.variants.data()) : -1;
        if (metrics) metrics->flagEvaluation(index, variant, static_cast<std::size_t>(ev.reason));
        if (const std::int16_t slot = snap.outcome_slot[index]; slot >= 0 && x.outcome_count < x.outcomes.size())
          x.outcomes[x.outcome_count++] = {static_cast<std::uint8_t>(slot), static_cast<std::int16_t>(variant)};
      };
      if (rf.require) {
        flags::Evaluation ev = set.evaluate(*rf.require, ctx, scratch.eval, now_seconds);
        count(*rf.require, ev);
        if (!ev.variant || ev.variant->name != rf.require_variant) return refuse(rf.require_status, "not available", facts.has_body);
      }
      for (const flags::Flag* f : rf.flags) {
        flags::Evaluation ev = set.evaluate(*f, ctx, scratch.eval, now_seconds);
        count(*f, ev);
        if (!ev.variant) continue;  // disabled, no default, or an error: nothing to pass on
        if (!x.flags_value.empty()) x.flags_value.append(", ");
        x.flags_value.append(snap.flag_items[static_cast<std::size_t>(f - set.flags().data())]
                                            [static_cast<std::size_t>(ev.variant - f->variants.data())]);
      }
      if (!x.flags_value.empty() && !appendHeaderLine(x.flags_header, "x-fledge-flags", x.flags_value)) x.flags_value.clear();
    }

    // Canary split: the arm decides the cluster; the upstream learns the arm.
    const RouteSplit& rs = snap.route_splits[*route];
    if (rs.config) {
      p.arm = chooseArm(rs, view);
      p.cluster = rs.config->arms[p.arm].cluster_index;
      x.flags_header.append(rs.upstream_lines[p.arm]);
      if (rs.config->expose_arm_header) x.down_extra.append(rs.upstream_lines[p.arm]);
    }

    // Shadow traffic: sampled now; a declared body over the limit is never copied (chunked
    // bodies are checked as they stream).
    if (const auto& mc = cfg.routes[*route].mirror; mc && random.next() % kSplitScale < mc->parts)
      if (!facts.content_length || *facts.content_length <= mc->max_body_bytes) p.mirror = &*mc;

    RequestHeadInfo info;
    info.method = head.startA();
    info.target = p.target;
    info.host = host.empty() ? std::string_view(snap.clusters[p.cluster].names[0]) : host;
    info.forwarded_host = host;
    if (facts.chunked) info.framing = Framing::kChunked;
    else if (facts.content_length) info.framing = Framing::kLength, info.content_length = *facts.content_length;
    info.forward = ForwardInfo{client_ip, facts.secure ? "https" : "http", request_id};
    info.extra = x.flags_header;
    x.out_head.clear();
    appendRequestHead(x.out_head, head, info);
    p.framing = info.framing;
    p.host = info.host;
    p.routed_host = host;
    return p;
  }
};

}  // namespace

Plan plan(const Head& head, const RequestFacts& facts, const Snapshot& snap, std::string_view client_ip,
          std::string_view request_id, Random& random, PlanScratch& scratch, Exchange& x, WorkerMetrics* metrics,
          std::int64_t now_seconds) {
  return Planner{head, facts, snap, client_ip, random, scratch, x, metrics, {}}.run(request_id, now_seconds);
}

}  // namespace fledge::proxy
