#include "proxy/headers.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>

#include <array>
#include <charconv>

namespace fledge::proxy {
namespace http = boost::beast::http;
using boost::beast::iequals;

namespace {

// The field names a message's Connection header(s) list, gathered once per head so that
// checking each field is a short scan, not another pass over the whole head.
class ConnectionNames {
 public:
  explicit ConnectionNames(const Head& head) {
    for (std::size_t i = 0; i < head.size(); ++i) {
      if (head.id(i) != http::field::connection) continue;
      for (auto tok : http::token_list{head.value(i)}) {
        if (n_ == names_.size()) {
          overflow_ = &head;  // unusually many: look them up in the head directly
          return;
        }
        names_[n_++] = std::string_view(tok.data(), tok.size());
      }
    }
  }
  bool contains(std::string_view name) const {
    if (overflow_) {
      for (std::size_t i = 0; i < overflow_->size(); ++i)
        if (overflow_->id(i) == http::field::connection)
          for (auto tok : http::token_list{overflow_->value(i)})
            if (iequals(tok, name)) return true;
      return false;
    }
    for (std::size_t i = 0; i < n_; ++i)
      if (iequals(names_[i], name)) return true;
    return false;
  }

 private:
  std::array<std::string_view, 16> names_;
  std::size_t n_ = 0;
  const Head* overflow_ = nullptr;
};

void appendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void appendNumber(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Transfer-Encoding value for the outgoing hop: the upstream's codings other than chunked, then
// chunked when this hop is chunked. Empty when nothing remains.
void appendTransferEncoding(std::string& out, const Head& head, bool chunked) {
  std::size_t start = out.size();
  out.append("Transfer-Encoding: ");
  bool any = false;
  for (std::size_t i = 0; i < head.size(); ++i) {
    auto f = head[i];
    if (f.id != http::field::transfer_encoding) continue;
    for (auto tok : http::token_list{f.value}) {
      if (iequals(tok, "chunked") || iequals(tok, "identity")) continue;  // Fledge frames; identity is no coding
      if (any) out.append(", ");
      out.append(tok.data(), tok.size());
      any = true;
    }
  }
  if (chunked) {
    if (any) out.append(", ");
    out.append("chunked");
    any = true;
  }
  if (any) out.append("\r\n");
  else out.resize(start);
}

void appendFraming(std::string& out, const Head& head, Framing framing, std::uint64_t length) {
  switch (framing) {
    case Framing::kNone: break;
    case Framing::kLength:
      out.append("Content-Length: ");
      appendNumber(out, length);
      out.append("\r\n");
      break;
    case Framing::kChunked: appendTransferEncoding(out, head, true); break;
    case Framing::kClose: appendTransferEncoding(out, head, false); break;
    case Framing::kAsIs:
      for (std::size_t i = 0; i < head.size(); ++i) {
        auto f = head[i];
        if (f.id == http::field::content_length || f.id == http::field::transfer_encoding)
          appendField(out, f.name, f.value);
      }
      break;
  }
}

bool isFraming(http::field id) { return id == http::field::content_length || id == http::field::transfer_encoding; }

bool isTchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~':
      return true;
  }
  return false;
}

}  // namespace

bool onlyChunked(const Head& head) {
  std::size_t codings = 0;
  bool chunked = false;
  for (std::size_t i = 0; i < head.size(); ++i)
    if (head.id(i) == http::field::transfer_encoding)
      for (auto tok : http::token_list{head.value(i)}) {
        ++codings;
        chunked = iequals(tok, "chunked");
      }
  return codings == 1 && chunked;
}

bool isFieldName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!isTchar(static_cast<unsigned char>(c))) return false;
  return true;
}

bool isFieldValue(std::string_view value) {
  if (!value.empty() && (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' || value.back() == '\t'))
    return false;
  for (char ch : value) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

bool appendHeaderLine(std::string& out, std::string_view name, std::string_view value) {
  if (!isFieldName(name) || !isFieldValue(value)) return false;
  appendField(out, name, value);
  return true;
}

void appendPercentEncoded(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
        c == '~' || c == '-') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

// True for fields that never cross a hop: Connection and the fields it names, Keep-Alive, TE,
// Trailer, Upgrade, Proxy-*. (Content-Length and Transfer-Encoding are re-framed separately.)
static bool isHopByHop(const ConnectionNames& named, const Head::Field& f) {
  switch (f.id) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::te:
    case http::field::trailer:
    case http::field::upgrade:
    case http::field::proxy_connection:
    case http::field::proxy_authenticate:
    case http::field::proxy_authorization:
      return true;
    case http::field::content_length:
    case http::field::transfer_encoding:
    case http::field::host:
      return false;  // framing and Host; never removable through Connection
    default:
      break;
  }
  if (f.name.size() >= 6 && iequals(f.name.substr(0, 6), "proxy-")) return true;
  return named.contains(f.name);
}

// Appends every value of `id` joined by ", ", followed by ", " when there was any.
static void appendJoined(std::string& out, const Head& head, std::string_view name) {
  for (std::size_t i = 0; i < head.size(); ++i) {
    auto f = head[i];
    if (f.name.size() != name.size() || !iequals(f.name, name)) continue;
    out.append(f.value);
    out.append(", ");
  }
}

void appendRequestHead(std::string& out, const Head& head, const RequestHeadInfo& info) {
  out.append(info.method);
  out.push_back(' ');
  out.append(info.target);
  out.append(" HTTP/1.1\r\n");
  appendField(out, "Host", info.host);
  const ConnectionNames named(head);
  bool has_request_id = false;
  for (std::size_t i = 0; i < head.size(); ++i) {
    auto f = head[i];
    if (isFraming(f.id) || f.id == http::field::expect || f.id == http::field::host || isHopByHop(named, f)) continue;
    // Rewritten below: X-Forwarded-For and Via keep earlier hops' values, in order, on one line.
    if (f.id == http::field::via) continue;
    if (f.id == http::field::unknown) {
      if (f.name.size() > 9 && iequals(f.name.substr(0, 9), "x-fledge-")) continue;
      if (iequals(f.name, "x-forwarded-for") || iequals(f.name, "x-forwarded-proto") ||
          iequals(f.name, "x-forwarded-host"))
        continue;
      if (iequals(f.name, "x-request-id")) has_request_id = true;
    }
    appendField(out, f.name, f.value);
  }
  appendFraming(out, head, info.framing, info.content_length);
  out.append(info.extra);
  out.append("X-Forwarded-For: ");
  appendJoined(out, head, "x-forwarded-for");
  out.append(info.forward.client_ip);
  out.append("\r\nX-Forwarded-Proto: ");
  out.append(info.forward.proto);
  out.append("\r\n");
  if (!info.forwarded_host.empty()) appendField(out, "X-Forwarded-Host", info.forwarded_host);
  out.append("Via: ");
  appendJoined(out, head, "via");
  out.append("1.1 fledge\r\n");
  if (!has_request_id) appendField(out, "X-Request-Id", info.forward.request_id);
  out.append("\r\n");
}

void appendResponseHead(std::string& out, const Head& head, const ResponseHeadInfo& info) {
  out.append(info.version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  appendNumber(out, info.status);
  out.push_back(' ');
  if (!info.reason.empty()) {
    out.append(info.reason);
  } else {
    auto r = http::obsolete_reason(static_cast<http::status>(info.status));
    out.append(r.data(), r.size());
  }
  out.append("\r\n");
  const ConnectionNames named(head);
  for (std::size_t i = 0; i < head.size(); ++i) {
    auto f = head[i];
    if (isFraming(f.id) || isHopByHop(named, f)) continue;
    appendField(out, f.name, f.value);
  }
  appendFraming(out, head, info.framing, info.content_length);
  out.append(info.extra);
  if (!info.keep_alive) out.append(info.version == 10 ? "" : "Connection: close\r\n");
  else if (info.version == 10) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
}

}  // namespace fledge::proxy
