// proxy/uri.hpp: normalizePath under both encoded-slash policies, and isValidHost.
// Routing matches the normalized path, so whatever comes out must be a fixed point with no
// dot segment, empty segment, backslash or unnormalized escape left in it.
#include <string>
#include <string_view>

#include "proxy/headers.hpp"
#include "proxy/uri.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
using fledge::fuzz::printable;
using namespace fledge::proxy;

bool isUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

int hexValue(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

// The shape every path routing sees: what normalizePath returns, or accepts as kNormal.
void checkNormalized(std::string_view p, std::string_view input) {
  const std::string what = "input \"" + printable(input) + "\" -> \"" + printable(p) + "\"";
  FUZZ_CHECK(!p.empty() && p[0] == '/', what);
  FUZZ_CHECK(p.find("//") == std::string_view::npos, what);
  FUZZ_CHECK(p.find("/./") == std::string_view::npos, what);
  FUZZ_CHECK(p.find("/../") == std::string_view::npos, what);
  FUZZ_CHECK(!p.ends_with("/.") && !p.ends_with("/.."), what);
  FUZZ_CHECK(p.find('\\') == std::string_view::npos, what);
  FUZZ_CHECK(p.find('#') == std::string_view::npos, what);
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '%') continue;
    FUZZ_CHECK(i + 2 < p.size() && isUpperHex(p[i + 1]) && isUpperHex(p[i + 2]), what);
    const int v = hexValue(p[i + 1]) * 16 + hexValue(p[i + 2]);
    // Unreserved characters are decoded; slashes are decoded or refused; NUL is refused.
    FUZZ_CHECK(!isUnreserved(static_cast<unsigned char>(v)) && v != '/' && v != '\\' && v != 0, what);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view path(reinterpret_cast<const char*>(data), size);

  std::string out[2];
  PathStatus status[2];
  const EncodedSlashes policies[2] = {EncodedSlashes::kReject, EncodedSlashes::kDecode};
  for (int i = 0; i < 2; ++i) {
    status[i] = normalizePath(path, policies[i], out[i]);
    if (path.empty() || path[0] != '/') FUZZ_CHECK(status[i] == PathStatus::kBad, printable(path));
    if (status[i] == PathStatus::kBad) continue;
    const std::string_view result = status[i] == PathStatus::kNormal ? path : std::string_view(out[i]);
    if (status[i] == PathStatus::kChanged) FUZZ_CHECK(result != path, printable(path));
    checkNormalized(result, path);
    // A fixed point: normalizing the result again changes nothing (under either policy).
    std::string again;
    for (auto policy : policies) {
      const PathStatus s = normalizePath(result, policy, again);
      FUZZ_CHECK(s == PathStatus::kNormal, "input \"" + printable(path) + "\" -> \"" + printable(result) + "\" -> status " +
                                               std::to_string(static_cast<int>(s)) + " \"" + printable(again) + "\"");
    }
  }
  // The policies differ only on slashes: without '\', %2F or %5C they agree.
  std::string upper(path);
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  const bool slashy = path.find('\\') != std::string_view::npos || upper.find("%2F") != std::string::npos ||
                      upper.find("%5C") != std::string::npos;
  if (!slashy) {
    FUZZ_CHECK(status[0] == status[1], printable(path));
    if (status[0] == PathStatus::kChanged) FUZZ_CHECK(out[0] == out[1], printable(path));
  } else {
    FUZZ_CHECK(status[0] == PathStatus::kBad, "encoded slash accepted under kReject: " + printable(path));
  }

  // Hosts go into Host and X-Forwarded-Host lines and are compared by the router.
  if (isValidHost(path)) {
    for (char ch : path) {
      const auto c = static_cast<unsigned char>(ch);
      FUZZ_CHECK(isUnreserved(c) || c == ':' || c == '[' || c == ']', printable(path));
    }
    FUZZ_CHECK(isFieldValue(path), printable(path));
  }
  return 0;
}
