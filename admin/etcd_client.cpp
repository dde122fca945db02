#include "admin/etcd_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <charconv>
#include <functional>

#include "proxy/tls.hpp"

namespace fledge::admin::etcd {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// etcd caps a request at 1.5 MiB by default, but a range answer may hold many such values.
constexpr std::uint64_t kMaxAnswerBytes = 256 * 1024 * 1024;
constexpr std::size_t kMaxWatchMessageBytes = 256 * 1024 * 1024;
// gRPC status codes that etcd's errors carry.
constexpr std::int64_t kGrpcCancelled = 1, kGrpcUnavailable = 14, kGrpcUnauthenticated = 16;

// ---------------------------------------------------------------------------------------------
// JSON and base64

std::string base64(std::string_view bytes) {
  std::string out(beast::detail::base64::encoded_size(bytes.size()), '\0');
  out.resize(beast::detail::base64::encode(out.data(), bytes.data(), bytes.size()));
  return out;
}

bool unbase64(std::string_view text, std::string& out) {
  out.resize(beast::detail::base64::decoded_size(text.size()) + 3);  // + 3: unpadded input
  const auto [written, read] = beast::detail::base64::decode(out.data(), text.data(), text.size());
  out.resize(written);
  return text.find_first_not_of('=', read) == std::string_view::npos;  // only padding was left
}

// int64 fields come as JSON strings ("12"); an absent field is 0.
std::int64_t int64Of(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (!v) return 0;
  if (const auto* s = v->if_string()) {
    std::int64_t n = 0;
    std::from_chars(s->data(), s->data() + s->size(), n);
    return n;
  }
  if (const auto* i = v->if_int64()) return *i;
  if (const auto* u = v->if_uint64()) return static_cast<std::int64_t>(*u);
  return 0;
}

std::string stringOf(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  const json::string* s = v ? v->if_string() : nullptr;
  return s ? std::string(*s) : std::string();
}

bool boolOf(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  const bool* b = v ? v->if_bool() : nullptr;
  return b && *b;
}

const json::object* objectOf(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v ? v->if_object() : nullptr;
}

const json::array* arrayOf(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  return v ? v->if_array() : nullptr;
}

std::int64_t headerRevision(const json::object& o) {
  const json::object* h = objectOf(o, "header");
  return h ? int64Of(*h, "revision") : 0;
}

// A base64 field, decoded; false when it is not base64.
bool bytesOf(const json::object& o, std::string_view name, std::string& out) {
  const json::value* v = o.if_contains(name);
  if (!v) {
    out.clear();
    return true;
  }
  const json::string* s = v->if_string();
  return s && unbase64(*s, out);
}

bool parseKv(const json::object& o, KeyValue& kv) {
  if (!bytesOf(o, "key", kv.key) || !bytesOf(o, "value", kv.value)) return false;
  kv.create_revision = int64Of(o, "create_revision");
  kv.mod_revision = int64Of(o, "mod_revision");
  kv.version = int64Of(o, "version");
  kv.lease = int64Of(o, "lease");
  return true;
}

bool parseRange(const json::object& o, RangeResult& out) {
  out.revision = headerRevision(o);
  out.count = int64Of(o, "count");
  out.more = boolOf(o, "more");
  out.kvs.clear();
  if (const json::array* kvs = arrayOf(o, "kvs")) {
    for (const json::value& v : *kvs) {
      const json::object* kv = v.if_object();
      if (!kv || !parseKv(*kv, out.kvs.emplace_back())) return false;
    }
  }
  return true;
}

std::string int64Text(std::int64_t n) { return std::to_string(n); }

// "key" and "range_end" of a request. etcd refuses an empty key; the whole keyspace (prefix "")
// is key "\0" to range_end "\0", as etcd's own client sends it.
void setKeyRange(json::object& o, const std::string& key, const std::string& range_end) {
  o["key"] = base64(key.empty() && range_end == std::string(1, '\0') ? range_end : key);
  if (!range_end.empty()) o["range_end"] = base64(range_end);
}

std::string truncated(std::string_view s, std::size_t n = 200) {
  return s.size() <= n ? std::string(s) : std::string(s.substr(0, n)) + "...";
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : std::string(sep)) + p;
  return out;
}

Status statusOf(Status::Code code, std::string message, std::int64_t compact_revision = 0) {
  Status s;
  s.code = code;
  s.message = std::move(message);
  s.compact_revision = compact_revision;
  return s;
}

// What an etcd error answer says: {"error":"...","code":N,"message":"..."} for a unary call;
// {"error":{"grpc_code":N,"http_code":N,"message":"...","http_status":"..."}} inside a stream.
struct EtcdError {
  std::int64_t code = 0;  // gRPC status code
  std::string message;
};

EtcdError etcdErrorOf(const json::value& v) {
  EtcdError e;
  const json::object* o = v.if_object();
  if (!o) return e;
  e.code = int64Of(*o, "code");
  e.message = stringOf(*o, "message");
  if (e.message.empty()) e.message = stringOf(*o, "error");
  if (const json::object* inner = objectOf(*o, "error")) {
    e.code = int64Of(*inner, "grpc_code");
    e.message = stringOf(*inner, "message");
  }
  return e;
}

bool isCompacted(const EtcdError& e) { return e.message.find("required revision has been compacted") != std::string::npos; }

// A token that expired, or one from before etcd restarted or its users changed: authenticate again.
bool isStaleToken(const EtcdError& e) {
  return e.code == kGrpcUnauthenticated || e.message.find("invalid auth token") != std::string::npos ||
         e.message.find("revision of auth store is old") != std::string::npos;
}

std::string hostHeader(const proxy::HostPort& ep) {
  const std::string port = std::to_string(ep.port);
  return ep.host.find(':') != std::string::npos ? "[" + ep.host + "]:" + port : ep.host + ":" + port;
}

// ---------------------------------------------------------------------------------------------
// Connection

// One HTTP/1.1 connection to an etcd endpoint, plain or TLS, on its owner's io_context. Every
// operation is asynchronous; the caller drives the io_context until the operation completes or
// its deadline passes (then the connection is closed), so nothing waits past a call's timeout.
class Connection {
 public:
  struct Outcome {
    std::string error;  // "" when it worked; else "<step>: <why>"
    bool timed_out = false;
    bool ok() const { return error.empty(); }
  };

  Connection(asio::io_context& ioc, std::shared_ptr<const proxy::ClientTls> tls) : ioc_(ioc), tls_(std::move(tls)), resolver_(ioc) {}

  bool isOpen() const { return lowest() && lowest()->is_open(); }
  const proxy::HostPort& endpoint() const { return endpoint_; }
  beast::flat_buffer& buffer() { return buffer_; }

  // Connects to `ep` (and completes the TLS handshake), replacing any previous connection.
  Outcome open(const proxy::HostPort& ep, Clock::time_point deadline);

  // Writes `req` and reads the whole answer.
  Outcome exchange(const http::request<http::string_body>& req, http::response<http::string_body>& res, Clock::time_point deadline) {
    Outcome o = write(req, deadline);
    if (!o.ok()) return o;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    o = step(
        "read", [&](auto handler) { withStream([&](auto& s) { http::async_read(s, buffer_, parser, handler); }); }, deadline);
    if (!o.ok()) return o;
    res = parser.release();
    if (!res.keep_alive()) close();
    return o;
  }

  Outcome write(const http::request<http::string_body>& req, Clock::time_point deadline) {
    return step(
        "write", [&](auto handler) { withStream([&](auto& s) { http::async_write(s, req, handler); }); }, deadline);
  }

  template <class Parser>
  Outcome readHeader(Parser& parser, Clock::time_point deadline) {
    return step(
        "read", [&](auto handler) { withStream([&](auto& s) { http::async_read_header(s, buffer_, parser, handler); }); },
        deadline);
  }

  template <class Parser>
  Outcome readRest(Parser& parser, Clock::time_point deadline) {
    return step(
        "read", [&](auto handler) { withStream([&](auto& s) { http::async_read(s, buffer_, parser, handler); }); }, deadline);
  }

  // Closes the socket: pending operations complete with operation_aborted.
  void close() {
    resolver_.cancel();
    if (tcp::socket* s = lowest()) {
      beast::error_code ignored;
      s->shutdown(tcp::socket::shutdown_both, ignored);
      s->close(ignored);
    }
  }

  // Runs the io_context until `done` or `deadline`; false if the deadline came first (the
  // operation is then still pending).
  bool run(const bool& done, Clock::time_point deadline) {
    ioc_.restart();
    while (!done && ioc_.poll_one() != 0) {
    }
    while (!done) {
      if (ioc_.run_one_until(deadline) == 0 && (Clock::now() >= deadline || ioc_.stopped())) break;
    }
    return done;
  }

  // Gives up on the pending operation that sets `done`: closes the connection and lets the
  // operation complete (aborted), since it refers to the caller's objects.
  void abandon(const bool& done) {
    close();
    ioc_.restart();
    while (!done && ioc_.run_one() != 0) {
    }
  }

  template <class F>
  void withStream(F&& f) {
    if (secure_) f(*secure_);
    else f(*plain_);
  }

 private:
  tcp::socket* lowest() { return secure_ ? &secure_->next_layer() : plain_ ? &*plain_ : nullptr; }
  const tcp::socket* lowest() const { return secure_ ? &secure_->next_layer() : plain_ ? &*plain_ : nullptr; }

  // Starts one operation, `start(handler)`, and waits for it until `deadline`. On failure or
  // timeout the connection is closed.
  template <class Start>
  Outcome step(const char* what, Start start, Clock::time_point deadline) {
    bool done = false;
    beast::error_code result;
    start([&done, &result](beast::error_code ec, auto&&...) {
      done = true;
      result = ec;
    });
    Outcome o;
    if (!run(done, deadline)) {
      abandon(done);
      o.error = std::string(what) + ": timed out";
      o.timed_out = true;
    } else if (result) {
      o.error = std::string(what) + ": " + result.message();
      close();
    }
    return o;
  }

  Outcome resolve(const proxy::HostPort& ep, Clock::time_point deadline, std::vector<tcp::endpoint>& out);

  asio::io_context& ioc_;
  std::shared_ptr<const proxy::ClientTls> tls_;
  tcp::resolver resolver_;
  std::optional<tcp::socket> plain_;
  std::optional<ssl::stream<tcp::socket>> secure_;
  beast::flat_buffer buffer_;
  proxy::HostPort endpoint_;
};

Connection::Outcome Connection::resolve(const proxy::HostPort& ep, Clock::time_point deadline, std::vector<tcp::endpoint>& out) {
  beast::error_code ec;
  const auto ip = asio::ip::make_address(ep.host, ec);
  if (!ec) {
    out.emplace_back(ip, ep.port);
    return {};
  }
  // The lookup runs on Asio's resolver thread and cannot be interrupted: on timeout its handler
  // may complete during a later call, so it owns what it writes.
  struct Result {
    bool done = false;
    beast::error_code ec;
    tcp::resolver::results_type results;
  };
  auto r = std::make_shared<Result>();
  resolver_.async_resolve(ep.host, std::to_string(ep.port), [r](beast::error_code ec, tcp::resolver::results_type results) {
    r->done = true;
    r->ec = ec;
    r->results = std::move(results);
  });
  Outcome o;
  if (!run(r->done, deadline)) {
    resolver_.cancel();
    o.error = "resolve: timed out";
    o.timed_out = true;
  } else if (r->ec) {
    o.error = "resolve: " + r->ec.message();
  } else {
    for (const auto& e : r->results) out.push_back(e.endpoint());
  }
  return o;
}

Connection::Outcome Connection::open(const proxy::HostPort& ep, Clock::time_point deadline) {
  close();
  plain_.reset();
  secure_.reset();
  buffer_.clear();
  endpoint_ = ep;
  std::vector<tcp::endpoint> addresses;
  Outcome o = resolve(ep, deadline, addresses);
  if (!o.ok()) return o;
  if (tls_) secure_.emplace(ioc_, tls_->asioContext());
  else plain_.emplace(ioc_);
  o = step(
      "connect", [&](auto handler) { asio::async_connect(*lowest(), addresses, handler); }, deadline);
  if (!o.ok()) return o;
  beast::error_code ignored;
  lowest()->set_option(tcp::no_delay(true), ignored);
  // A watch may wait for hours on a connection whose peer vanished without a FIN: TCP keepalive
  // notices within about half a minute (idle 10 s, then 3 probes 5 s apart).
  lowest()->set_option(asio::socket_base::keep_alive(true), ignored);
  for (const auto& [option, value] : {std::pair{TCP_KEEPIDLE, 10}, {TCP_KEEPINTVL, 5}, {TCP_KEEPCNT, 3}})
    ::setsockopt(lowest()->native_handle(), IPPROTO_TCP, option, &value, sizeof value);
  if (!secure_) return o;

  // SNI and the name verified: server_name, else the endpoint's host (as proxy::TlsConnection).
  SSL* ssl = secure_->native_handle();
  const std::string name = tls_->config().server_name.empty() ? ep.host : tls_->config().server_name;
  beast::error_code not_ip;
  const auto ip = asio::ip::make_address(name, not_ip);
  if (not_ip && !name.empty()) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (tls_->config().verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const bool set = not_ip ? SSL_set1_host(ssl, name.c_str()) == 1 : X509_VERIFY_PARAM_set1_ip_asc(param, ip.to_string().c_str()) == 1;
    if (!set) {
      close();
      return {"TLS: cannot verify the name \"" + name + "\"", false};
    }
  }
  o = step(
      "TLS handshake", [&](auto handler) { secure_->async_handshake(ssl::stream_base::client, handler); }, deadline);
  if (!o.ok() && !o.timed_out) {
    const long verify = SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) o.error += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

struct Attempt {
  bool answered = false;
  std::string failure;  // why not
};

// Tries the endpoints in turn from `first`, each once, until `attempt(index, connect_deadline)`
// gets an answer. Connecting to one endpoint may take its share of the time left, so a silent
// first endpoint does not leave the others none; the answer itself may take all of it.
Status overEndpoints(const Options& options, std::size_t first, Clock::time_point deadline,
                     const std::function<Attempt(std::size_t, Clock::time_point)>& attempt, std::size_t& answered) {
  const std::size_t n = options.endpoints.size();
  if (n == 0) return statusOf(Status::Code::kError, "no etcd endpoints configured");
  std::vector<std::string> failures;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t at = (first + i) % n;
    const auto now = Clock::now();
    if (now >= deadline) {
      failures.push_back(options.endpoints[at].str() + " (not tried: no time left)");
      continue;
    }
    const Attempt a = attempt(at, now + (deadline - now) / static_cast<int>(n - i));
    if (a.answered) {
      answered = at;
      return {};
    }
    failures.push_back(options.endpoints[at].str() + " (" + a.failure + ")");
  }
  return statusOf(Status::Code::kUnavailable,
                  "no etcd endpoint answered within " + std::to_string(options.timeout.count()) + " ms: " + join(failures, "; "));
}

http::request<http::string_body> makeRequest(const proxy::HostPort& ep, const char* path, const std::string& body,
                                             const std::string& token) {
  http::request<http::string_body> req{http::verb::post, path, 11};
  req.set(http::field::host, hostHeader(ep));
  req.set(http::field::user_agent, "fledge-etcd");
  req.set(http::field::content_type, "application/json");
  if (!token.empty()) req.set(http::field::authorization, token);
  req.keep_alive(true);
  req.body() = body;
  req.prepare_payload();
  return req;
}

// An answer that is not a success: what etcd said, as a Status.
Status errorStatus(unsigned http_status, const std::string& body, const EtcdError& e) {
  std::string message = "etcd answered HTTP " + std::to_string(http_status) + ": ";
  if (e.message.empty()) return statusOf(Status::Code::kError, message + truncated(body));
  message += e.message + " (gRPC code " + std::to_string(e.code) + ")";
  return statusOf(isCompacted(e) ? Status::Code::kCompacted : Status::Code::kError, std::move(message));
}

// An answer: its JSON object when it is a success, else the error (and what etcd said). A
// stream's answer (lease keepalive) is one JSON text per line, {"result":{...}}: its first is read.
// The gateway writes no raw newline inside a JSON text.
Status interpret(unsigned http_status, const std::string& body, json::object& out, EtcdError& error) {
  const std::string_view first = std::string_view(body).substr(0, body.find('\n'));
  beast::error_code ec;
  json::value v = json::parse(first, ec);
  json::object* o = ec ? nullptr : v.if_object();
  if (o) error = etcdErrorOf(v);
  if (o && http_status == 200 && !o->contains("error")) {
    json::value* result = o->if_contains("result");
    out = result && result->is_object() ? std::move(result->get_object()) : std::move(*o);
    return {};
  }
  if (!o && http_status == 200)
    return statusOf(Status::Code::kError, "etcd answered with something that is not a JSON object: " + truncated(body));
  return errorStatus(http_status, body, error);
}

std::shared_ptr<const proxy::ClientTls> obtainTls(const Options& options, std::string& error) {
  if (!options.tls) return nullptr;
  std::shared_ptr<const proxy::ClientTls> tls;
  try {
    tls = proxy::ClientTls::obtain(*options.tls, error);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!tls) error = "TLS to etcd: " + error;
  return tls;
}

// POST /v3/auth/authenticate on `conn`: sets `token`, or `refused` when etcd says no. The outcome
// is the connection's.
Connection::Outcome authenticate(Connection& conn, const Options& options, Clock::time_point deadline, std::string& token,
                                 Status& refused) {
  const json::object body{{"name", options.username}, {"password", options.password}};
  http::response<http::string_body> res;
  const auto o = conn.exchange(makeRequest(conn.endpoint(), "/v3/auth/authenticate", json::serialize(body), ""), res, deadline);
  if (!o.ok()) return o;
  json::object answer;
  EtcdError e;
  refused = interpret(res.result_int(), res.body(), answer, e);
  if (refused.ok()) {
    token = stringOf(answer, "token");
    if (token.empty()) refused = statusOf(Status::Code::kError, "etcd sent no token");
  }
  if (!refused.ok()) refused.message = "authenticating as \"" + options.username + "\": " + refused.message;
  return o;
}

// Runs `f`, turning an exception (memory, or OpenSSL refusing a new connection object) into a Status.
template <class F>
Status guarded(F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return statusOf(Status::Code::kError, std::string("etcd client: ") + e.what());
  }
}

}  // namespace

std::string prefixEnd(const std::string& prefix) {
  std::string end = prefix;
  for (std::size_t i = end.size(); i-- > 0;) {
    if (static_cast<unsigned char>(end[i]) != 0xff) {
      end[i] = static_cast<char>(static_cast<unsigned char>(end[i]) + 1);
      end.resize(i + 1);
      return end;
    }
  }
  return std::string(1, '\0');  // every key from `prefix` on (etcd's "to the end")
}

// ---------------------------------------------------------------------------------------------
// Client

struct Client::Impl {
  explicit Impl(Options o) : options(std::move(o)), tls(obtainTls(options, tls_error)), conn(ioc, tls) {}

  // POST `path` with `body`; the answer's object (a stream's single "result" unwrapped).
  Status call(const char* path, const json::object& body, json::object& answer);
  Status callUnguarded(const char* path, const json::object& body, json::object& answer);
  // One request over the endpoints: `res` is the HTTP answer, or `refused` says why etcd did not
  // authenticate us.
  Status send(const char* path, const std::string& body, http::response<http::string_body>& res, Status& refused,
              Clock::time_point deadline);

  Options options;
  std::string tls_error;
  std::shared_ptr<const proxy::ClientTls> tls;
  asio::io_context ioc;  // before conn: the socket goes first
  Connection conn;
  std::size_t current = 0;  // the endpoint `conn` is (or was last) connected to
  std::string token;
};

Status Client::Impl::send(const char* path, const std::string& body, http::response<http::string_body>& res, Status& refused,
                          Clock::time_point deadline) {
  // Authenticates first when there is no token (yet, or any more), then asks.
  const auto ask = [&](const proxy::HostPort& ep) -> Connection::Outcome {
    if (!options.username.empty() && token.empty()) {
      const auto o = authenticate(conn, options, deadline, token, refused);
      if (!o.ok() || !refused.ok()) return o;
    }
    return conn.exchange(makeRequest(ep, path, body, token), res, deadline);
  };
  std::size_t answered = current;
  Status s = overEndpoints(
      options, current, deadline,
      [&](std::size_t at, Clock::time_point connect_deadline) -> Attempt {
        const proxy::HostPort& ep = options.endpoints[at];
        if (conn.isOpen() && at == current) {
          const auto o = ask(ep);
          if (o.ok()) return {true, {}};
          // Else etcd may have closed the idle connection (or restarted): one fresh connection
          // to the same endpoint, unless the time is up anyway.
          if (o.timed_out) return {false, o.error};
        }
        if (auto o = conn.open(ep, connect_deadline); !o.ok()) return {false, o.error};
        const auto o = ask(ep);
        return {o.ok(), o.error};
      },
      answered);
  current = answered;
  return s;
}

Status Client::Impl::call(const char* path, const json::object& body, json::object& answer) {
  return guarded([&] { return callUnguarded(path, body, answer); });
}

Status Client::Impl::callUnguarded(const char* path, const json::object& body, json::object& answer) {
  if (!tls_error.empty()) return statusOf(Status::Code::kError, tls_error);
  const auto deadline = Clock::now() + options.timeout;
  const std::string text = json::serialize(body);
  for (bool retried = false;; retried = true) {
    http::response<http::string_body> res;
    Status refused;
    if (Status s = send(path, text, res, refused, deadline); !s.ok()) return s;
    if (!refused.ok()) return refused;
    EtcdError e;
    Status s = interpret(res.result_int(), res.body(), answer, e);
    if (!s.ok() && !retried && !options.username.empty() && isStaleToken(e)) {
      token.clear();  // authenticate again, once
      continue;
    }
    if (!s.ok() && e.code == kGrpcUnavailable) {
      // The member answered but cannot serve ("no leader", "server stopped", "request timed
      // out"): the next call starts at the next endpoint. Not retried here, since a write may
      // still be applied.
      s.code = Status::Code::kUnavailable;
      s.message = conn.endpoint().str() + ": " + s.message;
      conn.close();
      current = (current + 1) % options.endpoints.size();
    }
    return s;
  }
}

Client::Client(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Client::~Client() = default;

Status Client::range(const std::string& key, const std::string& range_end, RangeResult& out, std::int64_t revision, std::int64_t limit) {
  json::object body;
  setKeyRange(body, key, range_end);
  if (revision > 0) body["revision"] = int64Text(revision);
  if (limit > 0) body["limit"] = int64Text(limit);
  json::object answer;
  if (Status s = impl_->call("/v3/kv/range", body, answer); !s.ok()) return s;
  if (!parseRange(answer, out)) return statusOf(Status::Code::kError, "etcd sent a range answer whose keys or values are not base64");
  return {};
}

Status Client::put(const std::string& key, const std::string& value, std::int64_t lease, std::int64_t& revision) {
  json::object body{{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0) body["lease"] = int64Text(lease);
  json::object answer;
  if (Status s = impl_->call("/v3/kv/put", body, answer); !s.ok()) return s;
  revision = headerRevision(answer);
  return {};
}

namespace {

json::object compareJson(const Compare& c) {
  static constexpr const char* kTargets[] = {"VERSION", "CREATE", "MOD", "VALUE", "LEASE"};
  static constexpr const char* kResults[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  json::object o{{"key", base64(c.key)},
                 {"target", kTargets[static_cast<int>(c.target)]},
                 {"result", kResults[static_cast<int>(c.result)]}};
  switch (c.target) {
    case Compare::Target::kVersion: o["version"] = int64Text(c.number); break;
    case Compare::Target::kCreate: o["create_revision"] = int64Text(c.number); break;
    case Compare::Target::kMod: o["mod_revision"] = int64Text(c.number); break;
    case Compare::Target::kValue: o["value"] = base64(c.value); break;
    case Compare::Target::kLease: o["lease"] = int64Text(c.number); break;
  }
  return o;
}

json::object opJson(const Op& op) {
  json::object inner;
  switch (op.kind) {
    case Op::Kind::kPut:
      inner["key"] = base64(op.key);
      inner["value"] = base64(op.value);
      if (op.lease != 0) inner["lease"] = int64Text(op.lease);
      return {{"request_put", std::move(inner)}};
    case Op::Kind::kDeleteRange:
      setKeyRange(inner, op.key, op.range_end);
      return {{"request_delete_range", std::move(inner)}};
    case Op::Kind::kRange:
      setKeyRange(inner, op.key, op.range_end);
      return {{"request_range", std::move(inner)}};
  }
  return {};
}

}  // namespace

Status Client::txn(const std::vector<Compare>& compare, const std::vector<Op>& success, const std::vector<Op>& failure, TxnResult& out) {
  json::array cmp, ok, fail;
  for (const auto& c : compare) cmp.push_back(compareJson(c));
  for (const auto& op : success) ok.push_back(opJson(op));
  for (const auto& op : failure) fail.push_back(opJson(op));
  json::object body{{"compare", std::move(cmp)}, {"success", std::move(ok)}, {"failure", std::move(fail)}};
  json::object answer;
  if (Status s = impl_->call("/v3/kv/txn", body, answer); !s.ok()) return s;
  out.succeeded = boolOf(answer, "succeeded");
  out.revision = headerRevision(answer);
  out.ranges.clear();
  const std::size_t ops = (out.succeeded ? success : failure).size();
  const json::array* responses = arrayOf(answer, "responses");
  for (std::size_t i = 0; i < ops; ++i) {
    RangeResult& r = out.ranges.emplace_back();
    const json::object* response = responses && i < responses->size() ? (*responses)[i].if_object() : nullptr;
    const json::object* range = response ? objectOf(*response, "response_range") : nullptr;
    if (range && !parseRange(*range, r)) return statusOf(Status::Code::kError, "etcd sent a txn range whose keys or values are not base64");
  }
  return {};
}

Status Client::leaseGrant(std::int64_t ttl_seconds, std::int64_t& id) {
  json::object answer;
  if (Status s = impl_->call("/v3/lease/grant", {{"TTL", int64Text(ttl_seconds)}}, answer); !s.ok()) return s;
  id = int64Of(answer, "ID");
  if (id == 0) return statusOf(Status::Code::kError, "etcd granted no lease: " + truncated(json::serialize(answer)));
  return {};
}

Status Client::leaseKeepAlive(std::int64_t id, std::int64_t& ttl) {
  json::object answer;
  if (Status s = impl_->call("/v3/lease/keepalive", {{"ID", int64Text(id)}}, answer); !s.ok()) return s;
  ttl = int64Of(answer, "TTL");  // absent for a lease that no longer exists
  return {};
}

Status Client::leaseRevoke(std::int64_t id) {
  json::object answer;
  return impl_->call("/v3/lease/revoke", {{"ID", int64Text(id)}}, answer);
}

Status Client::compact(std::int64_t revision) {
  json::object answer;
  return impl_->call("/v3/kv/compaction", {{"revision", int64Text(revision)}}, answer);
}

// ---------------------------------------------------------------------------------------------
// Watch

struct Watch::Impl {
  // Body bytes of the chunked answer go to `pending`, to be split into messages (one per line).
  struct ChunkSink {
    std::string* out;
    std::size_t operator()(std::uint64_t, beast::string_view body, beast::error_code&) {
      out->append(body.data(), body.size());
      return body.size();
    }
  };

  Impl(Options o, std::string k, std::string end, std::int64_t start)
      : options(std::move(o)), key(std::move(k)), range_end(std::move(end)), start_revision(start), tls(obtainTls(options, tls_error)),
        conn(ioc, tls) {}

  // Connects, authenticates, sends the watch and waits for etcd to confirm it.
  Status establish();
  // One connection's try: {answered}, with `over` set when etcd refused the watch.
  Attempt establishOn(std::size_t at, Clock::time_point connect_deadline, Clock::time_point deadline);
  Status next(std::vector<Event>& events, std::int64_t& revision, std::chrono::milliseconds wait);
  void startRead();
  // The next whole message of the stream, if one has arrived.
  std::optional<std::string> takeMessage();
  // Applies one message: events appended (and `got`), or the Status that ends the watch.
  Status apply(const std::string& message, std::vector<Event>& events, bool& got);
  Status finish(Status s) {
    over = s;
    conn.close();
    return s;
  }
  std::string where() const { return conn.endpoint().str(); }

  Options options;
  std::string key, range_end;
  std::int64_t start_revision;
  std::string tls_error;
  std::shared_ptr<const proxy::ClientTls> tls;
  asio::io_context ioc;  // before conn: the socket goes first
  Connection conn;
  std::optional<http::response_parser<http::string_body>> parser;
  std::string pending;
  ChunkSink sink{&pending};
  bool reading = false, read_done = false;
  beast::error_code read_ec;
  std::int64_t at = 0;  // the revision the watcher has caught up to
  std::optional<Status> over;
  std::atomic<bool> cancelled{false};
};

void Watch::Impl::startRead() {
  reading = true;
  read_done = false;
  conn.withStream([&](auto& s) {
    http::async_read_some(s, conn.buffer(), *parser, [this](beast::error_code ec, std::size_t) {
      read_done = true;
      read_ec = ec;
    });
  });
}

std::optional<std::string> Watch::Impl::takeMessage() {
  for (;;) {
    std::size_t nl = pending.find('\n');
    if (nl == std::string::npos) {
      if (!parser || !parser->is_done() || pending.find_first_not_of(" \r\t") == std::string::npos) return std::nullopt;
      nl = pending.size();  // the last message of an ended stream need not end its line
    }
    std::string line = pending.substr(0, nl);
    pending.erase(0, std::min(nl + 1, pending.size()));
    if (line.find_first_not_of(" \r\t") != std::string::npos) return line;
  }
}

Attempt Watch::Impl::establishOn(std::size_t i, Clock::time_point connect_deadline, Clock::time_point deadline) {
  const proxy::HostPort& ep = options.endpoints[i];
  if (auto o = conn.open(ep, connect_deadline); !o.ok()) return {false, o.error};
  std::string token;
  if (!options.username.empty()) {
    Status refused;
    if (auto o = authenticate(conn, options, deadline, token, refused); !o.ok()) return {false, o.error};
    if (!refused.ok()) {
      over = refused;
      return {true, {}};
    }
  }
  json::object create;
  setKeyRange(create, key, range_end);
  if (start_revision > 0) create["start_revision"] = int64Text(start_revision);
  const json::object body{{"create_request", std::move(create)}};
  if (auto o = conn.write(makeRequest(ep, "/v3/watch", json::serialize(body), token), deadline); !o.ok()) return {false, o.error};

  pending.clear();
  parser.emplace();
  parser->body_limit(boost::none);  // a stream; each message is bounded below
  parser->on_chunk_body(sink);
  if (auto o = conn.readHeader(*parser, deadline); !o.ok()) return {false, o.error};
  if (parser->get().result() != http::status::ok) {
    if (auto o = conn.readRest(*parser, deadline); !o.ok()) return {false, o.error};
    const std::string text = pending + parser->get().body();
    beast::error_code ec;
    const json::value v = json::parse(text, ec);
    over = errorStatus(parser->get().result_int(), text, ec ? EtcdError{} : etcdErrorOf(v));
    return {true, {}};
  }
  if (!parser->chunked()) {  // the messages are read from the chunks as they come
    over = statusOf(Status::Code::kError, where() + ": the watch answer is not chunked, so not etcd's gateway stream");
    return {true, {}};
  }
  // Wait for etcd's first message: the watch created (or refused).
  for (;;) {
    if (auto message = takeMessage()) {
      std::vector<Event> none;
      bool got = false;
      Status s = apply(*message, none, got);
      if (s.code == Status::Code::kUnavailable) {  // this member is going away: try the next
        conn.close();
        return {false, s.message};
      }
      if (!s.ok()) over = s;
      return {true, {}};
    }
    if (parser->is_done()) return {false, "etcd ended the watch stream before confirming it"};
    startRead();
    if (!conn.run(read_done, deadline)) {
      conn.abandon(read_done);
      reading = false;
      return {false, "waiting for the watch to be created: timed out"};
    }
    reading = false;
    if (read_ec) {
      conn.close();
      return {false, "read: " + read_ec.message()};
    }
  }
}

Status Watch::Impl::establish() {
  if (!tls_error.empty()) return statusOf(Status::Code::kError, tls_error);
  const auto deadline = Clock::now() + options.timeout;
  std::size_t answered = 0;
  Status s = overEndpoints(
      options, 0, deadline, [&](std::size_t i, Clock::time_point connect_deadline) { return establishOn(i, connect_deadline, deadline); },
      answered);
  if (!s.ok()) return s;
  return over ? *over : Status{};
}

Status Watch::Impl::apply(const std::string& message, std::vector<Event>& events, bool& got) {
  beast::error_code ec;
  const json::value v = json::parse(message, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (!o) return statusOf(Status::Code::kError, "etcd sent a watch message that is not a JSON object: " + truncated(message));
  if (o->contains("error")) {
    // The stream failed on etcd's side; "transport is closing" when etcd shuts down.
    const EtcdError e = etcdErrorOf(v);
    const bool gone = e.code == kGrpcUnavailable || e.code == kGrpcCancelled;
    return statusOf(gone ? Status::Code::kUnavailable : Status::Code::kError,
                    where() + ": the watch stream failed: " + e.message + " (gRPC code " + std::to_string(e.code) + ")");
  }
  const json::object* r = objectOf(*o, "result");
  if (!r) return statusOf(Status::Code::kError, "etcd sent a watch message without a result: " + truncated(message));
  if (boolOf(*r, "canceled")) {
    if (const std::int64_t compacted = int64Of(*r, "compact_revision"); compacted > 0)
      return statusOf(Status::Code::kCompacted,
                      "watch from revision " + std::to_string(start_revision) + ": compacted; the oldest revision kept is " +
                          std::to_string(compacted),
                      compacted);
    const std::string reason = stringOf(*r, "cancel_reason");
    return statusOf(Status::Code::kError, "etcd cancelled the watch: " + (reason.empty() ? std::string("no reason given") : reason));
  }
  if (boolOf(*r, "created")) {
    // From now (start_revision 0): the watcher is at the store's revision; else just before its start.
    at = start_revision > 0 ? start_revision - 1 : headerRevision(*r);
    return {};
  }
  const json::array* list = arrayOf(*r, "events");
  if (!list) return {};
  for (const json::value& ev : *list) {
    const json::object* e = ev.if_object();
    const json::object* kv = e ? objectOf(*e, "kv") : nullptr;
    if (!kv) return statusOf(Status::Code::kError, "etcd sent a watch event without a kv: " + truncated(message));
    Event& out = events.emplace_back();
    out.type = stringOf(*e, "type") == "DELETE" ? Event::Type::kDelete : Event::Type::kPut;
    if (!parseKv(*kv, out.kv)) return statusOf(Status::Code::kError, "etcd sent a watch event whose key or value is not base64");
    // The events' own revision, not the header's: while a watcher catches up etcd may send the
    // store's current revision with only part of the events up to it.
    at = std::max(at, out.kv.mod_revision);
    got = true;
  }
  return {};
}

Status Watch::Impl::next(std::vector<Event>& events, std::int64_t& revision, std::chrono::milliseconds wait) {
  revision = at;
  if (over) return *over;
  const auto deadline = Clock::now() + wait;
  for (;;) {
    if (cancelled) return finish(statusOf(Status::Code::kUnavailable, "the watch was cancelled"));
    bool got = false;
    while (auto message = takeMessage()) {
      Status s = apply(*message, events, got);
      revision = at;
      if (!s.ok()) return finish(std::move(s));
      if (got) return {};
    }
    if (pending.size() > kMaxWatchMessageBytes)
      return finish(statusOf(Status::Code::kError, "etcd sent a watch message over " + std::to_string(kMaxWatchMessageBytes) + " bytes"));
    if (parser->is_done()) return finish(statusOf(Status::Code::kUnavailable, where() + ": etcd ended the watch stream"));
    if (!reading) startRead();
    if (!conn.run(read_done, deadline)) return {};  // nothing within `wait`; the read stays pending
    reading = false;
    if (cancelled) return finish(statusOf(Status::Code::kUnavailable, "the watch was cancelled"));
    if (read_ec) return finish(statusOf(Status::Code::kUnavailable, where() + ": the watch stream broke: " + read_ec.message()));
  }
}

Watch::Watch(Options options, std::string key, std::string range_end, std::int64_t start_revision)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(key), std::move(range_end), start_revision)) {
  Status s = guarded([&] { return impl_->establish(); });
  if (!s.ok()) impl_->finish(std::move(s));
}

Watch::~Watch() { impl_->conn.close(); }

Status Watch::next(std::vector<Event>& events, std::int64_t& revision, std::chrono::milliseconds wait) {
  Status s = guarded([&] { return impl_->next(events, revision, wait); });
  if (!s.ok() && !impl_->over) impl_->finish(s);  // an exception ends the watch as well
  return s;
}

void Watch::cancel() {
  impl_->cancelled = true;
  try {
    asio::post(impl_->ioc, [impl = impl_.get()] { impl->conn.close(); });
  } catch (const std::exception&) {
    // Without the close a blocked next() sees the flag when its wait ends.
  }
}

}  // namespace fledge::admin::etcd
