#include "proxy/echo_upstream.hpp"

#include <random>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <mutex>
#include <charconv>
#include <thread>

#include "proxy/config.hpp"
#include "proxy/log.hpp"
#include "proxy/snapshot.hpp"

namespace fledge::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::atomic<std::uint64_t> g_connections{0};
std::atomic<std::uint64_t> g_requests{0};
std::atomic<std::uint64_t> g_shadow_requests{0};  // requests marked x-fledge-shadow
// The description of the last request marked x-fledge-shadow, served at /__echo/last-shadow so
// tests can see what a mirrored copy looked like.
std::mutex g_shadow_mu;
std::string g_last_shadow = "{}";

std::string_view queryParam(std::string_view target, std::string_view key) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view qs = target.substr(q + 1);
  while (!qs.empty()) {
    auto amp = qs.find('&');
    std::string_view kv = qs.substr(0, amp);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view("1") : kv.substr(eq + 1);
    if (amp == std::string_view::npos) break;
    qs = qs.substr(amp + 1);
  }
  return {};
}

std::uint64_t queryNumber(std::string_view target, std::string_view key, std::uint64_t fallback) {
  auto v = queryParam(target, key);
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  return (v.empty() || ec != std::errc{} || p != v.data() + v.size()) ? fallback : n;
}

std::string describe(const std::string& name, const http::request_parser<http::buffer_body>& p, std::uint64_t body_len,
                     std::uint64_t conn_id, std::uint64_t request_no) {
  const auto& req = p.get();
  std::string out = "{\"name\":";
  log::appendJsonString(out, name);
  out += ",\"method\":";
  log::appendJsonString(out, req.method_string());
  out += ",\"target\":";
  log::appendJsonString(out, req.target());
  out += ",\"version\":\"";
  out += req.version() == 10 ? "1.0" : "1.1";
  out += "\",\"headers\":[";
  bool first = true;
  for (const auto& f : req) {
    if (!first) out += ',';
    first = false;
    out += '[';
    log::appendJsonString(out, f.name_string());
    out += ',';
    log::appendJsonString(out, f.value());
    out += ']';
  }
  out += "],\"body_length\":" + std::to_string(body_len);
  out += ",\"chunked\":";
  out += p.chunked() ? "true" : "false";
  out += ",\"connection\":" + std::to_string(conn_id);
  out += ",\"request_on_connection\":" + std::to_string(request_no);
  out += ",\"connections_accepted\":" + std::to_string(g_connections.load());
  out += ",\"requests_total\":" + std::to_string(g_requests.load());
  out += ",\"shadow_requests_total\":" + std::to_string(g_shadow_requests.load()) + "}\n";
  return out;
}

void serve(tcp::socket sock, std::string name, std::uint64_t conn_id, EchoOptions options) {
  std::mt19937_64 rng(conn_id * 0x9E3779B97F4A7C15ull ^ std::random_device{}());
  std::uniform_real_distribution<double> uniform(0, 1);
  beast::flat_buffer buf;
  buf.reserve(64 * 1024);  // Beast reads into spare capacity; keep reads large
  beast::error_code ec;
  sock.set_option(tcp::no_delay(true), ec);
  auto chunk = std::make_unique<char[]>(64 * 1024);
  for (std::uint64_t n = 1;; ++n) {
    http::request_parser<http::buffer_body> p;
    p.header_limit(1 << 20);
    p.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read_header(sock, buf, p, ec);
    if (ec) return;
    auto& req = p.get();
    ++g_requests;
    if (req.find("x-fledge-shadow") != req.end()) ++g_shadow_requests;
    if (beast::iequals(req[http::field::expect], "100-continue")) {
      asio::write(sock, asio::buffer(std::string_view("HTTP/1.1 100 Continue\r\n\r\n")), ec);
      if (ec) return;
    }
    std::uint64_t body_len = 0;
    while (!p.is_done()) {
      req.body().data = chunk.get();
      req.body().size = 64 * 1024;
      http::read_some(sock, buf, p, ec);
      if (ec == http::error::need_buffer) ec = {};
      if (ec) return;
      body_len += 64 * 1024 - req.body().size;
    }
    std::string target(req.target());
    if (target == "/healthz" || target.rfind("/healthz?", 0) == 0) {
      http::response<http::string_body> hz{static_cast<http::status>(options.healthz_status), req.version()};
      hz.set(http::field::server, "fledge-echo");
      hz.body() = options.healthz_status == 200 ? "ok\n" : "unhealthy\n";
      hz.keep_alive(p.keep_alive());
      hz.prepare_payload();
      http::write(sock, hz, ec);
      if (ec || !p.keep_alive()) return;
      continue;
    }
    if (options.reset_rate > 0 && uniform(rng) < options.reset_rate) {
      sock.set_option(asio::socket_base::linger(true, 0), ec);  // close() sends RST
      sock.close(ec);
      return;
    }
    if (options.hang_rate > 0 && uniform(rng) < options.hang_rate) {
      char discard[1024];
      while (!ec) sock.read_some(asio::buffer(discard), ec);  // until the client closes
      return;
    }
    bool misbehave = options.fail_match.empty();
    for (const auto& field : req)
      if (!misbehave && field.value().find(options.fail_match) != std::string_view::npos) misbehave = true;
    if (auto d = queryNumber(target, "delay_ms", 0) + (misbehave ? options.delay_ms : 0)) std::this_thread::sleep_for(std::chrono::milliseconds(d));
    unsigned status = static_cast<unsigned>(queryNumber(target, "status", 200));
    if (misbehave && options.fail_rate > 0 && uniform(rng) < options.fail_rate) status = options.fail_status;
    bool chunked = !queryParam(target, "chunked").empty();
    bool no_length = !queryParam(target, "no_length").empty();
    bool close = !queryParam(target, "close").empty() || no_length || !p.keep_alive();
    bool head = req.method() == http::verb::head;
    bool bodyless = head || status == 204 || status == 304 || (status >= 100 && status < 200);

    std::string json;
    std::uint64_t size;
    const bool raw = !queryParam(target, "bytes").empty();
    if (raw) {
      size = queryNumber(target, "bytes", 0);
    } else if (target == "/__echo/last-shadow") {
      std::lock_guard lock(g_shadow_mu);
      json = g_last_shadow;
      size = json.size();
    } else {
      json = describe(name, p, body_len, conn_id, n);
      size = json.size();
      if (req.find("x-fledge-shadow") != req.end()) {
        std::lock_guard lock(g_shadow_mu);
        g_last_shadow = json;
      }
    }
    http::response<http::buffer_body> res{static_cast<http::status>(status), req.version()};
    res.set(http::field::server, "fledge-echo");
    res.set(http::field::content_type, raw ? "application/octet-stream" : "application/json");
    res.set("X-Echo-Name", name);
    if (!bodyless || head) {
      if (chunked) res.chunked(true);
      else if (!no_length) res.content_length(size);
    }
    res.keep_alive(!close);
    http::serializer<false, http::buffer_body> sr{res};
    if (bodyless) {
      res.body().data = nullptr;
      res.body().more = false;
      http::write_header(sock, sr, ec);
      if (ec) return;
    } else {
      std::memset(chunk.get(), 'x', 64 * 1024);
      std::uint64_t sent = 0;
      do {
        std::uint64_t left = size - sent;
        std::size_t now = static_cast<std::size_t>(std::min<std::uint64_t>(left, 64 * 1024));
        res.body().data = raw ? static_cast<void*>(chunk.get()) : static_cast<void*>(json.data() + sent);
        res.body().size = now;
        res.body().more = sent + now < size;
        if (now == 0) res.body().data = nullptr;
        http::write(sock, sr, ec);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return;
        sent += now;
      } while (!sr.is_done());
    }
    if (!queryParam(target, "hangup").empty()) {
      sock.close(ec);
      return;
    }
    if (close) {
      sock.shutdown(tcp::socket::shutdown_send, ec);
      // Wait for the peer to close so the response is not cut off by an RST.
      char discard[1024];
      while (!ec) sock.read_some(asio::buffer(discard), ec);
      return;
    }
  }
}

}  // namespace

int runEchoUpstream(const EchoOptions& options) {
  HostPort hp;
  std::string err = parseHostPort(options.listen, hp, true);
  tcp::endpoint ep;
  if (err.empty()) err = resolveHostPort(hp, ep);
  if (!err.empty()) {
    log::error("echo upstream: bad --listen", {{"listen", options.listen}, {"error", err}});
    return 2;
  }
  asio::io_context ioc;
  tcp::acceptor acc(ioc);
  beast::error_code ec;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(1024, ec);
  if (ec) {
    log::error("echo upstream: cannot listen", {{"listen", options.listen}, {"error", ec.message()}});
    return 1;
  }
  auto bound = acc.local_endpoint();
  log::info("echo upstream listening", {{"name", options.name},
                                        {"address", bound.address().to_string() + ":" + std::to_string(bound.port())}});
  for (;;) {
    tcp::socket sock(ioc);
    acc.accept(sock, ec);
    if (ec) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    std::uint64_t id = ++g_connections;
    std::thread(serve, std::move(sock), options.name, id, options).detach();
  }
}

}  // namespace fledge::proxy
