// proxy/config.hpp: parseConfig on the input as a configuration file, then, when it is valid,
// Snapshot::create (what a reload or an admin write publishes). Errors are fine; a configuration
// that passes must hold together: every index resolved, split weights summing to 100 %, every
// line Fledge would add to a head valid.
//
// flag_files are read relative to configs/; an input naming any other existing file is skipped,
// so the fuzzer never reads /dev/zero, /proc or anything outside the seeds' flag files.
#include <simdjson.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "flags/flag_set.hpp"
#include "proxy/config.hpp"
#include "proxy/headers.hpp"
#include "proxy/snapshot.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
namespace fs = std::filesystem;
using fledge::fuzz::printable;
using namespace fledge::proxy;

constexpr std::size_t kMaxInput = 64 * 1024;
const std::string kBaseDir = FLEDGE_SOURCE_DIR "/configs";

// A flag file the fuzzer may read: a regular file under configs/, small.
bool allowedFile(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec)) && !ec) return true;  // parseConfig reports it missing
  static const fs::path base = fs::canonical(kBaseDir);
  const fs::path p = fs::canonical(path, ec);
  if (ec || !fs::is_regular_file(p, ec) || fs::file_size(p, ec) > kMaxInput || ec) return false;
  const auto rel = p.lexically_relative(base);
  return !rel.empty() && *rel.begin() != "..";
}

// Every flag_files entry (duplicate keys included) is a file the fuzzer may read.
bool filesAllowed(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(json);
  if (parser.parse(padded).get(root)) return true;  // not JSON: nothing is read
  simdjson::dom::object obj;
  if (root.get_object().get(obj)) return true;
  for (auto field : obj) {
    if (field.key != "flag_files") continue;
    simdjson::dom::array files;
    if (field.value.get_array().get(files)) continue;
    for (auto f : files) {
      std::string_view file;
      if (f.get_string().get(file)) continue;
      if (file.find('\0') != std::string_view::npos) return false;
      const std::string full = !file.empty() && file[0] == '/' ? std::string(file) : kBaseDir + "/" + std::string(file);
      if (!allowedFile(full)) return false;
    }
  }
  return true;
}

std::string errorsOf(const ConfigResult& r) {
  std::string s;
  for (const auto& e : r.errors) s += e.str() + "\n";
  return s;
}

void checkValid(const Config& cfg, const std::string& what) {
  FUZZ_CHECK(!cfg.listeners.empty(), what);
  FUZZ_CHECK(cfg.limits.max_request_line <= cfg.limits.max_header_bytes, what);
  for (const auto& route : cfg.routes) {
    const std::string w = what + "\nroute " + printable(route.name);
    FUZZ_CHECK(fledge::flags::isValidName(route.name), w);
    if (route.split) {
      const auto& arms = route.split->arms;
      FUZZ_CHECK(arms.size() >= 2, w);
      std::uint64_t parts = 0;
      for (const auto& arm : arms) {
        FUZZ_CHECK(arm.cluster_index < cfg.clusters.size() && cfg.clusters[arm.cluster_index].name == arm.cluster, w);
        parts += arm.parts;
      }
      FUZZ_CHECK(parts == kSplitScale, w + "\nsplit parts sum to " + std::to_string(parts));
    } else {
      FUZZ_CHECK(route.cluster_index < cfg.clusters.size() && cfg.clusters[route.cluster_index].name == route.cluster, w);
    }
    if (route.mirror) FUZZ_CHECK(route.mirror->cluster_index < cfg.clusters.size(), w);
    if (!route.host.empty()) {
      const std::string_view h = route.host.starts_with("*.") ? std::string_view(route.host).substr(2) : std::string_view(route.host);
      FUZZ_CHECK(isValidHost(h), w);
    }
    if (!route.path_prefix.empty()) {
      std::string out;
      FUZZ_CHECK(route.path_prefix[0] == '/', w);
      // Requests are matched after normalization: a prefix must be normalized itself.
      FUZZ_CHECK(normalizePath(route.path_prefix, EncodedSlashes::kReject, out) == PathStatus::kNormal, w);
    }
    if (cfg.flag_set)
      for (const auto& key : route.flags) FUZZ_CHECK(cfg.flag_set->find(key) != nullptr, w);
  }
  for (const auto& c : cfg.clusters) FUZZ_CHECK(fledge::flags::isValidName(c.name) && !c.endpoints.empty(), what);
}

void checkSnapshot(const Snapshot& snap, const std::string& what) {
  const Config& cfg = snap.config;
  FUZZ_CHECK(snap.clusters.size() == cfg.clusters.size(), what);
  FUZZ_CHECK(snap.route_flags.size() == cfg.routes.size() && snap.route_splits.size() == cfg.routes.size(), what);
  for (std::size_t i = 0; i < cfg.clusters.size(); ++i)
    FUZZ_CHECK(snap.clusters[i].endpoints.size() == cfg.clusters[i].endpoints.size(), what);
  for (std::size_t i = 0; i < cfg.routes.size(); ++i) {
    const RouteSplit& rs = snap.route_splits[i];
    if (!cfg.routes[i].split) continue;
    FUZZ_CHECK(rs.table.size() == cfg.routes[i].split->arms.size(), what);
    FUZZ_CHECK(rs.table.pick(kSplitScale - 1) < rs.table.size() && rs.table.pick(0) < rs.table.size(), what);
    for (const auto& line : rs.upstream_lines) {
      std::string again;
      FUZZ_CHECK(line.ends_with("\r\n") && line.starts_with("x-fledge-arm: "), what);
      FUZZ_CHECK(appendHeaderLine(again, "x-fledge-arm", std::string_view(line).substr(14, line.size() - 16)), what);
    }
  }
  // x-fledge-flags items are joined with ", " and go into a header as they are.
  for (const auto& items : snap.flag_items)
    for (const auto& item : items)
      FUZZ_CHECK(isFieldValue(item) && item.find_first_of(", ") == std::string::npos, what + "\nitem " + printable(item));
  // Any request finds at most one route, and a valid one.
  for (std::string_view host : {"", "api.example.com", "a.example.com:8080", "[::1]"})
    for (std::string_view path : {"/", "/v2/x", "/beta"})
      if (auto r = snap.routes.match(host, path)) FUZZ_CHECK(*r < cfg.routes.size(), what);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return -1;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  if (!filesAllowed(json)) return -1;

  ConfigResult r = parseConfig(json, kBaseDir);
  const std::string what = "config \"" + printable(json, 2000) + "\"\nerrors:\n" + errorsOf(r);
  FUZZ_CHECK(r.ok() == r.errors.empty(), what);
  for (const auto& e : r.errors) FUZZ_CHECK(!e.message.empty(), what);
  // Parsing is a function of the text: the same errors, in the same order, every time.
  FUZZ_CHECK(errorsOf(parseConfig(json, kBaseDir)) == errorsOf(r), what);
  if (!r.ok()) return 0;

  checkValid(*r.config, what);
  std::string error;
  auto snap = Snapshot::create(std::move(*r.config), error);
  FUZZ_CHECK((snap == nullptr) == !error.empty(), what + "\nsnapshot: " + error);
  if (snap) checkSnapshot(*snap, what);
  return 0;
}
