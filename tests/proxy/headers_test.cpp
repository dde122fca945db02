#include "proxy/headers.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>

namespace fledge::proxy {
namespace {
namespace http = boost::beast::http;

Head makeHead(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  Head h;
  h.setStartLine("GET", "/path?q=1");
  for (auto [k, v] : fields) h.addField(http::string_to_field(k), k, v);
  return h;
}

RequestHeadInfo requestInfo(Framing framing = Framing::kNone, std::uint64_t len = 0) {
  RequestHeadInfo info;
  info.method = "GET";
  info.target = "/path?q=1";
  info.host = info.forwarded_host = "shop.example";
  info.framing = framing;
  info.content_length = len;
  info.forward = ForwardInfo{"127.0.0.9", "http", "rid-1"};
  return info;
}

TEST(Headers, RequestDropsHopByHopAndFieldsNamedByConnection) {
  Head h = makeHead({{"Host", "shop.example"},
                     {"Connection", "keep-alive, X-Secret"},
                     {"Keep-Alive", "timeout=5"},
                     {"X-Secret", "1"},
                     {"TE", "trailers"},
                     {"Trailer", "X-T"},
                     {"Upgrade", "websocket"},
                     {"Proxy-Authorization", "Basic x"},
                     {"Proxy-Connection", "keep-alive"},
                     {"Proxy-Custom", "1"},
                     {"X-Keep", "yes"},
                     {"Connection", "x-other"},
                     {"X-Other", "2"},
                     {"X-Fledge-Flags", "forged=on"},
                     {"x-fledge-arm", "canary"},
                     {"Expect", "100-continue"}});
  std::string out;
  appendRequestHead(out, h, requestInfo());
  EXPECT_EQ(out,
            "GET /path?q=1 HTTP/1.1\r\n"
            "Host: shop.example\r\n"
            "X-Keep: yes\r\n"
            "X-Forwarded-For: 127.0.0.9\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: shop.example\r\n"
            "Via: 1.1 fledge\r\n"
            "X-Request-Id: rid-1\r\n"
            "\r\n");
}

TEST(Headers, RequestFramingIsRewritten) {
  Head h = makeHead({{"Host", "a"}, {"Content-Length", "5, 5"}, {"Connection", "content-length"}});
  std::string out;
  appendRequestHead(out, h, requestInfo(Framing::kLength, 5));
  EXPECT_NE(out.find("\r\nContent-Length: 5\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("5, 5"), std::string::npos) << out;

  Head c = makeHead({{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}});
  out.clear();
  appendRequestHead(out, c, requestInfo(Framing::kChunked));
  EXPECT_NE(out.find("\r\nTransfer-Encoding: gzip, chunked\r\n"), std::string::npos) << out;
}

TEST(Headers, HostIsWrittenByFledgeAndSurvivesConnection) {
  for (auto conn : {"close, Host", "Host", "keep-alive, host"}) {
    Head h = makeHead({{"Host", "internal.example.com"}, {"Connection", conn}, {"Host", "second"}});
    RequestHeadInfo info = requestInfo();
    info.host = info.forwarded_host = "a.test";  // e.g. the authority of an absolute-form target
    std::string out;
    appendRequestHead(out, h, info);
    EXPECT_NE(out.find("\r\nHost: a.test\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Forwarded-Host: a.test\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("internal"), std::string::npos) << out;
    EXPECT_EQ(out.find("second"), std::string::npos) << out;
  }
  // No client Host (HTTP/1.0): Host is still sent, X-Forwarded-Host is not.
  Head h = makeHead({});
  RequestHeadInfo info = requestInfo();
  info.host = "127.0.0.1:8080";
  info.forwarded_host = {};
  std::string out;
  appendRequestHead(out, h, info);
  EXPECT_NE(out.find("\r\nHost: 127.0.0.1:8080\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("X-Forwarded-Host"), std::string::npos) << out;
}

TEST(Headers, LinesFledgeWritesAreValidatedAtOnePlace) {
  std::string out;
  EXPECT_TRUE(appendHeaderLine(out, "x-fledge-flags", "a=on, b=x%2C%20y"));
  EXPECT_EQ(out, "x-fledge-flags: a=on, b=x%2C%20y\r\n");
  for (std::string_view bad : {std::string_view("on\r\nX-Injected: 1"), std::string_view("a\nb"), std::string_view("a\rb"),
                               std::string_view("a\0b", 3), std::string_view(" lead"), std::string_view("trail "),
                               std::string_view("del\x7f")}) {
    std::string o;
    EXPECT_FALSE(appendHeaderLine(o, "x-fledge-arm", bad)) << bad;
    EXPECT_EQ(o, "");
  }
  for (std::string_view bad_name : {"", "a b", "a:b", "a\r\nb", "a,b", "a=b", "x\x80"}) {
    std::string o;
    EXPECT_FALSE(appendHeaderLine(o, bad_name, "v")) << bad_name;
    EXPECT_EQ(o, "");
  }
}

TEST(Headers, VariantNamesArePercentEncoded) {
  auto enc = [](std::string_view s) {
    std::string out;
    appendPercentEncoded(out, s);
    return out;
  };
  EXPECT_EQ(enc("on"), "on");
  EXPECT_EQ(enc("A-z_0.9~"), "A-z_0.9~");
  EXPECT_EQ(enc("x, beta-api=on"), "x%2C%20beta-api%3Don");
  EXPECT_EQ(enc("100%"), "100%25");
  EXPECT_EQ(enc("on\r\nX-Injected: 1"), "on%0D%0AX-Injected%3A%201");
  EXPECT_EQ(enc(std::string_view("a\0b", 3)), "a%00b");
  EXPECT_EQ(enc("caf\xc3\xa9"), "caf%C3%A9");
}

TEST(Headers, ForwardingHeadersAppendAndReplace) {
  Head h = makeHead({{"Host", "shop.example"},
                     {"X-Forwarded-For", "10.0.0.1"},
                     {"Accept", "*/*"},
                     {"x-forwarded-for", "10.0.0.2"},
                     {"Via", "1.1 edge"},
                     {"X-Forwarded-Proto", "https"},
                     {"X-Forwarded-Host", "spoofed"},
                     {"X-Request-Id", "client-id"}});
  std::string out;
  appendRequestHead(out, h, requestInfo());
  EXPECT_NE(out.find("X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.9\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("https"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Forwarded-Host: shop.example\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("spoofed"), std::string::npos) << out;
  EXPECT_NE(out.find("Via: 1.1 edge, 1.1 fledge\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Request-Id: client-id\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("rid-1"), std::string::npos) << out;
}

TEST(Headers, ResponseHeadFramingAndConnection) {
  Head h;
  h.setStartLine("OK", {});
  h.addField(http::field::content_type, "Content-Type", "text/plain");
  h.addField(http::field::transfer_encoding, "Transfer-Encoding", "chunked");
  h.addField(http::field::connection, "Connection", "close, X-Hop");
  h.addField(http::field::unknown, "X-Hop", "1");
  h.addField(http::field::keep_alive, "Keep-Alive", "timeout=5");

  std::string out;
  ResponseHeadInfo info;
  info.version = 11;
  info.status = 200;
  info.reason = "OK";
  info.framing = Framing::kChunked;
  info.keep_alive = true;
  appendResponseHead(out, h, info);
  EXPECT_EQ(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");

  out.clear();
  info.version = 10;
  info.framing = Framing::kClose;
  info.keep_alive = false;
  appendResponseHead(out, h, info);
  EXPECT_EQ(out, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n");

  out.clear();
  info.version = 11;
  info.status = 404;
  info.reason = "";
  info.framing = Framing::kLength;
  info.content_length = 12;
  appendResponseHead(out, h, info);
  EXPECT_EQ(out, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 12\r\nConnection: close\r\n\r\n");

  out.clear();
  info.version = 10;
  info.keep_alive = true;
  info.framing = Framing::kAsIs;  // HEAD: the upstream's framing fields, no body
  appendResponseHead(out, h, info);
  EXPECT_EQ(out, "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
}

}  // namespace
}  // namespace fledge::proxy
