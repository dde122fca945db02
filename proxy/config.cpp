#include "proxy/config.hpp"

#include "flags/flag_set.hpp"
#include "proxy/headers.hpp"
#include "proxy/http_head.hpp"
#include "proxy/split.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

namespace fledge::proxy {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

const char* typeName(element_type t) {
  switch (t) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "value";
}

// Collects errors while walking the document; every accessor names the field path.
class Walker {
 public:
  std::vector<ConfigError> errors;

  void error(std::string path, std::string msg) { errors.push_back({std::move(path), std::move(msg)}); }

  // Iterates an object's members, reporting duplicate keys and keys not in `known`.
  template <typename Fn>
  bool object(element e, const std::string& path, std::initializer_list<std::string_view> known, Fn&& fn) {
    simdjson::dom::object obj;
    if (e.get_object().get(obj) != simdjson::SUCCESS) {
      error(path, std::string("must be an object, got ") + typeName(e.type()));
      return false;
    }
    std::set<std::string_view> seen;
    for (auto field : obj) {
      std::string sub = path.empty() ? std::string(field.key) : path + "." + std::string(field.key);
      if (!seen.insert(field.key).second) {
        error(sub, "duplicate field");
        continue;
      }
      if (known.size() != 0 && std::find(known.begin(), known.end(), field.key) == known.end()) {
        error(sub, "unknown field");
        continue;
      }
      fn(field.key, field.value, sub);
    }
    return true;
  }

  template <typename Fn>
  bool array(element e, const std::string& path, Fn&& fn) {
    simdjson::dom::array arr;
    if (e.get_array().get(arr) != simdjson::SUCCESS) {
      error(path, std::string("must be an array, got ") + typeName(e.type()));
      return false;
    }
    std::size_t i = 0;
    for (auto item : arr) {
      fn(item, path + "[" + std::to_string(i) + "]", i);
      ++i;
    }
    return true;
  }

  bool string(element e, const std::string& path, std::string& out) {
    std::string_view sv;
    if (e.get_string().get(sv) != simdjson::SUCCESS) {
      error(path, std::string("must be a string, got ") + typeName(e.type()));
      return false;
    }
    out.assign(sv);
    return true;
  }

  bool number(element e, const std::string& path, double& out) {
    if (e.get_double().get(out) != simdjson::SUCCESS) {
      error(path, std::string("must be a number, got ") + typeName(e.type()));
      return false;
    }
    return true;
  }

  bool boolean(element e, const std::string& path, bool& out) {
    if (e.get_bool().get(out) != simdjson::SUCCESS) {
      error(path, std::string("must be true or false, got ") + typeName(e.type()));
      return false;
    }
    return true;
  }

  bool uinteger(element e, const std::string& path, std::uint64_t min, std::uint64_t max, std::uint64_t& out) {
    std::uint64_t v = 0;
    if (e.type() == element_type::INT64) {
      std::int64_t s = 0;
      if (e.get_int64().get(s) != simdjson::SUCCESS) s = -1;
      if (s < 0) {
        error(path, "must be >= " + std::to_string(min));
        return false;
      }
      v = static_cast<std::uint64_t>(s);
    } else if (e.type() == element_type::UINT64) {
      if (e.get_uint64().get(v) != simdjson::SUCCESS) v = 0;
    } else {
      error(path, std::string("must be an integer, got ") + typeName(e.type()));
      return false;
    }
    if (v < min || v > max) {
      error(path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return false;
    }
    out = v;
    return true;
  }

  template <typename T>
  void uint(element e, const std::string& path, std::uint64_t min, std::uint64_t max, T& out) {
    std::uint64_t v;
    if (uinteger(e, path, min, max, v)) out = static_cast<T>(v);
  }

  void millis(element e, const std::string& path, std::chrono::milliseconds& out) {
    std::uint64_t v;
    if (uinteger(e, path, 1, 24ull * 3600 * 1000, v)) out = std::chrono::milliseconds(v);
  }

  void hostPort(element e, const std::string& path, HostPort& out, bool allow_zero) {
    std::string s;
    if (!string(e, path, s)) return;
    std::string err = parseHostPort(s, out, allow_zero);
    if (!err.empty()) error(path, err);
  }
};

using flags::kNameRule;
bool validName(std::string_view s) { return flags::isValidName(s); }

// Route hosts: a host name, IPv4 or [IPv6] without port, optionally "*." for subdomains.
bool validRouteHost(std::string_view host) {
  if (host.rfind("*.", 0) == 0) host.remove_prefix(2);
  if (host.empty() || !isValidHost(host)) return false;
  return host.front() == '[' ? host.back() == ']' : host.find(':') == std::string_view::npos;
}

// Path prefixes: visible ASCII without '?' or '#', already normalized (a request path is
// normalized before it is matched, so an unnormalized prefix could never match).
std::string pathPrefixProblem(std::string_view prefix) {
  if (prefix.empty() || prefix[0] != '/') return "must start with \"/\"";
  if (prefix.size() > 1024) return "must be at most 1024 characters";
  for (char c : prefix)
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') return "must be visible ASCII without spaces, '?' or '#'";
  std::string normalized;
  switch (normalizePath(prefix, EncodedSlashes::kReject, normalized)) {
    case PathStatus::kNormal: return {};
    case PathStatus::kChanged: return "must be a normalized path (\"" + normalized + "\"): requests are matched after normalization";
    case PathStatus::kBad: break;
  }
  return "must not contain bad or slash escapes, %00 or backslashes";
}

template <typename E>
bool parseEnum(Walker& w, element e, const std::string& path, std::initializer_list<std::pair<std::string_view, E>> values, E& out) {
  std::string s;
  if (!w.string(e, path, s)) return false;
  std::string allowed;
  for (const auto& [name, v] : values) {
    if (s == name) {
      out = v;
      return true;
    }
    allowed += (allowed.empty() ? "\"" : ", \"") + std::string(name) + "\"";
  }
  w.error(path, "must be one of " + allowed);
  return false;
}

// A file named in the configuration: relative paths are relative to the config file's directory.
std::string configPath(const std::string& base_dir, const std::string& file) {
  return !file.empty() && file[0] == '/' ? file : base_dir + "/" + file;
}

void parseTlsVersion(Walker& w, element e, const std::string& path, TlsVersion& out) {
  parseEnum<TlsVersion>(w, e, path, {{"1.2", TlsVersion::k12}, {"1.3", TlsVersion::k13}}, out);
}

void parseFile(Walker& w, element e, const std::string& path, const std::string& base_dir, std::string& out) {
  if (!w.string(e, path, out)) return;
  if (out.empty()) return w.error(path, "must name a file");
  out = configPath(base_dir, out);
}

// {"certificates": [{"cert_file", "key_file"}...], "min_version", "client_ca_file", "require_client_cert"}
void parseServerTls(Walker& w, element e, const std::string& path, const std::string& base_dir, TlsServerConfig& t) {
  bool has_certs = false;
  w.object(e, path, {"certificates", "min_version", "client_ca_file", "require_client_cert"},
           [&](std::string_view key, element v, const std::string& sub) {
             if (key == "certificates") {
               has_certs = true;
               w.array(v, sub, [&](element item, const std::string& ip, std::size_t) {
                 TlsCertificateFiles f;
                 bool cert = false, keyf = false;
                 w.object(item, ip, {"cert_file", "key_file"}, [&](std::string_view ck, element cv, const std::string& cp) {
                   if (ck == "cert_file") {
                     cert = true;
                     parseFile(w, cv, cp, base_dir, f.cert_file);
                   } else {
                     keyf = true;
                     parseFile(w, cv, cp, base_dir, f.key_file);
                   }
                 });
                 if (item.is_object() && !cert) w.error(ip + ".cert_file", "is required");
                 if (item.is_object() && !keyf) w.error(ip + ".key_file", "is required");
                 t.certificates.push_back(std::move(f));
               });
               if (v.is_array() && t.certificates.empty()) w.error(sub, "must list at least one certificate");
               if (t.certificates.size() > 64) w.error(sub, "at most 64 certificates");
             } else if (key == "min_version") {
               parseTlsVersion(w, v, sub, t.min_version);
             } else if (key == "client_ca_file") {
               parseFile(w, v, sub, base_dir, t.client_ca_file);
             } else {
               w.boolean(v, sub, t.require_client_cert);
             }
           });
  if (e.is_object() && !has_certs) w.error(path + ".certificates", "is required");
  if (t.require_client_cert && t.client_ca_file.empty()) w.error(path + ".require_client_cert", "needs client_ca_file");
}

// {"ca_file", "server_name", "verify", "cert_file", "key_file", "min_version"}
void parseClientTls(Walker& w, element e, const std::string& path, const std::string& base_dir, TlsClientConfig& t) {
  w.object(e, path, {"ca_file", "server_name", "verify", "cert_file", "key_file", "min_version"},
           [&](std::string_view key, element v, const std::string& sub) {
             if (key == "ca_file") parseFile(w, v, sub, base_dir, t.ca_file);
             else if (key == "cert_file") parseFile(w, v, sub, base_dir, t.cert_file);
             else if (key == "key_file") parseFile(w, v, sub, base_dir, t.key_file);
             else if (key == "verify") w.boolean(v, sub, t.verify);
             else if (key == "min_version") parseTlsVersion(w, v, sub, t.min_version);
             else if (w.string(v, sub, t.server_name) && (t.server_name.empty() || t.server_name.size() > 253 || !isFieldValue(t.server_name) ||
                                                          t.server_name.find_first_of(" /") != std::string::npos))
               w.error(sub, "must be a host name or IP address");
           });
  if (t.cert_file.empty() != t.key_file.empty()) w.error(path, "cert_file and key_file go together");
}

// A non-empty array of "host:port" (a cluster's endpoints, etcd's).
void parseEndpoints(Walker& w, element e, const std::string& path, std::vector<HostPort>& out, const char* empty_error) {
  w.array(e, path, [&](element item, const std::string& ip, std::size_t) {
    HostPort hp;
    w.hostPort(item, ip, hp, false);
    out.push_back(std::move(hp));
  });
  if (out.empty() && e.is_array()) w.error(path, empty_error);
}

// admin.store: {"etcd": {"endpoints", "prefix", "tls", "username", "password_env", "member", "lease_ttl_s"}}
void parseStore(Walker& w, element e, const std::string& path, const std::string& base_dir, AdminConfig& admin) {
  w.object(e, path, {"etcd"}, [&](std::string_view, element v, const std::string& sub) {
    auto& etcd = admin.etcd.emplace();
    bool has_endpoints = false;
    w.object(v, sub, {"endpoints", "prefix", "tls", "username", "password_env", "member", "lease_ttl_s"},
             [&](std::string_view key, element ev, const std::string& ep) {
               if (key == "endpoints") {
                 has_endpoints = true;
                 parseEndpoints(w, ev, ep, etcd.endpoints, "must list at least one etcd endpoint");
               } else if (key == "prefix") {
                 if (w.string(ev, ep, etcd.prefix) && (etcd.prefix.empty() || etcd.prefix.back() != '/' || !isFieldValue(etcd.prefix)))
                   w.error(ep, "must be a key prefix ending in \"/\" (e.g. \"/fledge/\")");
               } else if (key == "tls") {
                 parseClientTls(w, ev, ep, base_dir, etcd.tls.emplace());
               } else if (key == "username") {
                 w.string(ev, ep, etcd.username);
               } else if (key == "password_env") {
                 w.string(ev, ep, etcd.password_env);
               } else if (key == "member") {
                 if (w.string(ev, ep, etcd.member) && !validName(etcd.member)) w.error(ep, std::string("member ") + kNameRule);
               } else {
                 w.uint(ev, ep, 2, 60, etcd.lease_ttl_s);
               }
             });
    if (!has_endpoints && v.is_object()) w.error(sub + ".endpoints", "is required");
    if (etcd.username.empty() != etcd.password_env.empty()) w.error(sub, "username and password_env go together");
  });
}

void parseCluster(Walker& w, std::string_view name, element e, const std::string& path, const std::string& base_dir, ClusterConfig& c) {
  c.name.assign(name);
  if (!validName(name)) w.error(path, std::string("cluster name ") + kNameRule);
  bool has_endpoints = false;
  w.object(e, path, {"endpoints", "lb", "max_connections", "max_idle", "idle_timeout_ms", "eject_ms", "outlier_detection", "circuit_breaker", "health_check", "tls"},
           [&](std::string_view key, element v, const std::string& sub) {
             if (key == "endpoints") {
               has_endpoints = true;
               parseEndpoints(w, v, sub, c.endpoints, "must list at least one endpoint");
             } else if (key == "lb") {
               std::string s;
               if (!w.string(v, sub, s)) return;
               if (s == "round_robin") c.lb = LbPolicy::kRoundRobin;
               else if (s == "least_request") c.lb = LbPolicy::kLeastRequest;
               else w.error(sub, "must be \"round_robin\" or \"least_request\"");
             } else if (key == "max_connections") {
               w.uint(v, sub, 1, 1'000'000, c.max_connections);
             } else if (key == "max_idle") {
               w.uint(v, sub, 0, 1'000'000, c.max_idle);
             } else if (key == "idle_timeout_ms") {
               w.millis(v, sub, c.idle_timeout);
             } else if (key == "eject_ms") {
               w.millis(v, sub, c.eject_time);
             } else if (key == "health_check") {
               auto& h = c.health_check.emplace();
               w.object(v, sub, {"path", "interval_ms", "timeout_ms", "unhealthy_threshold", "healthy_threshold", "expected_statuses", "jitter_ms"},
                        [&](std::string_view hk, element hv, const std::string& hp) {
                          if (hk == "path") {
                            if (w.string(hv, hp, h.path) && (h.path.empty() || h.path[0] != '/' || !isFieldValue(h.path) ||
                                                             h.path.find(' ') != std::string::npos || h.path.size() > 1024))
                              w.error(hp, "must start with \"/\" and hold no spaces or control characters (at most 1024)");
                          } else if (hk == "interval_ms") w.millis(hv, hp, h.interval);
                          else if (hk == "timeout_ms") w.millis(hv, hp, h.timeout);
                          else if (hk == "unhealthy_threshold") w.uint(hv, hp, 1, 1000, h.unhealthy_threshold);
                          else if (hk == "healthy_threshold") w.uint(hv, hp, 1, 1000, h.healthy_threshold);
                          else if (hk == "jitter_ms") {
                            std::uint64_t j = 0;
                            if (w.uinteger(hv, hp, 0, 3'600'000, j)) h.jitter = std::chrono::milliseconds(j);
                          } else {
                            h.expected_statuses.clear();
                            w.array(hv, hp, [&](element item, const std::string& ip, std::size_t) {
                              unsigned code = 0;
                              w.uint(item, ip, 100, 599, code);
                              h.expected_statuses.push_back(code);
                            });
                            if (hv.is_array() && h.expected_statuses.empty()) w.error(hp, "must list at least one status");
                          }
                        });
               if (h.timeout > h.interval) w.error(sub + ".timeout_ms", "must not exceed interval_ms");
             } else if (key == "tls") {
               parseClientTls(w, v, sub, base_dir, c.tls.emplace());
             } else if (key == "circuit_breaker") {
               auto& cb = c.circuit_breaker.emplace();
               w.object(v, sub, {"max_requests", "max_pending"}, [&](std::string_view ck, element cv, const std::string& cp) {
                 w.uint(cv, cp, 1, 100'000'000, ck == "max_requests" ? cb.max_requests : cb.max_pending);
               });
             } else if (key == "outlier_detection") {
               auto& o = c.outlier_detection.emplace();
               w.object(v, sub, {"consecutive_5xx", "consecutive_gateway_errors", "base_ejection_ms", "max_ejection_ms", "max_ejection_percent"},
                        [&](std::string_view ok, element ov, const std::string& op) {
                          if (ok == "consecutive_5xx") w.uint(ov, op, 0, 1'000'000, o.consecutive_5xx);
                          else if (ok == "consecutive_gateway_errors") w.uint(ov, op, 0, 1'000'000, o.consecutive_gateway_errors);
                          else if (ok == "base_ejection_ms") w.millis(ov, op, o.base_ejection);
                          else if (ok == "max_ejection_ms") w.millis(ov, op, o.max_ejection);
                          else w.uint(ov, op, 0, 100, o.max_ejection_percent);
                        });
             }
           });
  if (!has_endpoints && e.is_object()) w.error(path + ".endpoints", "is required");
}

// {"header": "x-user-id"} | {"cookie": "uid"} | {"query": "uid"}
bool parseSource(Walker& w, element e, const std::string& path, ValueSource& out, bool allow_client_ip = false) {
  int kinds = 0;
  std::initializer_list<std::string_view> header_cookie_query = {"header", "cookie", "query"};
  std::initializer_list<std::string_view> with_ip = {"header", "cookie", "query", "client_ip"};
  bool ok = w.object(e, path, allow_client_ip ? with_ip : header_cookie_query, [&](std::string_view key, element v, const std::string& sub) {
    ++kinds;
    if (key == "client_ip") {
      bool on = false;
      if (w.boolean(v, sub, on) && !on) w.error(sub, "must be true (leave the source out instead)");
      out.kind = ValueSource::Kind::kClientIp;
      return;
    }
    if (!w.string(v, sub, out.name)) return;
    if (out.name.empty()) w.error(sub, "must not be empty");
    else if (out.name.size() > 256) w.error(sub, "must be at most 256 characters");
    else if (key != "query" && !isFieldName(out.name)) w.error(sub, std::string("must be a ") + key.data() + " name (an RFC 9110 token)");
    if (key == "header") {
      out.kind = ValueSource::Kind::kHeader;
      std::transform(out.name.begin(), out.name.end(), out.name.begin(), [](unsigned char c) { return std::tolower(c); });
    } else {
      out.kind = key == "cookie" ? ValueSource::Kind::kCookie : ValueSource::Kind::kQuery;
    }
  });
  if (ok && kinds != 1) {
    w.error(path, allow_client_ip ? "must name exactly one of \"header\", \"cookie\", \"query\" or \"client_ip\""
                                  : "must name exactly one of \"header\", \"cookie\" or \"query\"");
    return false;
  }
  return ok;
}

void parseContextSpec(Walker& w, element e, const std::string& path, ContextSpec& spec);

}  // namespace

void ContextSpec::prepare() {
  header_matches.clear();
  for (auto& t : table) t = -1;
  has_non_header = false;
  const std::size_t nt = targeting_key.size();
  for (std::size_t slot = 0; slot < nt + attributes.size(); ++slot) {
    const ValueSource& src = slot < nt ? targeting_key[slot] : attributes[slot - nt].second;
    if (src.kind == ValueSource::Kind::kHeader)
      header_matches.push_back({fieldKey(src.name), static_cast<std::uint32_t>(slot)});
    else
      has_non_header = true;
  }
  // Beyond half the table the index is not used (buildContext falls back to a scan).
  if (header_matches.size() <= kTableSize / 2) {
    for (std::size_t m = 0; m < header_matches.size(); ++m) {
      std::size_t b = bucketOf(header_matches[m].key);
      while (table[b] >= 0) b = (b + 1) % kTableSize;
      table[b] = static_cast<std::int16_t>(m);
    }
  }
}

namespace {

void parseContextSpec(Walker& w, element e, const std::string& path, ContextSpec& spec) {
  w.object(e, path, {"targeting_key", "attributes"}, [&](std::string_view key, element v, const std::string& sub) {
    if (key == "targeting_key") {
      w.array(v, sub, [&](element item, const std::string& ip, std::size_t) {
        ValueSource src;
        if (parseSource(w, item, ip, src)) spec.targeting_key.push_back(std::move(src));
      });
    } else {
      w.object(v, sub, {}, [&](std::string_view name, element av, const std::string& ap) {
        if (name == "targetingKey" || name == "request" || name.rfind("$flagd", 0) == 0) {
          w.error(ap, "is reserved (targetingKey, request.* and $flagd.* are set by Fledge)");
          return;
        }
        ValueSource src;
        if (parseSource(w, av, ap, src)) spec.attributes.emplace_back(std::string(name), std::move(src));
      });
    }
  });
  spec.prepare();
}

void parseSplit(Walker& w, element e, const std::string& path, SplitConfig& sp) {
  bool has_arms = false;
  w.object(e, path, {"arms", "salt", "sticky", "assign_cookie", "overrides", "expose_arm_header", "fallback_arm"},
           [&](std::string_view key, element v, const std::string& sub) {
    if (key == "arms") {
      has_arms = true;
      w.array(v, sub, [&](element item, const std::string& ap, std::size_t) {
        SplitArmConfig arm;
        bool has_name = false, has_cluster = false, has_weight = false;
        w.object(item, ap, {"name", "cluster", "weight"}, [&](std::string_view k, element av, const std::string& p) {
          if (k == "name") {
            has_name = w.string(av, p, arm.name);
            if (has_name && !validName(arm.name)) w.error(p, kNameRule);
          } else if (k == "cluster") {
            has_cluster = w.string(av, p, arm.cluster);
          } else if (w.number(av, p, arm.weight)) {
            has_weight = true;
            if (!percentToParts(arm.weight, arm.parts))
              w.error(p, "must be a percentage between 0 and 100 with at most 4 decimals");
          }
        });
        if (item.is_object()) {
          if (!has_name) w.error(ap + ".name", "is required");
          if (!has_cluster) w.error(ap + ".cluster", "is required");
          if (!has_weight) w.error(ap + ".weight", "is required");
        }
        sp.arms.push_back(std::move(arm));
      });
    } else if (key == "salt") {
      w.string(v, sub, sp.salt);
    } else if (key == "sticky") {
      w.array(v, sub, [&](element item, const std::string& ip, std::size_t) {
        ValueSource src;
        if (parseSource(w, item, ip, src, true)) sp.sticky.push_back(std::move(src));
      });
    } else if (key == "assign_cookie") {
      AssignCookieConfig ac;
      if (v.is_bool()) {
        bool on = false;
        w.boolean(v, sub, on);
        if (on) sp.assign_cookie = ac;
        return;
      }
      w.object(v, sub, {"name", "max_age", "secure", "http_only", "same_site", "path"},
               [&](std::string_view k, element cv, const std::string& p) {
        if (k == "name") {
          if (w.string(cv, p, ac.name) && (!isFieldName(ac.name) || ac.name.size() > 256))
            w.error(p, "must be a cookie name (an RFC 9110 token of at most 256 characters)");
        } else if (k == "max_age") {
          w.uint(cv, p, 0, 400ull * 24 * 3600, ac.max_age);
        } else if (k == "secure") {
          w.boolean(cv, p, ac.secure);
        } else if (k == "http_only") {
          w.boolean(cv, p, ac.http_only);
        } else if (k == "same_site") {
          if (w.string(cv, p, ac.same_site) && ac.same_site != "Strict" && ac.same_site != "Lax" && ac.same_site != "None")
            w.error(p, "must be \"Strict\", \"Lax\" or \"None\"");
        } else if (w.string(cv, p, ac.path) &&
                   (ac.path.empty() || ac.path[0] != '/' || !isFieldValue(ac.path) || ac.path.find(';') != std::string::npos)) {
          w.error(p, "must start with \"/\" and hold no ';' or control characters");
        }
      });
      if (ac.same_site == "None" && !ac.secure) w.error(sub + ".secure", "must be true when same_site is \"None\"");
      sp.assign_cookie = std::move(ac);
    } else if (key == "overrides") {
      OverrideConfig oc;
      std::string token_env;
      w.object(v, sub, {"header", "cookie", "allow", "token", "token_env"}, [&](std::string_view k, element ov, const std::string& p) {
        if (k == "header") {
          if (w.string(ov, p, oc.header) && !isFieldName(oc.header)) w.error(p, "must be a header name (an RFC 9110 token)");
          std::transform(oc.header.begin(), oc.header.end(), oc.header.begin(), [](unsigned char c) { return std::tolower(c); });
        } else if (k == "cookie") {
          if (w.string(ov, p, oc.cookie) && !isFieldName(oc.cookie)) w.error(p, "must be a cookie name (an RFC 9110 token)");
        } else if (k == "allow") {
          w.array(ov, p, [&](element item, const std::string& ip, std::size_t) {
            std::string a;
            if (w.string(item, ip, a)) oc.allow.push_back(std::move(a));
          });
        } else if (k == "token") {
          w.string(ov, p, oc.token);
        } else if (w.string(ov, p, token_env)) {
          const char* t = std::getenv(token_env.c_str());
          if (!t || !*t) w.error(p, "environment variable " + token_env + " is not set");
          else oc.token = t;
        }
      });
      if (v.is_object() && oc.header.empty() && oc.cookie.empty())
        w.error(sub, "must name a \"header\" and/or a \"cookie\"");
      if (v.is_object() && oc.allow.empty()) w.error(sub + ".allow", "must list the arms testers may force");
      sp.overrides = std::move(oc);
    } else if (key == "fallback_arm") {
      w.string(v, sub, sp.fallback_arm);
    } else {
      w.boolean(v, sub, sp.expose_arm_header);
    }
  });
  if (!e.is_object()) return;
  if (!has_arms) {
    w.error(path + ".arms", "is required");
    return;
  }
  if (sp.arms.size() < 2) w.error(path + ".arms", "must list at least two arms");
  std::uint64_t total = 0;
  std::set<std::string> names;
  for (std::size_t i = 0; i < sp.arms.size(); ++i) {
    total += sp.arms[i].parts;
    if (!sp.arms[i].name.empty() && !names.insert(sp.arms[i].name).second)
      w.error(path + ".arms[" + std::to_string(i) + "].name", "duplicate arm \"" + sp.arms[i].name + "\"");
  }
  if (total != kSplitScale) {
    char got[32];
    std::snprintf(got, sizeof got, "%.4f", static_cast<double>(total) / 10'000);
    w.error(path + ".arms", std::string("weights must sum to 100, got ") + got);
  }
  if (!sp.fallback_arm.empty()) {
    for (std::size_t i = 0; i < sp.arms.size(); ++i)
      if (sp.arms[i].name == sp.fallback_arm) sp.fallback_index = i;
    if (sp.fallback_index == SIZE_MAX) w.error(path + ".fallback_arm", "unknown arm \"" + sp.fallback_arm + "\"");
  }
  if (sp.overrides)
    for (std::size_t i = 0; i < sp.overrides->allow.size(); ++i)
      if (!names.count(sp.overrides->allow[i]))
        w.error(path + ".overrides.allow[" + std::to_string(i) + "]", "unknown arm \"" + sp.overrides->allow[i] + "\"");
}

void parseMirror(Walker& w, element e, const std::string& path, MirrorConfig& m) {
  bool has_cluster = false, has_percent = false;
  w.object(e, path, {"cluster", "percent", "max_body_bytes", "max_in_flight", "timeout_ms"},
           [&](std::string_view key, element v, const std::string& sub) {
    if (key == "cluster") has_cluster = w.string(v, sub, m.cluster);
    else if (key == "percent") {
      if (w.number(v, sub, m.percent)) {
        has_percent = true;
        if (!percentToParts(m.percent, m.parts)) w.error(sub, "must be a percentage between 0 and 100 with at most 4 decimals");
      }
    } else if (key == "max_body_bytes") w.uint(v, sub, 0, 1ull << 30, m.max_body_bytes);
    else if (key == "max_in_flight") w.uint(v, sub, 1, 100'000, m.max_in_flight);
    else w.millis(v, sub, m.timeout);
  });
  if (e.is_object()) {
    if (!has_cluster) w.error(path + ".cluster", "is required");
    if (!has_percent) w.error(path + ".percent", "is required");
  }
}

bool parseUnsigned(std::string_view s, unsigned& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size() && !s.empty();
}

// "retry": {"attempts", "on": [...], "per_try_timeout_ms", "budget_percent", "methods", "max_body_bytes"}
void parseRetry(Walker& w, element e, const std::string& path, RetryPolicy& p) {
  p.attempts = 3;  // the block's defaults: retry connect failures and resets of idempotent requests
  p.on_connect_failure = p.on_reset = true;
  w.object(e, path, {"attempts", "on", "per_try_timeout_ms", "budget_percent", "min_retry_concurrency", "methods", "max_body_bytes"},
           [&](std::string_view key, element v, const std::string& sub) {
    if (key == "attempts") w.uint(v, sub, 1, 10, p.attempts);
    else if (key == "on") {
      p.on_connect_failure = p.on_reset = p.on_5xx = p.on_gateway_error = false;
      p.statuses.clear();
      w.array(v, sub, [&](element item, const std::string& ip, std::size_t) {
        std::string s;
        if (!w.string(item, ip, s)) return;
        constexpr std::string_view kStatus = "retriable-status:";
        unsigned code = 0;
        if (s == "connect-failure") p.on_connect_failure = true;
        else if (s == "reset") p.on_reset = true;
        else if (s == "5xx") p.on_5xx = true;
        else if (s == "gateway-error") p.on_gateway_error = true;
        else if (s.rfind(kStatus, 0) == 0 && parseUnsigned(std::string_view(s).substr(kStatus.size()), code) && code >= 100 && code <= 599)
          p.statuses.push_back(code);
        else w.error(ip, "must be \"connect-failure\", \"reset\", \"5xx\", \"gateway-error\" or \"retriable-status:CODE\"");
      });
    } else if (key == "per_try_timeout_ms") w.millis(v, sub, p.per_try_timeout);
    else if (key == "budget_percent") {
      if (w.number(v, sub, p.budget_percent) && !(p.budget_percent >= 0 && p.budget_percent <= 100))
        w.error(sub, "must be a percentage between 0 and 100");
    } else if (key == "min_retry_concurrency") w.uint(v, sub, 0, 1'000'000, p.min_retry_concurrency);
    else if (key == "methods") {
      w.array(v, sub, [&](element item, const std::string& ip, std::size_t) {
        std::string s;
        if (!w.string(item, ip, s)) return;
        const auto verb = boost::beast::http::string_to_verb(s);
        if (verb == boost::beast::http::verb::unknown) w.error(ip, "unknown method \"" + s + "\"");
        else p.methods.push_back(verb);
      });
    } else w.uint(v, sub, 0, 64 * 1024, p.max_body_bytes);
  });
}

void parseRoute(Walker& w, element e, const std::string& path, RouteConfig& r) {
  bool has_name = false, has_cluster = false;
  bool has_split = false;
  w.object(e, path, {"name", "match", "cluster", "flags", "evaluation_context", "require_flag", "split", "mirror", "retry"},
           [&](std::string_view key, element v, const std::string& sub) {
    if (key == "retry") {
      parseRetry(w, v, sub, r.retry.emplace());
    } else if (key == "split") {
      has_split = true;
      r.split.emplace();
      parseSplit(w, v, sub, *r.split);
    } else if (key == "mirror") {
      r.mirror.emplace();
      parseMirror(w, v, sub, *r.mirror);
    } else if (key == "flags") {
      if (v.is_string()) {
        std::string s;
        w.string(v, sub, s);
        if (s == "*") r.all_flags = true;
        else w.error(sub, "must be \"*\" (all flags) or a list of flag keys");
      } else {
        w.array(v, sub, [&](element item, const std::string& ip, std::size_t) {
          std::string k;
          if (w.string(item, ip, k)) r.flags.push_back(std::move(k));
        });
      }
    } else if (key == "evaluation_context") {
      r.context.emplace();
      parseContextSpec(w, v, sub, *r.context);
    } else if (key == "require_flag") {
      RequireFlag rf;
      bool has_flag = false, has_variant = false;
      w.object(v, sub, {"flag", "variant", "status"}, [&](std::string_view rk, element rv, const std::string& rp) {
        if (rk == "flag") has_flag = w.string(rv, rp, rf.flag);
        else if (rk == "variant") has_variant = w.string(rv, rp, rf.variant);
        else w.uint(rv, rp, 200, 599, rf.status);
      });
      if (v.is_object()) {
        if (!has_flag) w.error(sub + ".flag", "is required");
        if (!has_variant) w.error(sub + ".variant", "is required");
      }
      r.require_flag = std::move(rf);
    } else if (key == "name") {
      has_name = w.string(v, sub, r.name);
      if (has_name && !validName(r.name)) w.error(sub, kNameRule);
    } else if (key == "cluster") {
      has_cluster = w.string(v, sub, r.cluster);
    } else if (key == "match") {
      w.object(v, sub, {"host", "path_prefix"}, [&](std::string_view mk, element mv, const std::string& msub) {
        if (mk == "host") {
          if (!w.string(mv, msub, r.host)) return;
          std::transform(r.host.begin(), r.host.end(), r.host.begin(), [](unsigned char c) { return std::tolower(c); });
          if (r.host.empty()) w.error(msub, "must not be empty (omit it to match any host)");
          else if (r.host.find('*') != std::string::npos && (r.host.rfind("*.", 0) != 0 || r.host.find('*', 1) != std::string::npos))
            w.error(msub, "a wildcard is only allowed as a leading \"*.\"");
          else if (!validRouteHost(r.host)) w.error(msub, "must be a host name, IPv4 or [IPv6] address without port, optionally \"*.\"-prefixed");
        } else if (mk == "path_prefix") {
          if (!w.string(mv, msub, r.path_prefix)) return;
          if (auto problem = pathPrefixProblem(r.path_prefix); !problem.empty()) w.error(msub, problem);
        }
      });
    }
  });
  if (e.is_object()) {
    if (!has_name) w.error(path + ".name", "is required");
    if (!has_cluster && !has_split) w.error(path + ".cluster", "is required (or a \"split\")");
    if (has_cluster && has_split) w.error(path + ".split", "a route has either \"cluster\" or \"split\", not both");
    if (has_split && r.split && r.split->salt.empty()) r.split->salt = r.name;
  }
}

}  // namespace

std::string HostPort::str() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

bool isLoopbackName(std::string_view host) {
  if (boost::beast::iequals(host, "localhost")) return true;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(host), ec);
  return !ec && addr.is_loopback();
}

std::string parseHostPort(std::string_view s, HostPort& out, bool allow_port_zero) {
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':')
      return "must be \"host:port\" or \"[ipv6]:port\"";
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return "must be \"host:port\" (port missing)";
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return "an IPv6 address must be written as \"[addr]:port\"";
  }
  if (host.empty()) return "host is empty";
  unsigned long v = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
  if (port.empty() || ec != std::errc{} || ptr != port.data() + port.size() || v > 65535)
    return "port must be a number between " + std::string(allow_port_zero ? "0" : "1") + " and 65535";
  if (v == 0 && !allow_port_zero) return "port must be between 1 and 65535";
  out.host.assign(host);
  out.port = static_cast<std::uint16_t>(v);
  return {};
}

ConfigResult parseConfig(std::string_view json, const std::string& base_dir) {
  ConfigResult result;
  std::vector<flags::FlagSource> flag_sources;
  simdjson::dom::parser parser;
  simdjson::padded_string padded(json);
  element root;
  if (auto err = parser.parse(padded).get(root); err != simdjson::SUCCESS) {
    result.errors.push_back({"", std::string("invalid JSON: ") + simdjson::error_message(err)});
    return result;
  }

  Walker w;
  Config cfg;
  bool has_listeners = false;
  w.object(root, "",
           {"listeners", "workers", "admin", "timeouts", "limits", "http", "clusters", "routes", "log_level", "flags",
            "flag_files", "evaluation_context", "ofrep", "metrics", "access_log"},
           [&](std::string_view key, element v, const std::string& path) {
             if (key == "listeners") {
               has_listeners = true;
               w.array(v, path, [&](element item, const std::string& ip, std::size_t i) {
                 ListenerConfig l;
                 l.name = "listener-" + std::to_string(i);
                 bool has_address = false;
                 w.object(item, ip, {"name", "address", "tls", "redirect_https"}, [&](std::string_view lk, element lv, const std::string& lp) {
                   if (lk == "name") {
                     if (w.string(lv, lp, l.name) && !validName(l.name)) w.error(lp, kNameRule);
                   } else if (lk == "tls") {
                     parseServerTls(w, lv, lp, base_dir, l.tls.emplace());
                   } else if (lk == "redirect_https") {
                     auto& port = l.redirect_https_port.emplace(443);
                     w.object(lv, lp, {"port"}, [&](std::string_view, element pv, const std::string& pp) { w.uint(pv, pp, 1, 65535, port); });
                   } else {
                     has_address = true;
                     w.hostPort(lv, lp, l.address, true);
                   }
                 });
                 if (!has_address && item.is_object()) w.error(ip + ".address", "is required");
                 if (l.tls && l.redirect_https_port) w.error(ip + ".redirect_https", "is for a plain listener (this one has tls)");
                 cfg.listeners.push_back(std::move(l));
               });
             } else if (key == "workers") {
               w.uint(v, path, 0, 256, cfg.workers);
             } else if (key == "log_level") {
               if (w.string(v, path, cfg.log_level) && cfg.log_level != "debug" && cfg.log_level != "info" &&
                   cfg.log_level != "warn" && cfg.log_level != "error")
                 w.error(path, "must be one of \"debug\", \"info\", \"warn\", \"error\"");
             } else if (key == "admin") {
               w.object(v, path, {"listen", "data_dir", "tokens_file", "tls", "store"}, [&](std::string_view ak, element av, const std::string& ap) {
                 if (ak == "listen") w.hostPort(av, ap, cfg.admin.listen, true);
                 else if (ak == "tls") parseServerTls(w, av, ap, base_dir, cfg.admin.tls.emplace());
                 else if (ak == "store") parseStore(w, av, ap, base_dir, cfg.admin);
                 else if (ak == "data_dir") w.string(av, ap, cfg.admin.data_dir);
                 else w.string(av, ap, cfg.admin.tokens_file);
               });
               if (!cfg.admin.data_dir.empty() && cfg.admin.etcd)
                 w.error(path + ".store", "admin.data_dir and admin.store are two stores: choose one");
             } else if (key == "timeouts") {
               w.object(v, path,
                        {"header_read_ms", "idle_ms", "body_read_ms", "upstream_connect_ms", "upstream_response_ms",
                         "drain_ms"},
                        [&](std::string_view tk, element tv, const std::string& tp) {
                          auto& t = cfg.timeouts;
                          if (tk == "header_read_ms") w.millis(tv, tp, t.header_read);
                          else if (tk == "idle_ms") w.millis(tv, tp, t.idle);
                          else if (tk == "body_read_ms") w.millis(tv, tp, t.body_read);
                          else if (tk == "upstream_connect_ms") w.millis(tv, tp, t.upstream_connect);
                          else if (tk == "upstream_response_ms") w.millis(tv, tp, t.upstream_response);
                          else if (tk == "drain_ms") w.millis(tv, tp, t.drain);
                        });
             } else if (key == "limits") {
               w.object(v, path,
                        {"max_request_line", "max_header_bytes", "max_headers", "max_body_bytes", "max_connections",
                         "min_body_rate"},
                        [&](std::string_view lk, element lv, const std::string& lp) {
                          auto& l = cfg.limits;
                          if (lk == "max_request_line") w.uint(lv, lp, 64, 1 << 20, l.max_request_line);
                          else if (lk == "max_header_bytes") w.uint(lv, lp, 256, 1 << 24, l.max_header_bytes);
                          else if (lk == "max_headers") w.uint(lv, lp, 1, 10'000, l.max_headers);
                          else if (lk == "max_body_bytes") w.uint(lv, lp, 0, UINT64_MAX, l.max_body_bytes);
                          else if (lk == "max_connections") w.uint(lv, lp, 0, 10'000'000, l.max_connections);
                          else if (lk == "min_body_rate") w.uint(lv, lp, 0, 1u << 30, l.min_body_rate);
                        });
             } else if (key == "http") {
               w.object(v, path, {"path_normalization", "encoded_slashes", "underscores_in_headers"},
                        [&](std::string_view hk, element hv, const std::string& hp) {
                          auto& h = cfg.http;
                          if (hk == "path_normalization")
                            parseEnum<PathNormalization>(w, hv, hp,
                                                         {{"forward_normalized", PathNormalization::kForwardNormalized},
                                                          {"match_only", PathNormalization::kMatchOnly},
                                                          {"reject", PathNormalization::kReject}},
                                                         h.path_normalization);
                          else if (hk == "encoded_slashes")
                            parseEnum<EncodedSlashes>(w, hv, hp, {{"reject", EncodedSlashes::kReject}, {"decode", EncodedSlashes::kDecode}},
                                                      h.encoded_slashes);
                          else
                            parseEnum<UnderscoreHeaders>(w, hv, hp,
                                                         {{"drop", UnderscoreHeaders::kDrop},
                                                          {"reject", UnderscoreHeaders::kReject},
                                                          {"allow", UnderscoreHeaders::kAllow}},
                                                         h.underscores_in_headers);
                        });
             } else if (key == "clusters") {
               w.object(v, path, {}, [&](std::string_view name, element cv, const std::string& cp) {
                 ClusterConfig c;
                 parseCluster(w, name, cv, cp, base_dir, c);
                 cfg.clusters.push_back(std::move(c));
               });
             } else if (key == "flags") {
               if (!v.is_object()) w.error(path, "must be a flagd flag definition object ({\"flags\": {...}})");
               else flag_sources.push_back({"flags.", simdjson::minify(v)});
             } else if (key == "flag_files") {
               w.array(v, path, [&](element item, const std::string& ip, std::size_t) {
                 std::string file;
                 if (!w.string(item, ip, file)) return;
                 std::string full = configPath(base_dir, file);
                 cfg.flag_file_paths.push_back(full);
                 std::ifstream in(full, std::ios::binary);
                 if (!in) {
                   w.error(ip, "cannot read flag file \"" + full + "\"");
                   return;
                 }
                 std::stringstream ss;
                 ss << in.rdbuf();
                 flag_sources.push_back({ip + " (" + file + ")", ss.str()});
               });
             } else if (key == "evaluation_context") {
               parseContextSpec(w, v, path, cfg.context);
             } else if (key == "metrics") {
               w.object(v, path, {"enabled", "tokens_file", "flag_outcomes"}, [&](std::string_view mk, element mv, const std::string& mp) {
                 if (mk == "enabled") w.boolean(mv, mp, cfg.metrics.enabled);
                 else if (mk == "tokens_file") w.string(mv, mp, cfg.metrics.tokens_file);
                 else if (w.array(mv, mp, [&](element item, const std::string& ip, std::size_t) {
                            std::string k;
                            if (!w.string(item, ip, k)) return;
                            if (std::find(cfg.metrics.flag_outcomes.begin(), cfg.metrics.flag_outcomes.end(), k) == cfg.metrics.flag_outcomes.end())
                              cfg.metrics.flag_outcomes.push_back(std::move(k));
                          }) && cfg.metrics.flag_outcomes.size() > MetricsConfig::kMaxFlagOutcomes)
                   w.error(mp, "at most " + std::to_string(MetricsConfig::kMaxFlagOutcomes) + " flags");
               });
             } else if (key == "access_log") {
               w.object(v, path, {"enabled", "path", "queue_size"}, [&](std::string_view ak, element av, const std::string& ap) {
                 if (ak == "enabled") w.boolean(av, ap, cfg.access_log.enabled);
                 else if (ak == "path") w.string(av, ap, cfg.access_log.path);
                 else w.uint(av, ap, 1, 1u << 20, cfg.access_log.queue_size);
               });
             } else if (key == "ofrep") {
               w.object(v, path, {"enabled", "listen", "tokens_file", "tls"}, [&](std::string_view ok, element ov, const std::string& op) {
                 if (ok == "tls") {
                   parseServerTls(w, ov, op, base_dir, cfg.ofrep.tls.emplace());
                 } else if (ok == "enabled") {
                   bool b = true;
                   if (ov.get_bool().get(b) != simdjson::SUCCESS) w.error(op, "must be a boolean");
                   cfg.ofrep.enabled = b;
                 } else if (ok == "listen") {
                   w.hostPort(ov, op, cfg.ofrep.listen, true);
                 } else {
                   w.string(ov, op, cfg.ofrep.tokens_file);
                 }
               });
             } else if (key == "routes") {
               w.array(v, path, [&](element item, const std::string& rp, std::size_t) {
                 RouteConfig r;
                 parseRoute(w, item, rp, r);
                 cfg.routes.push_back(std::move(r));
               });
             }
           });

  if (root.is_object()) {
    if (!has_listeners) w.error("listeners", "is required");
    else if (cfg.listeners.empty()) w.error("listeners", "must list at least one listener");
  }
  if (cfg.limits.max_request_line > cfg.limits.max_header_bytes)
    w.error("limits.max_request_line", "must not exceed limits.max_header_bytes");

  std::set<std::string> names;
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i)
    if (!names.insert(cfg.listeners[i].name).second)
      w.error("listeners[" + std::to_string(i) + "].name", "duplicate listener name \"" + cfg.listeners[i].name + "\"");
  names.clear();
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    auto& r = cfg.routes[i];
    std::string rp = "routes[" + std::to_string(i) + "]";
    if (!r.name.empty() && !names.insert(r.name).second) w.error(rp + ".name", "duplicate route name \"" + r.name + "\"");
    auto resolve = [&](const std::string& name, const std::string& field, std::size_t& index) {
      auto it = std::find_if(cfg.clusters.begin(), cfg.clusters.end(), [&](auto& c) { return c.name == name; });
      if (it == cfg.clusters.end()) w.error(field, "unknown cluster \"" + name + "\"");
      else index = static_cast<std::size_t>(it - cfg.clusters.begin());
    };
    if (r.split)
      for (std::size_t a = 0; a < r.split->arms.size(); ++a)
        if (!r.split->arms[a].cluster.empty())
          resolve(r.split->arms[a].cluster, rp + ".split.arms[" + std::to_string(a) + "].cluster", r.split->arms[a].cluster_index);
    if (r.mirror && !r.mirror->cluster.empty()) resolve(r.mirror->cluster, rp + ".mirror.cluster", r.mirror->cluster_index);
    if (r.cluster.empty()) continue;
    resolve(r.cluster, rp + ".cluster", r.cluster_index);
  }

  // Flags: the inline document first, then each file; a bad file never half-loads.
  {
    // Flag documents load the way flagd loads them (flags/flag_set.hpp); the admin API checks the
    // flags it writes strictly.
    std::vector<flags::FlagSetError> ferrs, fwarnings;
    auto set = flags::FlagSet::load(flag_sources, ferrs, flags::FlagSet::Strictness::kFlagd, &fwarnings);
    for (auto& e : ferrs) w.error(e.path, e.message);
    for (auto& e : fwarnings) result.warnings.push_back({std::move(e.path), std::move(e.message)});
    cfg.flag_set = set;
  }
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    auto& r = cfg.routes[i];
    std::string rp = "routes[" + std::to_string(i) + "]";
    if (!cfg.flag_set) continue;
    for (std::size_t j = 0; j < r.flags.size(); ++j)
      if (!cfg.flag_set->find(r.flags[j]))
        w.error(rp + ".flags[" + std::to_string(j) + "]", "unknown flag \"" + r.flags[j] + "\"");
    if (r.require_flag && !r.require_flag->flag.empty()) {
      const flags::Flag* f = cfg.flag_set->find(r.require_flag->flag);
      if (!f) w.error(rp + ".require_flag.flag", "unknown flag \"" + r.require_flag->flag + "\"");
      else if (!r.require_flag->variant.empty() && !f->findVariant(r.require_flag->variant))
        w.error(rp + ".require_flag.variant", "flag \"" + f->key + "\" has no variant \"" + r.require_flag->variant + "\"");
    }
  }

  for (std::size_t j = 0; j < cfg.metrics.flag_outcomes.size(); ++j)
    if (!cfg.flag_set || !cfg.flag_set->find(cfg.metrics.flag_outcomes[j]))
      w.error("metrics.flag_outcomes[" + std::to_string(j) + "]", "unknown flag \"" + cfg.metrics.flag_outcomes[j] + "\"");

  result.errors = std::move(w.errors);
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

std::vector<std::string> keepRestartOnly(const Config& running, Config& next) {
  std::vector<std::string> changed;
  auto keep = [&](const char* name, auto& field, const auto& old, bool same) {
    if (same) return;
    changed.emplace_back(name);
    field = old;
  };
  auto sameHost = [](const HostPort& a, const HostPort& b) { return a.host == b.host && a.port == b.port; };
  const auto& ra = running.admin;
  auto& na = next.admin;
  keep("workers", next.workers, running.workers, next.workers == running.workers);
  keep("admin.listen", na.listen, ra.listen, sameHost(na.listen, ra.listen));
  keep("admin.data_dir", na.data_dir, ra.data_dir, na.data_dir == ra.data_dir);
  keep("admin.tokens_file", na.tokens_file, ra.tokens_file, na.tokens_file == ra.tokens_file);
  keep("admin.tls", na.tls, ra.tls, na.tls == ra.tls);
  keep("admin.store", na.etcd, ra.etcd, na.etcd == ra.etcd);
  const auto& ro = running.ofrep;
  auto& no = next.ofrep;
  keep("ofrep.enabled", no.enabled, ro.enabled, no.enabled == ro.enabled);
  keep("ofrep.listen", no.listen, ro.listen, sameHost(no.listen, ro.listen));
  keep("ofrep.tokens_file", no.tokens_file, ro.tokens_file, no.tokens_file == ro.tokens_file);
  keep("ofrep.tls", no.tls, ro.tls, no.tls == ro.tls);
  keep("metrics.tokens_file", next.metrics.tokens_file, running.metrics.tokens_file,
       next.metrics.tokens_file == running.metrics.tokens_file);
  const auto& rl = running.access_log;
  auto& nl = next.access_log;
  keep("access_log", nl, rl, nl.enabled == rl.enabled && nl.path == rl.path && nl.queue_size == rl.queue_size);
  return changed;
}

ConfigResult loadConfigFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ConfigResult r;
    r.errors.push_back({"", "cannot read config file \"" + path + "\""});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto slash = path.rfind('/');
  return parseConfig(ss.str(), slash == std::string::npos ? "." : path.substr(0, slash));
}

}  // namespace fledge::proxy
