#include "proxy/headers.hpp"

#include <gtest/gtest.h>

namespace fledge::proxy {
namespace {
namespace http = boost::beast::http;

TEST(Headers, StripsHopByHopAndFieldsNamedByConnection) {
  http::fields f;
  f.insert("Connection", "keep-alive, X-Secret");
  f.insert("Keep-Alive", "timeout=5");
  f.insert("X-Secret", "1");
  f.insert("TE", "trailers");
  f.insert("Trailer", "X-T");
  f.insert("Upgrade", "websocket");
  f.insert("Proxy-Authorization", "Basic x");
  f.insert("Proxy-Connection", "keep-alive");
  f.insert("X-Keep", "yes");
  f.insert("Connection", "x-other");
  f.insert("X-Other", "2");
  f.insert("Transfer-Encoding", "chunked");
  stripHopByHop(f);
  for (auto name : {"Connection", "Keep-Alive", "X-Secret", "TE", "Trailer", "Upgrade", "Proxy-Authorization",
                    "Proxy-Connection", "X-Other"})
    EXPECT_EQ(f.count(name), 0u) << name;
  EXPECT_EQ(f["X-Keep"], "yes");
  EXPECT_EQ(f["Transfer-Encoding"], "chunked");  // re-framed by the serializer, not dropped
}

TEST(Headers, ConnectionCannotRemoveFraming) {
  http::fields f;
  f.insert("Connection", "content-length");
  f.insert("Content-Length", "5");
  stripHopByHop(f);
  EXPECT_EQ(f["Content-Length"], "5");
}

TEST(Headers, ForwardingHeadersAppendAndSet) {
  http::fields f;
  f.insert("Host", "shop.example");
  f.insert("X-Forwarded-For", "10.0.0.1");
  f.insert("Accept", "*/*");
  f.insert("X-Forwarded-For", "10.0.0.2");
  f.insert("Via", "1.1 edge");
  f.insert("X-Forwarded-Proto", "https");  // spoofed by the client: replaced
  addForwardingHeaders(f, 11, ForwardInfo{"127.0.0.9", "http", "rid-1"});
  EXPECT_EQ(f["X-Forwarded-For"], "10.0.0.1, 10.0.0.2, 127.0.0.9");
  EXPECT_EQ(f.count("X-Forwarded-For"), 1u);
  EXPECT_EQ(f["X-Forwarded-Proto"], "http");
  EXPECT_EQ(f["X-Forwarded-Host"], "shop.example");
  EXPECT_EQ(f["Via"], "1.1 edge, 1.1 fledge");
  EXPECT_EQ(f["X-Request-Id"], "rid-1");
}

TEST(Headers, RequestIdIsKeptWhenPresent) {
  http::fields f;
  f.insert("X-Request-Id", "client-id");
  addForwardingHeaders(f, 10, ForwardInfo{"1.2.3.4", "http", "generated"});
  EXPECT_EQ(f["X-Request-Id"], "client-id");
  EXPECT_EQ(f["X-Forwarded-For"], "1.2.3.4");
  EXPECT_EQ(f["Via"], "1.0 fledge");
  EXPECT_EQ(f.count("X-Forwarded-Host"), 0u);
}

}  // namespace
}  // namespace fledge::proxy
