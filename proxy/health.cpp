#include "proxy/health.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <thread>

#include "proxy/log.hpp"
#include "proxy/snapshot.hpp"
#include "proxy/upstream_connection.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool HealthState::record(bool passed, const HealthCheckConfig& cfg) {
  if (passed) {
    failures_ = 0;
    if (!healthy_ && ++passes_ >= cfg.healthy_threshold) {
      healthy_ = true;
      passes_ = 0;
      return true;
    }
    return false;
  }
  passes_ = 0;
  if (healthy_ && ++failures_ >= cfg.unhealthy_threshold) {
    healthy_ = false;
    failures_ = 0;
    return true;
  }
  return false;
}

std::shared_ptr<std::atomic<bool>> healthFlag(const std::string& cluster, const std::string& endpoint) {
  static std::mutex mu;  // taken when configurations are applied, never per request
  static std::map<std::string, std::weak_ptr<std::atomic<bool>>> all;
  std::lock_guard lock(mu);
  auto& slot = all[cluster + '\n' + endpoint];
  auto flag = slot.lock();
  if (!flag) slot = flag = std::make_shared<std::atomic<bool>>(true);
  return flag;
}

namespace {

constexpr std::size_t kMaxAnswerBytes = 64 * 1024;

// One endpoint under checks: a check, a wait of interval (+ jitter), the next check; until
// stopped. Lives on the checker's thread; its operations hold it alive.
struct Target : std::enable_shared_from_this<Target> {
  Target(asio::io_context& ioc, std::string cluster, std::string name, tcp::endpoint address, HealthCheckConfig cfg,
         std::shared_ptr<const ClientTls> tls, std::string tls_name)
      : cluster(std::move(cluster)), name(std::move(name)), address(address), cfg(std::move(cfg)), tls(std::move(tls)),
        tls_name(std::move(tls_name)), timer(ioc), deadline(ioc), stream(ioc), flag(healthFlag(this->cluster, this->name)) {}

  std::string cluster, name;
  tcp::endpoint address;
  HealthCheckConfig cfg;
  std::shared_ptr<const ClientTls> tls;  // checks speak TLS as the cluster's requests do
  std::string tls_name;
  asio::steady_timer timer;
  asio::steady_timer deadline;  // the whole check: connect, handshake, send, answer
  bool timed_out = false;
  UpstreamConnection stream;
  beast::flat_buffer buffer;
  http::request<http::empty_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  std::shared_ptr<std::atomic<bool>> flag;
  HealthState state;
  std::uint64_t passed = 0, failed = 0;  // read by collect() under the checker's mutex
  bool stopped = false;

  void schedule(std::chrono::milliseconds delay) {
    timer.expires_after(delay);
    timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->stopped) self->check();
    });
  }

  void check() {
    req = {http::verb::get, cfg.path, 11};
    req.set(http::field::host, name);
    req.set(http::field::user_agent, "fledge-health-check");
    req.set(http::field::connection, "close");
    parser.emplace();
    parser->body_limit(kMaxAnswerBytes);
    buffer.clear();
    timed_out = false;
    deadline.expires_after(cfg.timeout);
    deadline.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      self->timed_out = true;
      beast::error_code ignored;
      self->stream.close(ignored);
    });
    stream = UpstreamConnection(static_cast<asio::io_context&>(timer.get_executor().context()));
    stream.async_connect(address, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->fail("connect", ec);
      if (!self->tls) return self->send();
      if (!self->stream.startTls(*self->tls, self->tls_name)) return self->fail("tls", asio::error::no_memory);
      self->stream.asyncHandshake([self](beast::error_code ec, std::size_t) {
        if (ec) return self->done(false, "tls: " + (self->timed_out ? std::string("timed out") : self->stream.tls()->failure()));
        self->send();
      });
    });
  }

  void send() {
    http::async_write(stream, req, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail("send", ec);
      http::async_read(self->stream, self->buffer, *self->parser, [self](beast::error_code ec, std::size_t) {
        if (ec) return self->fail("answer", ec);
        const unsigned status = self->parser->get().result_int();
        const auto& ok = self->cfg.expected_statuses;
        self->done(std::find(ok.begin(), ok.end(), status) != ok.end(), "status " + std::to_string(status));
      });
    });
  }

  void fail(const char* stage, beast::error_code ec) { done(false, timed_out ? "timed out" : std::string(stage) + ": " + ec.message()); }

  void done(bool ok, const std::string& what);
  std::function<void(Target&, bool ok)> on_result;  // counts, under the checker's mutex
  std::mt19937_64* rng = nullptr;
};

void Target::done(bool ok, const std::string& what) {
  beast::error_code ignored;
  deadline.cancel();
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream.close(ignored);
  if (stopped) return;
  on_result(*this, ok);
  if (state.record(ok, cfg)) {
    flag->store(state.healthy(), std::memory_order_relaxed);
    log::warn(state.healthy() ? "endpoint healthy again" : "endpoint unhealthy",
              {{"cluster", cluster}, {"endpoint", name}, {"check", what}});
  }
  const auto jitter = cfg.jitter.count() > 0 ? std::uniform_int_distribution<std::int64_t>(0, cfg.jitter.count())(*rng) : 0;
  schedule(cfg.interval + std::chrono::milliseconds(jitter));
}

}  // namespace

struct HealthChecker::Impl {
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  std::thread thread;
  std::mt19937_64 rng{std::random_device{}()};
  mutable std::mutex mu;  // targets_ as collect() sees them
  std::map<std::string, std::shared_ptr<Target>> targets;  // by cluster '\n' endpoint name

  void apply(const Snapshot& snap) {
    std::map<std::string, std::shared_ptr<Target>> next;
    for (const auto& rc : snap.clusters) {
      if (!rc.config->health_check) continue;
      for (std::size_t i = 0; i < rc.endpoints.size(); ++i) {
        const std::string key = rc.config->name + '\n' + rc.names[i];
        auto it = targets.find(key);
        const std::string tls_name = rc.tls ? rc.tls_names[i] : std::string();
        if (it != targets.end() && it->second->address == rc.endpoints[i] && it->second->tls == rc.tls && it->second->tls_name == tls_name) {
          it->second->cfg = *rc.config->health_check;  // settings apply from the next check
          next.emplace(key, it->second);
          continue;
        }
        auto t = std::make_shared<Target>(ioc, rc.config->name, rc.names[i], rc.endpoints[i], *rc.config->health_check, rc.tls, tls_name);
        t->rng = &rng;
        t->on_result = [this](Target& tg, bool ok) {
          std::lock_guard lock(mu);
          ++(ok ? tg.passed : tg.failed);
        };
        const auto first = std::uniform_int_distribution<std::int64_t>(0, std::max<std::int64_t>(t->cfg.jitter.count(), 1))(rng);
        t->schedule(std::chrono::milliseconds(first));
        next.emplace(key, std::move(t));
      }
    }
    for (auto& [key, t] : targets)
      if (!next.count(key)) {
        t->stopped = true;
        t->timer.cancel();
        t->deadline.cancel();
        beast::error_code ignored;
        t->stream.close(ignored);
        t->flag->store(true, std::memory_order_relaxed);  // no longer checked: not held out
      }
    std::lock_guard lock(mu);
    targets = std::move(next);
  }
};

HealthChecker::HealthChecker() : impl_(std::make_unique<Impl>()) {
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
}

HealthChecker::~HealthChecker() {
  asio::post(impl_->ioc, [this] {
    for (auto& [key, t] : impl_->targets) {
      t->stopped = true;
      t->timer.cancel();
      t->deadline.cancel();
      beast::error_code ignored;
      t->stream.close(ignored);
    }
  });
  impl_->guard.reset();
  impl_->ioc.stop();
  impl_->thread.join();
}

void HealthChecker::update(std::shared_ptr<const Snapshot> snap) {
  asio::post(impl_->ioc, [this, snap = std::move(snap)] { impl_->apply(*snap); });
}

std::vector<HealthChecker::EndpointHealth> HealthChecker::states() const {
  std::vector<EndpointHealth> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [key, t] : impl_->targets)
    out.push_back({t->cluster, t->name, t->flag->load(std::memory_order_relaxed), t->passed, t->failed});
  return out;
}

}  // namespace fledge::proxy
