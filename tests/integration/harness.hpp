#pragma once
// Integration-test harness: starts the real `fledge` binary and echo upstreams as child
// processes on loopback, and talks HTTP to them over plain sockets.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace fledge::test {

using namespace std::chrono_literals;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

std::string fledgeBinary();
std::string sourceDir();

// A child process whose stderr is collected in the background.
class Process {
 public:
  explicit Process(const std::vector<std::string>& argv);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  std::string log() const;
  // Waits until the collected stderr contains `needle`; returns false on timeout or exit.
  bool waitForLog(const std::string& needle, std::chrono::milliseconds timeout = 10s) const;
  void signal(int sig);
  // Waits for exit; returns the exit code, or -1 on timeout, or 128+signal if signalled.
  int wait(std::chrono::milliseconds timeout = 10s);
  bool running();
  // Resident set size in KiB (from /proc/PID/status VmRSS).
  long rssKiB() const;
  long peakRssKiB() const;  // VmHWM

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  bool exited_ = false;
  int err_fd_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::string log_;
};

// Extracts the port from a log line `"<key>":"<host>:<port>"` that follows `msg`.
std::uint16_t portFromLog(const std::string& log, const std::string& msg);

class EchoUpstream {
 public:
  // `extra`: more echo-upstream options (--fail-rate R, --delay-ms N, ...).
  explicit EchoUpstream(const std::string& name, const std::vector<std::string>& extra = {});
  std::uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *proc_; }

 private:
  std::unique_ptr<Process> proc_;
  std::uint16_t port_ = 0;
};

// A running fledge with a config built from `json` (a full config document).
class Fledge {
 public:
  explicit Fledge(const std::string& config_json);
  ~Fledge();
  std::uint16_t port() const { return port_; }
  std::uint16_t adminPort() const { return admin_port_; }
  std::uint16_t ofrepPort() const { return ofrep_port_; }
  Process& process() { return *proc_; }
  const std::string& configPath() const { return config_path_; }

 private:
  std::string config_path_;
  std::unique_ptr<Process> proc_;
  std::uint16_t port_ = 0, admin_port_ = 0, ofrep_port_ = 0;
};

std::string writeTempFile(const std::string& content, const std::string& suffix = ".json");

// One member of a config's "clusters" object: "name":{"endpoints":[...],extra}.
std::string cluster(const std::string& name, const std::vector<std::string>& endpoints, const std::string& extra = "");

// A minimal config: one listener on port 0, admin on port 0, the given clusters and routes.
std::string config(const std::string& clusters_json, const std::string& routes_json, const std::string& extra = "");

// In a Prometheus text exposition: the value of the sample whose line starts with `series`
// (name and exact labels), or -1.
double metricSample(const std::string& text, const std::string& series);

// A blocking HTTP/1.1 client connection with a receive timeout.
class Client {
 public:
  explicit Client(std::uint16_t port, std::chrono::milliseconds timeout = 10s);
  void send(std::string_view raw);
  // Reads one response; `head` tells the parser there is no body.
  http::response<http::string_body> read(bool head = false);
  // One request/response on this connection.
  http::response<http::string_body> request(http::verb method, const std::string& target,
                                            const std::vector<std::pair<std::string, std::string>>& headers = {},
                                            const std::string& body = "");
  // Everything until the peer closes (or the timeout passes).
  std::string readAll();
  // True if the peer closed the connection (EOF or reset) within the timeout.
  bool closedByPeer();
  tcp::socket& socket() { return socket_; }
  boost::beast::flat_buffer& buffer() { return buffer_; }

 private:
  boost::asio::io_context ioc_;
  tcp::socket socket_{ioc_};
  boost::beast::flat_buffer buffer_;
};

// `cmd` through the shell; stdout and stderr together.
struct ShellResult {
  int exit_code = -1;  // -1: could not run, or killed by a signal
  std::string output;  // stdout and stderr
};
ShellResult sh(const std::string& cmd);

// "127.0.0.1:PORT" with nothing listening on PORT (refuses connections).
std::string deadAddress();

// Convenience: one GET on a fresh connection.
http::response<http::string_body> get(std::uint16_t port, const std::string& target,
                                      const std::vector<std::pair<std::string, std::string>>& headers = {});

// Value of header `name` (case-insensitive) in an echo upstream's JSON description, or nullopt.
std::optional<std::string> echoHeader(const std::string& echo_json, const std::string& name);
// A top-level field of the echo JSON as raw text (numbers, booleans, strings without quotes).
std::string echoField(const std::string& echo_json, const std::string& key);

}  // namespace fledge::test
