#include "proxy/uri.hpp"

#include <array>

namespace fledge::proxy {
namespace {

bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// True when nothing in `path` can change under normalization: no escape, backslash or '#', and
// no empty, "." or ".." segment. Most paths take only this scan.
bool obviouslyNormal(std::string_view path) {
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '%' || c == '\\' || c == '#') return false;
    if (c != '/' || i == 0) continue;
    // A segment starts after path[i - 1] == '/': reject "//", "/./" and "/../" (or at the end).
    if (path[i - 1] == '/') return false;
  }
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '/') continue;
    std::size_t j = i + 1;
    std::size_t dots = 0;
    while (j < path.size() && path[j] == '.') ++j, ++dots;
    if ((dots == 1 || dots == 2) && (j == path.size() || path[j] == '/')) return false;
  }
  return true;
}

}  // namespace

PathStatus normalizePath(std::string_view path, EncodedSlashes slashes, std::string& out) {
  if (path.empty() || path[0] != '/') return PathStatus::kBad;
  if (obviouslyNormal(path)) return PathStatus::kNormal;

  // 1. Escapes: decode unreserved characters, uppercase the rest; slashes by policy.
  std::string decoded;
  decoded.reserve(path.size());
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '#') return PathStatus::kBad;
    if (c == '\\') {
      if (slashes == EncodedSlashes::kReject) return PathStatus::kBad;
      decoded += '/';
      continue;
    }
    if (c != '%') {
      decoded += c;
      continue;
    }
    if (i + 2 >= path.size()) return PathStatus::kBad;
    const int hi = hexValue(path[i + 1]);
    const int lo = hexValue(path[i + 2]);
    if (hi < 0 || lo < 0) return PathStatus::kBad;
    const auto v = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (v == 0) return PathStatus::kBad;
    if (v == '/' || v == '\\') {
      if (slashes == EncodedSlashes::kReject) return PathStatus::kBad;
      decoded += '/';
    } else if (isUnreserved(v)) {
      decoded += static_cast<char>(v);
    } else {
      decoded += '%';
      decoded += kHex[v >> 4];
      decoded += kHex[v & 15];
    }
  }

  // 2. Segments: drop empty and "." ones, let ".." remove its parent (never above the root).
  out.clear();
  out.reserve(decoded.size());
  bool trailing_slash = false;
  std::size_t pos = 1;  // after the leading '/'
  while (true) {
    std::size_t end = decoded.find('/', pos);
    const bool last = end == std::string::npos;
    std::string_view seg = std::string_view(decoded).substr(pos, last ? std::string::npos : end - pos);
    if (seg == "..") {
      auto cut = out.rfind('/');
      out.resize(cut == std::string::npos ? 0 : cut);
      trailing_slash = true;
    } else if (seg.empty() || seg == ".") {
      trailing_slash = true;
    } else {
      out += '/';
      out += seg;
      trailing_slash = false;
    }
    if (last) break;
    pos = end + 1;
  }
  if (out.empty() || trailing_slash) out += '/';
  return out == path ? PathStatus::kNormal : PathStatus::kChanged;
}

bool isValidHost(std::string_view host) {
  if (host.empty()) return true;
  std::string_view port;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : host.substr(1, close - 1))
      if (hexValue(c) < 0 && c != ':' && c != '.') return false;
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    const auto colon = host.find(':');
    std::string_view name = host.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = host.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (name.empty() || name.size() > 255 || name.front() == '.') return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      const auto c = static_cast<unsigned char>(name[i]);
      if (!isUnreserved(c)) return false;
      if (c == '.' && i + 1 < name.size() && name[i + 1] == '.') return false;
    }
  }
  if (port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

}  // namespace fledge::proxy
