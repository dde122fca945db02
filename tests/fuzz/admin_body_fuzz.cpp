// admin/api.cpp: admin API writes (PUT/DELETE of clusters, routes, splits, flags, flag state and
// default variant, and POST batch) through AdminApi::prepareWrite, the check handle() runs
// before it commits. The API runs on a real RocksDB store in a temporary directory, made and
// seeded once per process; prepareWrite itself never writes to it.
//
// A write that passes must leave a state that survives a restart (stored as JSON, read back by
// State::fromJson, valid again as a configuration) and an audit entry and answer that are JSON;
// a refused one an error answer that is JSON.
//
// Input: "METHOD path" on the first line (path below /api/v1/, e.g. "PUT routes/shop/split" or
// "POST batch"), then the body.
#include <simdjson.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "admin/api.hpp"
#include "admin/json_edit.hpp"
#include "admin/store.hpp"
#include "proxy/config.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
using namespace fledge::admin;
using fledge::fuzz::printable;

constexpr std::size_t kMaxInput = 64 * 1024;

constexpr const char* kConfig = R"({
  "listeners": [{"name": "main", "address": "127.0.0.1:8080"}],
  "admin": {"listen": "127.0.0.1:9901"},
  "evaluation_context": {"targeting_key": [{"header": "x-user-id"}], "attributes": {"plan": {"header": "x-plan"}}},
  "flags": {
    "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
    "metadata": {"flagSetId": "admin"},
    "flags": {
      "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
        "targeting": {"if": [{"or": [{"in": [{"var": "plan"}, ["pro"]]}, {"$ref": "is_staff"}]}, "on", "off"]}},
      "beta-api": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off"},
      "banner": {"state": "ENABLED", "variants": {"red": "#c00", "blue": "#00c"}, "defaultVariant": "red"}
    }
  },
  "clusters": {
    "stable": {"endpoints": ["10.0.0.1:9001", "10.0.0.2:9001"], "lb": "least_request"},
    "canary": {"endpoints": ["10.0.0.3:9002"]},
    "shadow": {"endpoints": ["[::1]:9003"], "max_idle": 4}
  },
  "routes": [
    {"name": "beta", "match": {"path_prefix": "/beta"}, "cluster": "canary",
     "require_flag": {"flag": "beta-api", "variant": "on"}},
    {"name": "shop", "match": {"host": "*.example.com", "path_prefix": "/shop"}, "flags": ["new-checkout"],
     "split": {"arms": [{"name": "canary", "cluster": "canary", "weight": 10},
                        {"name": "stable", "cluster": "stable", "weight": 90}],
               "sticky": [{"header": "x-user-id"}], "assign_cookie": true},
     "mirror": {"cluster": "shadow", "percent": 5}},
    {"name": "default", "match": {"path_prefix": "/"}, "cluster": "stable", "flags": "*"}
  ]
})";

// One API over one store for the whole run; the directory goes when the process exits normally.
struct Api {
  std::string dir;
  std::unique_ptr<AdminApi> api;
  Api() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/fledge-fuzz-admin-XXXXXX";
    FUZZ_CHECK(mkdtemp(templ.data()) != nullptr, "mkdtemp " + templ);
    dir = templ;
    std::string error;
    auto store = openRocksStore(dir + "/store", error);
    FUZZ_CHECK(store != nullptr, error);
    api = std::make_unique<AdminApi>(std::move(store), kConfig, "/nonexistent", std::vector<ApiToken>{},
                                     [](std::shared_ptr<const fledge::proxy::Snapshot>) {});
    FUZZ_CHECK(api->start(false, error) != nullptr, error);
  }
  ~Api() {
    api.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

Api& theApi() {
  static Api api;
  return api;
}

bool isJson(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  return !parser.parse(text.data(), text.size()).get(e);
}

std::string objectOf(const std::vector<std::pair<std::string, std::string>>& m) {
  std::string out = "{";
  for (std::size_t i = 0; i < m.size(); ++i) out += (i ? "," : "") + jsonQuote(m[i].first) + ":" + m[i].second;
  return out + "}";
}

// The configuration a restarted Fledge validates: the file with the stored state in it.
std::string assemble(const State& s) {
  std::string full = kConfig;
  for (const char* k : {"clusters", "routes", "flags"}) full = removeMember(full, k).value_or(full);
  std::string routes = "[";
  for (std::size_t i = 0; i < s.routes.size(); ++i) routes += (i ? "," : "") + s.routes[i].second;
  routes += "]";
  full = setMember(full, "clusters", objectOf(s.clusters)).value_or(full);
  full = setMember(full, "routes", routes).value_or(full);
  full = setMember(full, "flags", s.flags).value_or(full);
  return full;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return -1;
  fledge::fuzz::Bytes in(data, size);
  const std::string_view line = in.until("\n");
  const std::string_view body = in.rest();
  const std::string_view method = line.substr(0, line.find(' '));
  const std::string_view path = line.size() > method.size() ? line.substr(method.size() + 1) : std::string_view{};
  const std::string what = "\"" + printable(line) + "\" with body \"" + printable(body, 2000) + "\"";

  AdminApi& api = *theApi().api;
  const AdminApi::Write w = api.prepareWrite(method, path, body);
  if (w.error.status) {
    const unsigned s = w.error.status;
    FUZZ_CHECK(s == 400 || s == 404 || s == 405 || s == 409, what + "\nstatus " + std::to_string(s));
    FUZZ_CHECK(!w.error.message.empty() && w.snap == nullptr, what);
    // The answer as errorResponse writes it.
    std::string answer = "{\"error\":" + jsonQuote(w.error.message);
    if (!w.error.field.empty()) answer += ",\"field\":" + jsonQuote(w.error.field);
    answer += "}";
    FUZZ_CHECK(isJson(answer), what + "\nanswer: " + printable(answer));
    return 0;
  }
  const std::string w2 = what + "\nresource " + printable(w.resource) + "\nbefore " + printable(w.before, 2000) +
                         "\nafter " + printable(w.after, 2000);
  FUZZ_CHECK(w.snap != nullptr, w2);
  // The audit entry and the answer, as commitAndPublish writes them.
  const std::string audit = "{\"seq\":2,\"time\":\"2026-01-01T00:00:00.000Z\",\"actor\":\"local\",\"action\":" +
                            jsonQuote(std::string(method) + " /api/v1/" + std::string(path)) +
                            ",\"resource\":" + jsonQuote(w.resource) + ",\"before\":" + w.before + ",\"after\":" + w.after + "}";
  FUZZ_CHECK(isJson(audit), w2 + "\naudit entry is not JSON");
  if (path != "batch") FUZZ_CHECK(isJson(w.after == "null" ? "{}" : w.after), w2);

  // What the store keeps, read back after a restart, is the same state and valid again.
  const std::string stored = w.next.toJson(2);
  FUZZ_CHECK(isJson(stored), w2 + "\nstored state is not JSON");
  State back;
  FUZZ_CHECK(State::fromJson(stored, back), w2 + "\nstored state is unreadable: " + printable(stored, 2000));
  FUZZ_CHECK(back.clusters == w.next.clusters && back.routes == w.next.routes && back.flags == w.next.flags,
             w2 + "\nstored state reads back differently: " + printable(stored, 2000));
  const auto again = fledge::proxy::parseConfig(assemble(back), "/nonexistent");
  FUZZ_CHECK(again.ok(), w2 + "\nthe stored state is invalid after a restart: " +
                             (again.errors.empty() ? "" : again.errors.front().str()));
  return 0;
}
