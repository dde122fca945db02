#include "tests/integration/harness.hpp"

#include <simdjson.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

namespace fledge::test {

std::string fledgeBinary() { return FLEDGE_BINARY; }
std::string sourceDir() { return FLEDGE_SOURCE_DIR; }

Process::Process(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], STDERR_FILENO);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, STDIN_FILENO);
    dup2(devnull, STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  err_fd_ = fds[0];
  reader_ = std::thread([this] {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(err_fd_, buf, sizeof buf);
      if (n <= 0) break;
      std::lock_guard lock(mu_);
      log_.append(buf, static_cast<std::size_t>(n));
    }
  });
}

Process::~Process() {
  if (!exited_) {
    signal(SIGKILL);
    wait(5s);
  }
  if (reader_.joinable()) reader_.join();
  if (err_fd_ >= 0) close(err_fd_);
}

std::string Process::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

bool Process::waitForLog(const std::string& needle, std::chrono::milliseconds timeout) const {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(5ms);
  }
  return log().find(needle) != std::string::npos;
}

void Process::signal(int sig) {
  if (!exited_ && pid_ > 0) ::kill(pid_, sig);
}

bool Process::running() {
  if (exited_) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    // The pipe reaches EOF once the child is gone: collect the last of its stderr now.
    if (reader_.joinable()) reader_.join();
    return false;
  }
  return true;
}

int Process::wait(std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= end) return -1;
    std::this_thread::sleep_for(5ms);
  }
  return exit_code_;
}

static long procStatusKiB(pid_t pid, const char* key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::strtol(line.c_str() + std::strlen(key), nullptr, 10);
  return -1;
}

long Process::rssKiB() const { return procStatusKiB(pid_, "VmRSS:"); }
long Process::peakRssKiB() const { return procStatusKiB(pid_, "VmHWM:"); }

std::uint16_t portFromLog(const std::string& log, const std::string& msg) {
  auto at = log.find("\"msg\":\"" + msg + "\"");
  if (at == std::string::npos) return 0;
  auto addr = log.find("\"address\":\"", at);
  auto end = log.find('"', addr + 11);
  auto colon = log.rfind(':', end);
  return static_cast<std::uint16_t>(std::stoi(log.substr(colon + 1, end - colon - 1)));
}

EchoUpstream::EchoUpstream(const std::string& name, const std::vector<std::string>& extra) {
  std::vector<std::string> args{fledgeBinary(), "echo-upstream", "--listen", "127.0.0.1:0", "--name", name};
  args.insert(args.end(), extra.begin(), extra.end());
  proc_ = std::make_unique<Process>(std::move(args));
  if (!proc_->waitForLog("echo upstream listening")) throw std::runtime_error("echo upstream did not start");
  port_ = portFromLog(proc_->log(), "echo upstream listening");
}

std::string writeTempFile(const std::string& content, const std::string& suffix) {
  std::string tmpl = "/tmp/fledge-test-XXXXXX" + suffix;
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemps(buf.data(), static_cast<int>(suffix.size()));
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  ssize_t n = ::write(fd, content.data(), content.size());
  close(fd);
  if (n != static_cast<ssize_t>(content.size())) throw std::runtime_error("short write");
  return buf.data();
}

std::string cluster(const std::string& name, const std::vector<std::string>& endpoints, const std::string& extra) {
  std::string s = "\"" + name + "\":{\"endpoints\":[";
  for (std::size_t i = 0; i < endpoints.size(); ++i) s += (i ? ",\"" : "\"") + endpoints[i] + "\"";
  s += "]";
  if (!extra.empty()) s += "," + extra;
  return s + "}";
}

std::string config(const std::string& clusters_json, const std::string& routes_json, const std::string& extra) {
  std::string c = R"({"listeners":[{"name":"main","address":"127.0.0.1:0"}],)" +
                  std::string(extra.find("\"workers\"") == std::string::npos ? R"("workers":2,)" : "") +
                  std::string(extra.find("\"admin\"") == std::string::npos ? R"("admin":{"listen":"127.0.0.1:0"},)" : "") +
                  std::string(extra.find("\"ofrep\"") == std::string::npos ? R"("ofrep":{"listen":"127.0.0.1:0"},)" : "") +
                  R"("clusters":)" +
                  clusters_json + R"(,"routes":)" + routes_json;
  if (!extra.empty()) c += "," + extra;
  return c + "}";
}

double metricSample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}

Fledge::Fledge(const std::string& config_json) {
  config_path_ = writeTempFile(config_json);
  proc_ = std::make_unique<Process>(std::vector<std::string>{fledgeBinary(), "--config", config_path_});
  // Generous: an ASan build on a loaded 2-core machine can take seconds to start.
  if (!proc_->waitForLog("\"msg\":\"started\"", 30s)) {
    throw std::runtime_error("fledge did not start: " + proc_->log());
  }
  port_ = portFromLog(proc_->log(), "listening");
  admin_port_ = portFromLog(proc_->log(), "admin listening");
  ofrep_port_ = portFromLog(proc_->log(), "ofrep listening");
}

Fledge::~Fledge() {
  proc_.reset();
  ::unlink(config_path_.c_str());
}

Client::Client(std::uint16_t port, std::chrono::milliseconds timeout) {
  socket_.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  socket_.set_option(tcp::no_delay(true));
  buffer_.reserve(64 * 1024);
  timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void Client::send(std::string_view raw) { boost::asio::write(socket_, boost::asio::buffer(raw)); }

http::response<http::string_body> Client::read(bool head) {
  http::response_parser<http::string_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (head) p.skip(true);
  http::read(socket_, buffer_, p);
  return p.release();
}

http::response<http::string_body> Client::request(http::verb method, const std::string& target,
                                                  const std::vector<std::pair<std::string, std::string>>& headers,
                                                  const std::string& body) {
  http::request<http::string_body> req{method, target, 11};
  // A loopback Host, as curl or a browser on this host would send (the tokenless admin API
  // refuses any other name).
  req.set(http::field::host, "127.0.0.1:" + std::to_string(socket_.remote_endpoint().port()));
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  if (!body.empty() || method == http::verb::post || method == http::verb::put) req.prepare_payload();
  http::write(socket_, req);
  return read(method == http::verb::head);
}

std::string Client::readAll() {
  std::string out(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  char buf[65536];
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

bool Client::closedByPeer() {
  char buf[4096];
  for (;;) {
    boost::system::error_code ec;
    socket_.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset) return true;
    if (ec) return false;  // timeout
  }
}

std::string deadAddress() {
  boost::asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  return "127.0.0.1:" + std::to_string(a.local_endpoint().port());
}

http::response<http::string_body> get(std::uint16_t port, const std::string& target,
                                      const std::vector<std::pair<std::string, std::string>>& headers) {
  Client c(port);
  return c.request(http::verb::get, target, headers);
}

std::optional<std::string> echoHeader(const std::string& echo_json, const std::string& name) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(echo_json).get(doc)) return std::nullopt;
  simdjson::dom::array headers;
  if (doc["headers"].get_array().get(headers)) return std::nullopt;
  std::optional<std::string> out;
  for (auto h : headers) {
    std::string_view k, v;
    if (h.at(0).get_string().get(k) || h.at(1).get_string().get(v)) continue;
    if (k.size() != name.size() || !boost::beast::iequals(k, name)) continue;
    if (out) *out += ", " + std::string(v);
    else out = std::string(v);
  }
  return out;
}

std::string echoField(const std::string& echo_json, const std::string& key) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(echo_json).get(doc)) return {};
  simdjson::dom::element v;
  if (doc[key].get(v)) return {};
  if (v.is_string()) return std::string(v.get_string().value());
  std::ostringstream os;
  os << v;
  return os.str();
}

ShellResult sh(const std::string& cmd) {
  ShellResult r;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace fledge::test
