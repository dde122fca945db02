// fledge: the executable. Parses the command line, loads the config, starts the data plane
// and the admin listener, and drains on SIGTERM/SIGINT.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "admin/http_server.hpp"
#include "admin/metrics.hpp"
#include "admin/ofrep.hpp"
#include "proxy/access_log.hpp"
#include "proxy/config.hpp"
#include "proxy/echo_upstream.hpp"
#include "proxy/log.hpp"
#include "proxy/server.hpp"
#include "proxy/snapshot.hpp"

namespace {

namespace http = boost::beast::http;
using namespace fledge;

constexpr const char* kUsage =
    "usage:\n"
    "  fledge --config FILE            run the proxy\n"
    "  fledge --check-config FILE      validate FILE; exit 0, or print every problem and exit 2\n"
    "  fledge echo-upstream [--listen HOST:PORT] [--name NAME]\n"
    "                                  run a test upstream that answers with what it received\n";

std::string addressString(const boost::asio::ip::tcp::endpoint& ep) {
  auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

int checkConfig(const std::string& path) {
  auto result = proxy::loadConfigFile(path);
  if (result.ok()) {
    std::cout << path << ": ok\n";
    return 0;
  }
  for (const auto& e : result.errors) std::cerr << path << ": " << e.str() << "\n";
  return 2;
}

int run(const std::string& path) {
  auto result = proxy::loadConfigFile(path);
  if (!result.ok()) {
    for (const auto& e : result.errors) log::error("config error", {{"file", path}, {"field", e.path}, {"error", e.message}});
    return 2;
  }
  log::setLevel(result.config->log_level);
  std::string err;
  auto snap = proxy::Snapshot::create(std::move(*result.config), err);
  if (!snap) {
    log::error("config error", {{"file", path}, {"error", err}});
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
  admin::Metrics metrics(snap, server->workerMetrics());
  std::vector<std::string> metrics_tokens;
  if (!admin::loadTokens(snap->config.metrics.tokens_file, "FLEDGE_METRICS_TOKENS", metrics_tokens, err)) {
    log::error("cannot start metrics", {{"error", err}});
    return 1;
  }

  std::atomic<bool> ready{false};
  admin::HttpServerOptions admin_options;
  admin_options.on_response = [&metrics](unsigned status) { metrics.adminResponse(status); };
  admin::HttpServer admin(admin_options);
  metrics.install(admin, std::move(metrics_tokens));
  admin.every(std::chrono::seconds(1), [&metrics] { metrics.sample(admin::Metrics::Clock::now()); });
  admin.handle(http::verb::get, "/healthz",
               [](const admin::Request& req) { return admin::HttpServer::text(req, http::status::ok, "ok"); });
  admin.handle(http::verb::get, "/readyz", [&ready](const admin::Request& req) {
    return ready ? admin::HttpServer::text(req, http::status::ok, "ready")
                 : admin::HttpServer::text(req, http::status::service_unavailable, "not ready");
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

  // OFREP on its own listener and thread, so SDK traffic never queues behind the admin API.
  std::unique_ptr<admin::HttpServer> ofrep_server;
  std::unique_ptr<admin::OfrepService> ofrep;
  boost::asio::ip::tcp::endpoint ofrep_ep;
  if (snap->config.ofrep.enabled) {
    std::vector<std::string> tokens;
    if (!admin::loadTokens(snap->config.ofrep.tokens_file, "FLEDGE_OFREP_TOKENS", tokens, err)) {
      log::error("cannot start OFREP", {{"error", err}});
      return 1;
    }
    auto flag_set = snap->config.flag_set;
    ofrep = std::make_unique<admin::OfrepService>([flag_set] { return flag_set; }, std::move(tokens));
    ofrep_server = std::make_unique<admin::HttpServer>();
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

  // Signals are taken on this thread; workers never see them.
  boost::asio::io_context main_ioc;
  boost::asio::signal_set signals(main_ioc, SIGTERM, SIGINT);
  std::string signal_name;
  signals.async_wait([&](boost::system::error_code e, int sig) {
    if (!e) signal_name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
  });

  if (access_log) access_log->start();
  server->start();
  admin.start();
  if (ofrep_server) ofrep_server->start();
  for (std::size_t i = 0; i < server->endpoints().size(); ++i)
    log::info("listening", {{"listener", snap->config.listeners[i].name}, {"address", addressString(server->endpoints()[i])}});
  log::info("admin listening", {{"address", addressString(admin_ep)}});
  if (ofrep_server) log::info("ofrep listening", {{"address", addressString(ofrep_ep)}});
  log::info("started", {{"workers", std::to_string(server->workerCount())},
                        {"flags", std::to_string(snap->config.flag_set ? snap->config.flag_set->flags().size() : 0)},
                        {"routes", std::to_string(snap->config.routes.size())},
                        {"clusters", std::to_string(snap->config.clusters.size())}});
  ready = true;

  main_ioc.run();
  ready = false;
  log::info("draining", {{"signal", signal_name}, {"drain_ms", std::to_string(snap->config.timeouts.drain.count())}});
  bool clean = server->drainAndJoin(snap->config.timeouts.drain);
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
  if (args[0] == "echo-upstream") {
    proxy::EchoOptions opts;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == "--listen" && i + 1 < args.size()) opts.listen = args[++i];
      else if (args[i] == "--name" && i + 1 < args.size()) opts.name = args[++i];
      else {
        std::cerr << "unknown argument: " << args[i] << "\n" << kUsage;
        return 2;
      }
    }
    return proxy::runEchoUpstream(opts);
  }
  if (args.size() == 2 && args[0] == "--check-config") return checkConfig(std::string(args[1]));
  if (args.size() == 2 && args[0] == "--config") {
    try {
      return run(std::string(args[1]));
    } catch (const std::exception& e) {
      log::error("fatal", {{"error", e.what()}});
      return 1;
    }
  }
  std::cerr << kUsage;
  return 2;
}
