#pragma once
// HTTP message heads parsed by Beast's basic_parser without per-field allocations: fields are
// copied into a reusable arena owned by the session, and body bytes are copied into a caller
// buffer (like buffer_body). The head is then re-serialized by proxy/headers.hpp.
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace fledge::proxy {

// A cheap case-insensitive fingerprint of a field name: length, first and last character.
// Lookups compare it before comparing names.
inline std::uint32_t fieldKey(std::string_view name) {
  if (name.empty()) return 0;
  auto lower = [](char c) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  };
  return (static_cast<std::uint32_t>(name.size() & 0xffff) << 16) | (lower(name.front()) << 8) | lower(name.back());
}

// A parsed request line or status line plus fields, stored in one reusable string.
class Head {
 public:
  struct Span {
    std::uint32_t off = 0, len = 0;
  };
  struct Entry {
    boost::beast::http::field id;
    std::uint32_t key;  // fieldKey(name)
    Span name, value;
  };

  struct Field {
    boost::beast::http::field id;
    std::string_view name;
    std::string_view value;
  };

  void clear() {
    store_.clear();
    entries_.clear();
  }

  void setStartLine(std::string_view a, std::string_view b) {
    start_a_ = put(a);
    start_b_ = put(b);
  }
  void addField(boost::beast::http::field id, std::string_view name, std::string_view value) {
    entries_.push_back(Entry{id, fieldKey(name), put(name), put(value)});
  }

  // Request: method and target. Response: reason phrase (a) only.
  std::string_view startA() const { return view(start_a_); }
  std::string_view startB() const { return view(start_b_); }

  std::size_t size() const { return entries_.size(); }
  std::uint32_t key(std::size_t i) const { return entries_[i].key; }
  boost::beast::http::field id(std::size_t i) const { return entries_[i].id; }
  std::string_view name(std::size_t i) const { return view(entries_[i].name); }
  std::string_view value(std::size_t i) const { return view(entries_[i].value); }
  Field operator[](std::size_t i) const {
    const Entry& e = entries_[i];
    return Field{e.id, view(e.name), view(e.value)};
  }
  // First value of a known field, or nullptr-data view when absent.
  const Entry* findEntry(boost::beast::http::field id) const {
    for (const auto& e : entries_)
      if (e.id == id) return &e;
    return nullptr;
  }
  bool has(boost::beast::http::field id) const { return findEntry(id) != nullptr; }
  std::string_view value(boost::beast::http::field id) const {
    const Entry* e = findEntry(id);
    return e ? view(e->value) : std::string_view{};
  }
  std::size_t count(boost::beast::http::field id) const {
    std::size_t n = 0;
    for (const auto& e : entries_) n += e.id == id;
    return n;
  }

 private:
  Span put(std::string_view s) {
    Span sp{static_cast<std::uint32_t>(store_.size()), static_cast<std::uint32_t>(s.size())};
    store_.append(s);
    return sp;
  }
  std::string_view view(Span s) const { return std::string_view(store_).substr(s.off, s.len); }

  std::string store_;
  std::vector<Entry> entries_;
  Span start_a_, start_b_;
};

// Header names with '_' (CGI/WSGI servers map `x_a` and `x-a` to one variable): dropped,
// refused (400) or kept, for requests; responses keep them.
enum class UnderscoreHeaders { kDrop, kReject, kAllow };

// Where body bytes go while parsing: a fixed buffer the relay drains between reads.
struct BodySink {
  char* data = nullptr;
  std::size_t capacity = 0;
  std::size_t size = 0;
  void reset(char* d, std::size_t cap) {
    data = d;
    capacity = cap;
    size = 0;
  }
};

template <bool isRequest>
class HeadParser : public boost::beast::http::basic_parser<isRequest> {
 public:
  using error_code = boost::system::error_code;
  using string_view = boost::beast::string_view;

  HeadParser(Head& head, BodySink& sink) : head_(head), sink_(sink) { head_.clear(); }

  boost::beast::http::verb method() const { return method_; }
  unsigned version() const { return version_; }
  unsigned status() const { return status_; }
  const Head& head() const { return head_; }
  void underscores(UnderscoreHeaders policy) { underscores_ = policy; }

 private:
  void on_request_impl(boost::beast::http::verb method, string_view method_str, string_view target, int version,
                       error_code&) override {
    method_ = method;
    version_ = static_cast<unsigned>(version);
    head_.setStartLine(std::string_view(method_str), std::string_view(target));
  }
  void on_response_impl(int code, string_view reason, int version, error_code&) override {
    status_ = static_cast<unsigned>(code);
    version_ = static_cast<unsigned>(version);
    head_.setStartLine(std::string_view(reason), {});
  }
  void on_field_impl(boost::beast::http::field id, string_view name, string_view value, error_code& ec) override {
    if (underscores_ != UnderscoreHeaders::kAllow && id == boost::beast::http::field::unknown &&
        name.find('_') != string_view::npos) {
      if (underscores_ == UnderscoreHeaders::kReject) ec = boost::beast::http::error::bad_field;
      return;
    }
    head_.addField(id, std::string_view(name), std::string_view(value));
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code& ec) override { return take(body, ec); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code& ec) override { return take(body, ec); }
  void on_finish_impl(error_code&) override {}

  std::size_t take(string_view body, error_code& ec) {
    std::size_t room = sink_.capacity - sink_.size;
    std::size_t n = std::min(room, body.size());
    if (n != 0) std::memcpy(sink_.data + sink_.size, body.data(), n);
    sink_.size += n;
    if (n < body.size()) ec = boost::beast::http::error::need_buffer;
    return n;
  }

  Head& head_;
  BodySink& sink_;
  boost::beast::http::verb method_ = boost::beast::http::verb::unknown;
  unsigned version_ = 11;
  unsigned status_ = 0;
  UnderscoreHeaders underscores_ = UnderscoreHeaders::kAllow;
};

}  // namespace fledge::proxy
