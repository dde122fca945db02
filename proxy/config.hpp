#pragma once
// Fledge's configuration: the JSON file format, its parser and its validation.
// Parsing never throws; every problem is reported with its field path.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http_head.hpp"
#include "proxy/resilience.hpp"
#include "proxy/tls_config.hpp"
#include "proxy/uri.hpp"

namespace fledge::flags {
class FlagSet;
}

namespace fledge::proxy {

struct HostPort {
  std::string host;  // as written: name, IPv4, or IPv6 without brackets
  std::uint16_t port = 0;
  std::string str() const;
  bool operator==(const HostPort&) const = default;
};

// Parses "host:port" or "[v6]:port". Returns an error message, or empty on success.
std::string parseHostPort(std::string_view s, HostPort& out, bool allow_port_zero);
// "localhost" (any case) or a loopback address literal (127.0.0.0/8, ::1): a name only this
// host can reach.
bool isLoopbackName(std::string_view host);

enum class LbPolicy { kRoundRobin, kLeastRequest };

// Active health checks of a cluster's endpoints (proxy/health.hpp).
struct HealthCheckConfig {
  std::string path = "/healthz";
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{500};
  std::uint32_t unhealthy_threshold = 3;
  std::uint32_t healthy_threshold = 2;
  std::vector<unsigned> expected_statuses{200};
  std::chrono::milliseconds jitter{100};  // added at random to each interval, so checks spread
};

// Circuit breaking over the whole process: beyond max_requests in flight to the cluster, or
// max_pending waiting for a connection, requests get a fast 503.
struct CircuitBreakerConfig {
  std::uint32_t max_requests = 1000;
  std::uint32_t max_pending = 100;
};

struct ClusterConfig {
  std::string name;
  std::vector<HostPort> endpoints;
  LbPolicy lb = LbPolicy::kRoundRobin;
  std::uint32_t max_connections = 1024;  // per worker per endpoint, busy + idle
  std::uint32_t max_idle = 64;           // kept-alive connections per worker per endpoint
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds eject_time{2'000};  // an endpoint that refused stays skipped this long
  std::optional<OutlierConfig> outlier_detection;  // passive: runs of failures eject an endpoint
  std::optional<HealthCheckConfig> health_check;   // active: unhealthy endpoints get no requests
  std::optional<CircuitBreakerConfig> circuit_breaker;
  std::optional<TlsClientConfig> tls;  // speak TLS to the endpoints
};

// Where a request value comes from: a header (name lowercased), a cookie or a query parameter.
struct ValueSource {
  enum class Kind { kHeader, kCookie, kQuery, kClientIp } kind = Kind::kHeader;
  std::string name;  // unused for kClientIp
};

// How the flag evaluation context is built from a request.
struct ContextSpec {
  std::vector<ValueSource> targeting_key;  // first source present wins
  std::vector<std::pair<std::string, ValueSource>> attributes;

  // Derived by prepare(): header sources keyed by (length, first and last character) so one pass
  // over the request's fields finds them all with integer compares.
  struct HeaderMatch {
    std::uint32_t key;
    std::uint32_t slot;  // targeting-key sources first, then attributes
  };
  std::vector<HeaderMatch> header_matches;
  // Open-addressing index over header_matches by key (-1 = empty); kTableSize > matches.
  static constexpr std::size_t kTableSize = 64;
  std::int16_t table[kTableSize];
  static std::size_t bucketOf(std::uint32_t key) { return (key * 2654435761u) >> 26; }
  bool has_non_header = false;
  void prepare();  // keys are proxy::fieldKey(name)
};

struct SplitArmConfig {
  std::string name;
  std::string cluster;
  std::size_t cluster_index = 0;  // resolved by validation
  double weight = 0;              // percent, up to 4 decimals
  std::uint32_t parts = 0;        // weight in parts per million
};

// No sticky key on a request: generate an id, use it, and set it as a cookie.
struct AssignCookieConfig {
  std::string name = "fledge_uid";
  std::uint32_t max_age = 30 * 24 * 3600;
  bool secure = false;
  bool http_only = true;
  std::string same_site = "Lax";  // Strict, Lax or None
  std::string path = "/";
};

// Testers may force an arm with a header and/or cookie naming it ("canary" or "canary;token=T").
struct OverrideConfig {
  std::string header;  // lowercased; empty = not by header
  std::string cookie;  // empty = not by cookie
  std::vector<std::string> allow;  // arms that may be forced
  std::string token;   // required when non-empty (from "token" or the variable named by "token_env")
};

struct SplitConfig {
  std::vector<SplitArmConfig> arms;
  std::string salt;  // defaults to the route name
  std::vector<ValueSource> sticky;  // key sources in order; none found: assign_cookie or random
  std::optional<AssignCookieConfig> assign_cookie;
  std::optional<OverrideConfig> overrides;
  bool expose_arm_header = false;
  // When no endpoint of the chosen arm's cluster can take the request (all ejected, unhealthy or
  // refusing), it goes to this arm instead of failing (canary-aware failure handling).
  std::string fallback_arm;
  std::size_t fallback_index = SIZE_MAX;  // into arms; SIZE_MAX: none
};

// Shadow traffic: a copy of a share of requests goes to another cluster; its answer is dropped.
struct MirrorConfig {
  std::string cluster;
  std::size_t cluster_index = 0;
  double percent = 0;
  std::uint32_t parts = 0;
  std::uint64_t max_body_bytes = 1 << 20;  // larger bodies are not mirrored
  std::uint32_t max_in_flight = 64;        // per worker; excess copies are dropped and counted
  std::chrono::milliseconds timeout{5'000};
};

struct RequireFlag {
  std::string flag;
  std::string variant;
  unsigned status = 404;
};

struct RouteConfig {
  std::string name;
  std::string host;  // empty = any; "*.example.com" matches subdomains; compared case-insensitively
  std::string path_prefix;  // empty = any
  std::string cluster;
  std::size_t cluster_index = 0;  // resolved by validation
  bool all_flags = false;          // "flags": "*"
  std::vector<std::string> flags;  // flag keys to evaluate and pass upstream in x-fledge-flags
  std::optional<ContextSpec> context;  // replaces the global evaluation_context when set
  std::optional<RequireFlag> require_flag;
  std::optional<SplitConfig> split;    // instead of `cluster`
  std::optional<MirrorConfig> mirror;
  std::optional<RetryPolicy> retry;
};

struct ListenerConfig {
  std::string name;
  HostPort address;
  std::optional<TlsServerConfig> tls;  // HTTPS
  // A plain listener that answers every request with a redirect to https:// on this port.
  std::optional<std::uint16_t> redirect_https_port;
};

struct Timeouts {
  std::chrono::milliseconds header_read{10'000};        // first byte to end of headers
  std::chrono::milliseconds idle{60'000};               // keep-alive wait for the next request
  std::chrono::milliseconds body_read{60'000};          // inactivity while reading a request body
  std::chrono::milliseconds upstream_connect{2'000};
  std::chrono::milliseconds upstream_response{30'000};  // request sent to response headers, and body inactivity
  std::chrono::milliseconds drain{10'000};              // SIGTERM: time allowed for in-flight requests
};

struct Limits {
  std::uint32_t max_request_line = 8 * 1024;
  std::uint32_t max_header_bytes = 64 * 1024;
  std::uint32_t max_headers = 100;
  std::uint64_t max_body_bytes = 0;  // 0 = unlimited
  std::uint32_t max_connections = 0;  // per worker; 0 = unlimited
  // A request body must keep an average of this many bytes per second once timeouts.body_read has
  // passed (the deadline is body start + body_read + bytes received / rate); 0 = no rate rule.
  std::uint32_t min_body_rate = 1024;
};

// How request targets and header names are treated (README: "Security").
enum class PathNormalization {
  kForwardNormalized,  // route on the normalized path and forward it (nginx's default)
  kMatchOnly,          // route on the normalized path, forward the target as received
  kReject,             // answer 400 to any target whose path is not already normalized
};

struct HttpConfig {
  PathNormalization path_normalization = PathNormalization::kForwardNormalized;
  EncodedSlashes encoded_slashes = EncodedSlashes::kReject;
  UnderscoreHeaders underscores_in_headers = UnderscoreHeaders::kDrop;
};

// admin.store.etcd: the admin state in etcd, shared by a fleet of instances (admin/fleet.hpp).
struct EtcdStoreConfig {
  std::vector<HostPort> endpoints;
  std::string prefix = "/fledge/";  // every key Fledge writes starts with it
  std::optional<TlsClientConfig> tls;
  std::string username;
  std::string password_env;  // the environment variable holding the password
  std::string member;        // this instance's id in the fleet; empty: <host name>:<admin port>
  unsigned lease_ttl_s = 3;  // a dead leader's rollouts move to another instance within this
  bool operator==(const EtcdStoreConfig&) const = default;
};

struct AdminConfig {
  HostPort listen{"127.0.0.1", 9901};
  std::string data_dir;     // the admin API's RocksDB store; empty: no /api/v1 (the file is the truth)
  std::optional<EtcdStoreConfig> etcd;  // instead of data_dir: the state in etcd, for a fleet
  std::string tokens_file;  // "name:role:token" lines; also FLEDGE_ADMIN_TOKENS
  std::optional<TlsServerConfig> tls;
};

struct MetricsConfig {
  bool enabled = true;
  std::string tokens_file;  // read tokens for GET /metrics; also FLEDGE_METRICS_TOKENS
  // Flags whose variants get response counters (requests by status class, latency), counted
  // per variant over every request that evaluated the flag; flag rollouts judge by them.
  std::vector<std::string> flag_outcomes;
  static constexpr std::size_t kMaxFlagOutcomes = 8;
};

struct AccessLogConfig {
  bool enabled = false;
  std::string path;  // empty or "-": stderr
  std::uint32_t queue_size = 8192;  // lines buffered per worker; when full, lines are dropped and counted
};

struct OfrepConfig {
  bool enabled = true;
  HostPort listen{"127.0.0.1", 8016};
  std::string tokens_file;  // one token per line; also FLEDGE_OFREP_TOKENS (comma-separated)
  std::optional<TlsServerConfig> tls;
};

struct Config {
  std::vector<ListenerConfig> listeners;
  unsigned workers = 0;  // 0 = number of cores
  AdminConfig admin;
  Timeouts timeouts;
  Limits limits;
  HttpConfig http;
  std::vector<ClusterConfig> clusters;
  std::vector<RouteConfig> routes;
  std::string log_level = "info";
  ContextSpec context;                                  // evaluation_context
  std::shared_ptr<const flags::FlagSet> flag_set;       // "flags" + "flag_files", compiled
  std::vector<std::string> flag_file_paths;             // flag_files as read (resolved against the config's directory)
  OfrepConfig ofrep;
  MetricsConfig metrics;
  AccessLogConfig access_log;

};

struct ConfigError {
  std::string path;
  std::string message;
  std::string str() const { return path.empty() ? message : path + ": " + message; }
};

struct ConfigResult {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
  // What loads but deserves attention: flag targeting loaded the flagd way (flags answering
  // PARSE_ERROR, operators that evaluate to null). `--check-config --strict` fails on them.
  std::vector<ConfigError> warnings;
  bool ok() const { return config.has_value(); }
};

// A reload keeps what only a restart can change (workers, the admin and OFREP listeners and
// tokens, the metrics tokens, the access log): those fields of `next` are set back to
// `running`'s, and the names of the ones that differed are returned for a warning.
std::vector<std::string> keepRestartOnly(const Config& running, Config& next);

// `base_dir` resolves relative flag_files paths.
ConfigResult parseConfig(std::string_view json, const std::string& base_dir = ".");
ConfigResult loadConfigFile(const std::string& path);

}  // namespace fledge::proxy
