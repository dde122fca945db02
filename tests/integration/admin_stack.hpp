#pragma once
// A running Fledge with the admin API on a fresh store, two echo upstreams and a split route:
// shared by the admin API tests and the load tests.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/harness.hpp"

namespace fledge::test {

inline std::string tempDir() {
  std::string tmpl = "/tmp/fledge-store-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  return mkdtemp(buf.data());
}

struct Stack {
  EchoUpstream stable{"stable"}, canary{"canary"};
  std::string data_dir = tempDir();
  std::string cfg;
  std::unique_ptr<Fledge> f;

  explicit Stack(const std::string& admin_extra = "", const std::string& extra = "") {
    cfg = config(R"({"v1":{"endpoints":[")" + stable.address() + R"("]},"v2":{"endpoints":[")" + canary.address() + R"("]}})",
                 R"([{"name":"web","match":{"path_prefix":"/"},"flags":["f"],
                      "split":{"arms":[{"name":"canary","cluster":"v2","weight":0},{"name":"stable","cluster":"v1","weight":100}],
                               "sticky":[{"header":"x-user-id"}]}}])",
                 R"("admin":{"listen":"127.0.0.1:0","data_dir":")" + data_dir + "\"" + admin_extra + R"(},
                    "flags":{"flags":{"f":{"state":"ENABLED","variants":{"on":true,"off":false},"defaultVariant":"on"}}})" + extra);
    start();
  }
  ~Stack() {
    f.reset();
    std::filesystem::remove_all(data_dir);
  }
  void start() { f = std::make_unique<Fledge>(cfg); }
  std::uint16_t admin() const { return f->adminPort(); }
};

// GET /buy against `port` from many users (x-user-id u0, u1, ...), as fast as it is answered,
// until destroyed (rollout tests need both arms busy while the controller decides).
class BackgroundTraffic {
 public:
  explicit BackgroundTraffic(std::uint16_t port)
      : thread_([this, port] {
          std::uint64_t user = 0;
          while (!stop_) {
            try {
              Client c(port);
              for (int i = 0; i < 200 && !stop_; ++i) c.request(http::verb::get, "/buy", {{"x-user-id", "u" + std::to_string(user++)}});
            } catch (...) {  // a connection the proxy closed: open the next one
            }
          }
        }) {}
  ~BackgroundTraffic() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

inline http::response<http::string_body> call(std::uint16_t port, http::verb method, const std::string& target,
                                       const std::string& body = "",
                                       std::vector<std::pair<std::string, std::string>> headers = {}) {
  Client c(port);
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  return c.request(method, target, headers, body);
}


}  // namespace fledge::test
