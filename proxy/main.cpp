// fledge: the executable. Parses the command line, loads the config, starts the data plane
// and the admin listener, and drains on SIGTERM/SIGINT.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "admin/api.hpp"
#include "admin/etcd_store.hpp"
#include "admin/fleet.hpp"
#include "admin/http_server.hpp"
#include "admin/metrics.hpp"
#include "admin/ofrep.hpp"
#include "admin/stats.hpp"
#include "admin/ui.hpp"
#include "ctl/ctl.hpp"
#include "proxy/access_log.hpp"
#include "proxy/config.hpp"
#include "proxy/echo_upstream.hpp"
#include "proxy/file_watcher.hpp"
#include "proxy/health.hpp"
#include "proxy/log.hpp"
#include "proxy/sd_notify.hpp"
#include "proxy/server.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/tls.hpp"

namespace {

namespace http = boost::beast::http;
using namespace fledge;

constexpr const char* kUsage =
    "usage:\n"
    "  fledge --config FILE [--reseed] run the proxy; --reseed replaces the admin store's state with FILE's\n"
    "  fledge --check-config FILE [--strict]\n"
    "                                  validate FILE; exit 0 (warnings printed), or print every problem and exit 2\n"
    "                                  (--strict: warnings too, e.g. flags whose targeting does not compile)\n"
    "  fledge --version, -V            print \"fledge VERSION\" and exit\n"
    "  fledge echo-upstream [--listen HOST:PORT] [--name NAME] [--fail-rate R] [--fail-status N] [--delay-ms N]\n"
    "                       [--fail-match TEXT]  (failures and delay only for requests with a header value containing TEXT)\n"
    "                       [--reset-rate R] [--hang-rate R] [--healthz-status N]  (resets, no answer, GET /healthz status)\n"
    "                                  run a test upstream that answers with what it received\n"
    "  fledge ctl status|split|flag|rollout ...\n"
    "                                  the admin API from the command line (fledge ctl --help)\n";

// Problems only loading the files shows: certificates and keys that do not load or match.
std::vector<std::string> checkTlsFiles(const proxy::Config& cfg) {
  std::vector<std::string> out;
  std::string err;
  auto server = [&](const std::optional<proxy::TlsServerConfig>& tls, const std::string& where) {
    if (tls && !proxy::ServerTls::create(*tls, err)) out.push_back(where + ".tls: " + err);
  };
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) server(cfg.listeners[i].tls, "listeners[" + std::to_string(i) + "]");
  server(cfg.admin.tls, "admin");
  server(cfg.ofrep.tls, "ofrep");
  for (const auto& c : cfg.clusters)
    if (c.tls && !proxy::ClientTls::obtain(*c.tls, err)) out.push_back("clusters." + c.name + ".tls: " + err);
  return out;
}

// Errors exit 2; warnings (flags loaded the flagd way) are printed and exit 0, or 2 with `strict`.
int checkConfig(const std::string& path, bool strict) {
  auto result = proxy::loadConfigFile(path);
  if (!result.ok()) {
    for (const auto& e : result.errors) std::cerr << path << ": " << e.str() << "\n";
    return 2;
  }
  const auto problems = checkTlsFiles(*result.config);
  for (const auto& p : problems) std::cerr << path << ": " << p << "\n";
  if (!problems.empty()) return 2;
  for (const auto& w : result.warnings) std::cerr << path << ": warning: " << w.str() << "\n";
  if (strict && !result.warnings.empty()) {
    std::cerr << path << ": " << result.warnings.size() << " warning(s), refused by --strict\n";
    return 2;
  }
  std::cout << path << ": ok" << (result.warnings.empty() ? "" : " (" + std::to_string(result.warnings.size()) + " warnings)") << "\n";
  return 0;
}

void logWarnings(const std::string& path, const std::vector<proxy::ConfigError>& warnings) {
  for (const auto& w : warnings) log::warn("config warning", {{"file", path}, {"field", w.path}, {"warning", w.message}});
}

std::string readFile(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  ok = static_cast<bool>(in) || in.eof();
  return ss.str();
}

std::string hostName() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 && name[0] ? std::string(name) : std::string("fledge");
}

// Reloads of the files while running. Without admin.data_dir the files are the truth: SIGHUP
// re-reads the configuration and its flag files, a change to a flag file re-reads the flag files
// (against the configuration last applied). With a data_dir the store is the truth: SIGHUP
// applies only the log level. Both reload TLS certificates. Each reload is validated whole and
// applied in one step, or refused with the running configuration left as it was.
class LiveFiles {
 public:
  enum class Source { kSignal, kFlagFile };
  using Apply = std::function<bool(std::shared_ptr<const proxy::Snapshot>, bool listeners_may_change, std::string& error)>;

  LiveFiles(std::string path, std::string text, bool store_is_truth, std::shared_ptr<const proxy::Snapshot> running, Apply apply)
      : path_(std::move(path)),
        base_dir_(path_.rfind('/') == std::string::npos ? "." : path_.substr(0, path_.rfind('/'))),
        text_(std::move(text)),
        store_is_truth_(store_is_truth),
        running_(std::move(running)),
        apply_(std::move(apply)) {}

  // On one thread at a time. True if the reload applied.
  bool reload(Source source) {
    const bool signal = source == Source::kSignal;
    std::string text = text_;
    std::string error;
    bool ok = true;
    if (signal) text = readFile(path_, ok);
    if (!ok) error = "cannot read config file \"" + path_ + "\"";
    std::optional<proxy::ConfigResult> result;
    if (error.empty()) {
      result = proxy::parseConfig(text, base_dir_);
      if (!result->ok()) {
        for (const auto& e : result->errors)
          log::error("reload refused; the running configuration stays", {{"source", name(source)}, {"file", path_}, {"field", e.path}, {"error", e.message}});
        error = std::to_string(result->errors.size()) + " configuration error(s)";
      }
    }
    if (error.empty() && store_is_truth_) {  // the admin store holds the rest
      log::setLevel(result->config->log_level);
      text_ = std::move(text);
      return count(source, true), true;
    }
    if (error.empty()) {
      logWarnings(path_, result->warnings);
      proxy::Config next = std::move(*result->config);
      for (const auto& field : proxy::keepRestartOnly(running_->config, next))
        log::warn("changed in the config file but needs a restart; the running value stays", {{"field", field}});
      auto snap = proxy::Snapshot::create(std::move(next), error);
      if (snap && apply_(snap, signal, error)) {
        log::setLevel(snap->config.log_level);
        running_ = snap;
        text_ = std::move(text);
        log::info("configuration reloaded",
                  {{"source", name(source)}, {"flags", std::to_string(snap->config.flag_set ? snap->config.flag_set->flags().size() : 0)},
                   {"routes", std::to_string(snap->config.routes.size())}, {"clusters", std::to_string(snap->config.clusters.size())}});
        return count(source, true), true;
      }
    }
    log::error("reload failed; the running configuration stays", {{"source", name(source)}, {"file", path_}, {"error", error}});
    return count(source, false), false;
  }

  const std::vector<std::string>& flagFiles() const { return running_->config.flag_file_paths; }
  std::vector<admin::ReloadCount> counts() const {
    std::vector<admin::ReloadCount> out;
    for (auto s : {Source::kSignal, Source::kFlagFile})
      for (bool ok : {true, false})
        out.push_back({name(s), ok ? "ok" : "failed", counts_[index(s, ok)].load(std::memory_order_relaxed)});
    return out;
  }

 private:
  static const char* name(Source s) { return s == Source::kSignal ? "sighup" : "flag_file"; }
  static std::size_t index(Source s, bool ok) { return (s == Source::kSignal ? 0 : 2) + (ok ? 0 : 1); }
  void count(Source s, bool ok) { counts_[index(s, ok)].fetch_add(1, std::memory_order_relaxed); }

  std::string path_, base_dir_, text_;
  bool store_is_truth_;
  std::shared_ptr<const proxy::Snapshot> running_;
  Apply apply_;
  std::atomic<std::uint64_t> counts_[4] = {};
};

int run(const std::string& path, bool reseed) {
  bool readable = true;
  std::string config_text = readFile(path, readable);
  auto result = readable ? proxy::parseConfig(config_text, path.rfind('/') == std::string::npos ? "." : path.substr(0, path.rfind('/')))
                         : proxy::ConfigResult{std::nullopt, {{"", "cannot read config file \"" + path + "\""}}, {}};
  if (!result.ok()) {
    for (const auto& e : result.errors) log::error("config error", {{"file", path}, {"field", e.path}, {"error", e.message}});
    return 2;
  }
  log::setLevel(result.config->log_level);
  logWarnings(path, result.warnings);
  std::string err;
  auto snap = proxy::Snapshot::create(std::move(*result.config), err);
  if (!snap) {
    log::error("config error", {{"file", path}, {"error", err}});
    return 2;
  }
  // Admin tokens guard /api/v1 (the store's API with a data_dir, the log level always).
  std::vector<admin::ApiToken> tokens;
  if (!admin::loadApiTokens(snap->config.admin.tokens_file, "FLEDGE_ADMIN_TOKENS", tokens, err)) {
    log::error("cannot start admin API", {{"error", err}});
    return 1;
  }
  const bool admin_open = tokens.empty() && !proxy::isLoopbackName(snap->config.admin.listen.host);  // no tokens, reachable from outside
  // With a data_dir the admin API's store is the truth; the file only seeds an empty store.
  std::unique_ptr<admin::AdminApi> api;
  std::shared_ptr<std::atomic<std::shared_ptr<const proxy::Snapshot>>> current =
      std::make_shared<std::atomic<std::shared_ptr<const proxy::Snapshot>>>(snap);
  std::function<void(std::shared_ptr<const proxy::Snapshot>)> on_publish;  // set once the server exists
  const std::optional<proxy::EtcdStoreConfig> etcd_cfg = snap->config.admin.etcd;  // a copy: `snap` is replaced below
  admin::etcd::Options etcd_options;  // fleet mode: the state in etcd
  admin::EtcdKeys etcd_keys;
  if (etcd_cfg) {
    etcd_options.endpoints = etcd_cfg->endpoints;
    etcd_options.tls = etcd_cfg->tls;
    etcd_options.username = etcd_cfg->username;
    if (!etcd_cfg->password_env.empty()) {
      const char* pw = std::getenv(etcd_cfg->password_env.c_str());
      if (!pw) {
        log::error("cannot start the fleet store", {{"field", "admin.store.etcd.password_env"},
                                                    {"error", "environment variable " + etcd_cfg->password_env + " is not set"}});
        return 1;
      }
      etcd_options.password = pw;
    }
    etcd_keys.prefix = etcd_cfg->prefix;
  }
  if (!snap->config.admin.data_dir.empty() || etcd_cfg) {
    if (admin_open) {
      log::error("refusing to serve the admin API on a non-loopback address without tokens",
                 {{"address", snap->config.admin.listen.str()}});
      return 1;
    }
    std::unique_ptr<admin::Store> store = etcd_cfg ? std::make_unique<admin::EtcdStore>(etcd_options, etcd_keys)
                                                   : admin::openRocksStore(snap->config.admin.data_dir, err);
    if (!store) {
      log::error("cannot open the admin store", {{"error", err}});
      return 1;
    }
    auto slash = path.rfind('/');
    api = std::make_unique<admin::AdminApi>(std::move(store), config_text, slash == std::string::npos ? "." : path.substr(0, slash),
                                            tokens, [&on_publish](std::shared_ptr<const proxy::Snapshot> s) {
                                              if (on_publish) on_publish(std::move(s));
                                            });
    auto stored = api->start(reseed, err);
    if (!stored) {
      log::error("cannot start from the admin store",
                 {{"store", etcd_cfg ? "etcd " + etcd_keys.prefix : snap->config.admin.data_dir}, {"error", err}});
      return 1;
    }
    snap = stored;
    current->store(snap);
    log::info("admin store loaded", {{"store", etcd_cfg ? "etcd " + etcd_keys.prefix : snap->config.admin.data_dir},
                                     {"version", std::to_string(api->version())},
                                     {"reseeded", reseed ? "true" : "false"}});
  } else if (reseed) {
    log::error("--reseed needs admin.data_dir or admin.store");
    return 2;
  }
  auto server = proxy::Server::create(snap, err);
  if (!server) {
    log::error("cannot start", {{"error", err}});
    return 1;
  }

  // Access log (optional) and metrics, both fed by the workers.
  std::unique_ptr<proxy::AccessLog> access_log;
  if (snap->config.access_log.enabled) {
    access_log = std::make_unique<proxy::AccessLog>(snap->config.access_log, server->workerCount());
    for (auto* w : server->workers()) w->setAccessLog(access_log.get());
  }
  admin::Metrics metrics([&server, current] { return std::make_pair(current->load(), server->workerMetrics()); });
  // The configuration's version: the store's with a data_dir, else 1 and one more per reload.
  std::uint64_t file_version = 1;
  metrics.setConfigVersion(api ? api->version() : file_version);
  // Active health checks: one checker for the process, following every published configuration.
  proxy::HealthChecker health;
  health.update(snap);
  metrics.addCollector([&health] { return admin::healthFamilies(health.states()); });
  on_publish = [&server, &metrics, &api, &health, current, &file_version](std::shared_ptr<const proxy::Snapshot> s) {
    current->store(s);
    health.update(s);
    server->publish(std::move(s));
    metrics.setConfigVersion(api ? api->version() : ++file_version);
  };
  std::vector<std::string> metrics_tokens;
  if (!admin::loadTokens(snap->config.metrics.tokens_file, "FLEDGE_METRICS_TOKENS", metrics_tokens, err)) {
    log::error("cannot start metrics", {{"error", err}});
    return 1;
  }

  // Live files: SIGHUP and flag-file changes, applied on this (the main) thread.
  boost::asio::io_context main_ioc;
  LiveFiles live(path, config_text, api != nullptr, snap,
                 [&server, &on_publish](std::shared_ptr<const proxy::Snapshot> s, bool listeners_may_change, std::string& error) {
                   if (listeners_may_change && !server->updateListeners(s->config.listeners, error)) return false;
                   on_publish(std::move(s));
                   return true;
                 });
  metrics.addCollector([&live] { return admin::reloadFamilies(live.counts()); });
  // A burst of writes to a flag file is read once, 100 ms after it ends.
  std::unique_ptr<proxy::FileWatcher> flag_watcher;
  // After every reload: the files may have changed, and a directory replaced or removed has lost
  // its watch; a directory that cannot be watched is logged once until it can be again.
  bool watch_failed = false;
  auto watchFlagFiles = [&flag_watcher, &live, &watch_failed] {
    std::string e;
    const bool ok = live.flagFiles().empty() || flag_watcher->watch(live.flagFiles(), e);
    if (!ok && !watch_failed) log::error("flag files are not watched; SIGHUP still reloads them", {{"error", e}});
    watch_failed = !ok;
  };
  flag_watcher = std::make_unique<proxy::FileWatcher>(
      [&main_ioc, &live, &watchFlagFiles] {
        boost::asio::post(main_ioc, [&live, &watchFlagFiles] {
          live.reload(LiveFiles::Source::kFlagFile);
          watchFlagFiles();
        });
      },
      std::chrono::milliseconds(100));
  if (!api) watchFlagFiles();

  std::atomic<bool> ready{false};
  admin::HttpServerOptions admin_options;
  admin_options.on_response = [&metrics](unsigned status) { metrics.adminResponse(status); };
  admin::HttpServer admin(admin_options);
  // HTTPS on a control-plane listener (reloaded with the proxy's certificates); false: cannot load.
  auto serveTls = [&err](admin::HttpServer& server, const char* name, const std::optional<proxy::TlsServerConfig>& cfg) {
    if (!cfg) return true;
    auto tls = proxy::ReloadableServerTls::create(name, *cfg, err);
    if (!tls) {
      log::error("cannot start listener", {{"field", std::string(name) + ".tls"}, {"error", err}});
      return false;
    }
    proxy::tls_registry::add(tls);
    server.setTls(std::move(tls));
    return true;
  };
  if (!serveTls(admin, "admin", snap->config.admin.tls)) return 1;
  metrics.addCollector([] { return admin::tlsFamilies(proxy::tls_registry::certificates(), proxy::tls_registry::counts()); });
  metrics.install(admin, std::move(metrics_tokens));
  if (api) {
    // The console's live numbers (registered first: they shadow the API's /api/v1/ prefix), the
    // API, and the console itself.
    admin::installStats(admin,
                        {[current] { return current->load(); }, &metrics, [&health] { return health.states(); }}, tokens);
    api->install(admin);
    admin::installConsole(admin);
  } else if (!admin_open) {
    for (auto verb : {http::verb::get, http::verb::put})
      admin.handle(verb, "/api/v1/log-level", [&tokens](const admin::Request& req) { return admin::logLevelEndpoint(req, tokens); });
  } else {
    log::warn("the log level cannot be changed through the admin listener: it is not on loopback and has no tokens",
              {{"address", snap->config.admin.listen.str()}});
  }
  admin.every(std::chrono::seconds(1), [&metrics] { metrics.sample(admin::Metrics::Clock::now()); });
  std::unique_ptr<admin::Fleet> fleet;  // created once the admin port is known (it names the member)
  if (api) {
    // In a fleet the leader judges rollouts on everyone's counts.
    api->setCounts(
        [&metrics, &fleet](const std::string& route, const std::string& arm) {
          return fleet ? fleet->counts(admin::armCountsKey(route, arm)) : metrics.armCounts(route, arm);
        },
        [&metrics, &fleet](const std::string& flag, const std::string& variant) {
          return fleet ? fleet->counts(admin::variantCountsKey(flag, variant)) : metrics.flagOutcomeCounts(flag, variant);
        });
    api->setWebhookExecutor(admin.workExecutor());
    metrics.addCollector([&api] { return api->rolloutMetrics(); });
    admin.every(std::chrono::seconds(1), [&api] { api->tickRollouts(); }, admin::HttpServer::Runs::kWorkThread);
  }
  admin.handle(http::verb::get, "/healthz",
               [](const admin::Request& req) { return admin::HttpServer::text(req, http::status::ok, "ok"); });
  admin.handle(http::verb::get, "/readyz", [&ready, &fleet](const admin::Request& req) {
    if (!ready) return admin::HttpServer::text(req, http::status::service_unavailable, "not ready");
    // The data plane never waits for etcd: ready, with the reason writes are refused.
    if (fleet && !fleet->storeUp())
      return admin::HttpServer::text(req, http::status::ok,
                                     "ready (fleet store unreachable: " + fleet->storeError() +
                                         "; serving the last applied state, admin writes answer 503)");
    return admin::HttpServer::text(req, http::status::ok, "ready");
  });
  boost::asio::ip::tcp::endpoint admin_ep;
  err = proxy::resolveHostPort(snap->config.admin.listen, admin_ep);
  boost::system::error_code ec;
  if (err.empty()) {
    admin_ep = admin.listen(admin_ep, ec);
    if (ec) err = ec.message();
  }
  if (!err.empty()) {
    log::error("cannot start admin listener", {{"address", snap->config.admin.listen.str()}, {"error", err}});
    return 1;
  }
  if (etcd_cfg) {
    admin::Fleet::Options fo;
    fo.etcd = etcd_options;
    fo.keys = etcd_keys;
    fo.member_id = etcd_cfg->member.empty() ? hostName() + ":" + std::to_string(admin_ep.port()) : etcd_cfg->member;
    fo.admin_address = proxy::endpointString(admin_ep);
    fo.lease_ttl = std::chrono::seconds(etcd_cfg->lease_ttl_s);
    fleet = std::make_unique<admin::Fleet>(
        std::move(fo), *api, admin.workExecutor(), [&metrics] { return metrics.configVersion(); },
        [&metrics, current] {
          // Every split route's arms and every observed flag's variants (flags under rollout
          // are observed), cumulative: the leader sums them over the fleet.
          admin::CountsByKey out;
          const auto s = current->load();
          for (const auto& r : s->config.routes)
            if (r.split)
              for (const auto& a : r.split->arms) out[admin::armCountsKey(r.name, a.name)] = metrics.armCounts(r.name, a.name);
          if (const auto& set = s->config.flag_set)
            for (const auto& key : s->config.metrics.flag_outcomes)
              if (const auto* f = set->find(key))
                for (const auto& v : f->variants) out[admin::variantCountsKey(key, v.name)] = metrics.flagOutcomeCounts(key, v.name);
          return out;
        });
    api->setRolloutDriver([&fleet] { return fleet->isLeader(); });
    api->setFleetView([&fleet] { return fleet->view(); });
    metrics.addCollector([&fleet] { return fleet->metrics(); });
    fleet->start(api->storeRevision());
  }

  // OFREP on its own listener and thread, so SDK traffic never queues behind the admin API.
  std::unique_ptr<admin::HttpServer> ofrep_server;
  std::unique_ptr<admin::OfrepService> ofrep;
  boost::asio::ip::tcp::endpoint ofrep_ep;
  if (snap->config.ofrep.enabled) {
    std::vector<std::string> ofrep_tokens;
    if (!admin::loadTokens(snap->config.ofrep.tokens_file, "FLEDGE_OFREP_TOKENS", ofrep_tokens, err)) {
      log::error("cannot start OFREP", {{"error", err}});
      return 1;
    }
    ofrep = std::make_unique<admin::OfrepService>([current] { return current->load()->config.flag_set; }, std::move(ofrep_tokens));
    ofrep_server = std::make_unique<admin::HttpServer>();
    if (!serveTls(*ofrep_server, "ofrep", snap->config.ofrep.tls)) return 1;
    ofrep->install(*ofrep_server);
    err = proxy::resolveHostPort(snap->config.ofrep.listen, ofrep_ep);
    if (err.empty()) {
      ofrep_ep = ofrep_server->listen(ofrep_ep, ec);
      if (ec) err = ec.message();
    }
    if (!err.empty()) {
      log::error("cannot start OFREP listener", {{"address", snap->config.ofrep.listen.str()}, {"error", err}});
      return 1;
    }
  }

  // systemd (Type=notify): READY once listening, RELOADING/READY around a SIGHUP reload,
  // STOPPING when draining starts. Without $NOTIFY_SOCKET nothing is sent.
  auto notify = [](bool (*send)(std::string_view, std::string&), std::string_view status) {
    std::string e;
    if (!send(status, e) && !e.empty()) log::warn("systemd notification failed", {{"error", e}});
  };
  // Signals are taken on this thread; workers never see them.
  boost::asio::signal_set signals(main_ioc, SIGTERM, SIGINT);
  std::string signal_name;
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (!e) signal_name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
    main_ioc.stop();
  });
  // SIGHUP: the files are read again (see LiveFiles) and certificates reloaded (new handshakes
  // use them; a bad file keeps the old ones).
  boost::asio::signal_set hangup(main_ioc, SIGHUP);
  std::function<void()> on_hangup = [&] {
    hangup.async_wait([&](boost::system::error_code e, int) {
      if (e) return;
      notify(proxy::sdNotifyReloading, "reloading");
      log::info("SIGHUP: reloading the configuration and TLS certificates", {{"file", path}});
      live.reload(LiveFiles::Source::kSignal);
      if (!api) watchFlagFiles();
      proxy::tls_registry::reload(true);
      notify(proxy::sdNotifyReady, "serving");
      on_hangup();
    });
  };
  on_hangup();
  // Certificate files are also watched: a change applies within a second.
  proxy::tls_registry::startWatching(std::chrono::seconds(1));

  if (access_log) access_log->start();
  server->start();
  admin.start();
  if (ofrep_server) ofrep_server->start();
  for (std::size_t i = 0; i < server->endpoints().size(); ++i)
    log::info("listening", {{"listener", snap->config.listeners[i].name}, {"address", proxy::endpointString(server->endpoints()[i])}});
  log::info("admin listening", {{"address", proxy::endpointString(admin_ep)}});
  if (ofrep_server) log::info("ofrep listening", {{"address", proxy::endpointString(ofrep_ep)}});
  log::info("started", {{"workers", std::to_string(server->workerCount())},
                        {"flags", std::to_string(snap->config.flag_set ? snap->config.flag_set->flags().size() : 0)},
                        {"routes", std::to_string(snap->config.routes.size())},
                        {"clusters", std::to_string(snap->config.clusters.size())}});
  ready = true;
  notify(proxy::sdNotifyReady, "serving");

  main_ioc.run();
  notify(proxy::sdNotifyStopping, "draining");
  if (fleet) fleet->stop();  // hands the rollout leadership over at once
  proxy::tls_registry::stopWatching();
  ready = false;
  const auto drain = current->load()->config.timeouts.drain;
  log::info("draining", {{"signal", signal_name}, {"drain_ms", std::to_string(drain.count())}});
  bool clean = server->drainAndJoin(drain);
  if (!clean) log::warn("drain time exceeded; remaining connections closed");
  admin.stop();
  if (ofrep_server) ofrep_server->stop();
  if (access_log && !access_log->stop())
    access_log.release();  // its writer is stuck on a dead sink and still uses it; the process is exiting
  log::info("stopped", {{"clean", clean ? "true" : "false"}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  if (args[0] == "-h" || args[0] == "--help") {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() == 1 && (args[0] == "-V" || args[0] == "--version")) {
    std::cout << "fledge " FLEDGE_VERSION "\n";
    return 0;
  }
  if (args[0] == "ctl") return fledge::ctl::run({args.begin() + 1, args.end()}, std::cout, std::cerr);
  if (args[0] == "echo-upstream") {
    proxy::EchoOptions opts;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--listen" && i + 1 < args.size()) opts.listen = args[++i];
      else if (args[i] == "--name" && i + 1 < args.size()) opts.name = args[++i];
      else if (args[i] == "--fail-match" && i + 1 < args.size())
        opts.fail_match = std::string(args[++i]);
      else if ((args[i] == "--fail-rate" || args[i] == "--fail-status" || args[i] == "--delay-ms" || args[i] == "--reset-rate" ||
                args[i] == "--hang-rate" || args[i] == "--healthz-status") && i + 1 < args.size()) {
        const std::string_view name = args[i], text = args[++i];
        const bool rate = name == "--fail-rate" || name == "--reset-rate" || name == "--hang-rate";
        const bool status = name == "--fail-status" || name == "--healthz-status";
        const double lo = status ? 100 : 0, hi = rate ? 1 : status ? 599 : 600'000;
        double v = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi || (!rate && v != std::floor(v))) {
          std::cerr << name << " must be " << (rate ? "a number" : "a whole number") << " from " << lo << " to " << hi << "\n";
          return 2;
        }
        if (name == "--fail-rate") opts.fail_rate = v;
        else if (name == "--reset-rate") opts.reset_rate = v;
        else if (name == "--hang-rate") opts.hang_rate = v;
        else if (name == "--fail-status") opts.fail_status = unsigned(v);
        else if (name == "--healthz-status") opts.healthz_status = unsigned(v);
        else opts.delay_ms = unsigned(v);
      } else {
        std::cerr << "unknown argument: " << args[i] << "\n" << kUsage;
        return 2;
      }
    }
    return proxy::runEchoUpstream(opts);
  }
  if (args.size() >= 2 && args.size() <= 3 && args[0] == "--check-config" && (args.size() == 2 || args[2] == "--strict"))
    return checkConfig(std::string(args[1]), args.size() == 3);
  if ((args.size() == 2 || (args.size() == 3 && args[2] == "--reseed")) && args[0] == "--config") {
    try {
      return run(std::string(args[1]), args.size() == 3);
    } catch (const std::exception& e) {
      log::error("fatal", {{"error", e.what()}});
      return 1;
    }
  }
  std::cerr << kUsage;
  return 2;
}
