// 1 GiB bodies in both directions, content-length and chunked: Fledge streams them with a
// bounded buffer, so its resident memory stays small whatever the body size.
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>

#include "tests/integration/harness.hpp"

namespace fledge::test {
namespace {

#ifdef FLEDGE_TEST_SANITIZED
// ASan's shadow memory and quarantine make RSS meaningless, and it is ~10x slower:
// the sanitized run checks correctness on a smaller body.
constexpr std::uint64_t kBytes = 128ull << 20;
constexpr bool kCheckRss = false;
#else
constexpr std::uint64_t kBytes = 1ull << 30;
constexpr bool kCheckRss = true;
#endif
constexpr long kRssLimitKiB = 64 * 1024;

std::string cfg(const std::string& upstream) {
  return config(R"({"up":{"endpoints":[")" + upstream + R"("]}})",
                R"([{"name":"all","match":{"path_prefix":"/"},"cluster":"up"}])", R"("workers":1)");
}

void upload(std::uint16_t port, bool chunked) {
  Client c(port, 60s);
  std::string head = "POST /upload HTTP/1.1\r\nHost: t\r\n";
  head += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Content-Length: " + std::to_string(kBytes) + "\r\n\r\n";
  c.send(head);
  std::string block(1 << 20, 'u');
  char size_line[32];
  for (std::uint64_t sent = 0; sent < kBytes; sent += block.size()) {
    if (chunked) {
      int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", block.size());
      c.send(std::string_view(size_line, static_cast<std::size_t>(n)));
    }
    c.send(block);
    if (chunked) c.send("\r\n");
  }
  if (chunked) c.send("0\r\n\r\n");
  auto res = c.read();
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(echoField(res.body(), "body_length"), std::to_string(kBytes));
  EXPECT_EQ(echoField(res.body(), "chunked"), chunked ? "true" : "false");
}

void download(std::uint16_t port, bool chunked) {
  Client c(port, 60s);
  c.send("GET /download?bytes=" + std::to_string(kBytes) + (chunked ? "&chunked=1" : "") + " HTTP/1.1\r\nHost: t\r\n\r\n");
  http::response_parser<http::buffer_body> p;
  p.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::read_header(c.socket(), c.buffer(), p);
  ASSERT_EQ(p.get().result_int(), 200);
  EXPECT_EQ(p.chunked(), chunked);
  std::vector<char> buf(1 << 16);
  std::uint64_t got = 0;
  while (!p.is_done()) {
    p.get().body().data = buf.data();
    p.get().body().size = buf.size();
    boost::system::error_code ec;
    http::read(c.socket(), c.buffer(), p, ec);
    if (ec == http::error::need_buffer) ec = {};
    ASSERT_FALSE(ec) << ec.message();
    got += buf.size() - p.get().body().size;
  }
  EXPECT_EQ(got, kBytes);
}

TEST(Streaming, OneGiBUploadAndDownloadWithBoundedRss) {
  EchoUpstream up("up");
  Fledge f(cfg(up.address()));
  upload(f.port(), false);
  upload(f.port(), true);
  download(f.port(), false);
  download(f.port(), true);
  long peak = f.process().peakRssKiB();
  RecordProperty("fledge_peak_rss_kib", std::to_string(peak));
  std::printf("fledge peak RSS after 4 x %llu MiB transfers: %ld KiB\n",
              static_cast<unsigned long long>(kBytes >> 20), peak);
  if (kCheckRss) {
    EXPECT_LT(peak, kRssLimitKiB);
  }
}

}  // namespace
}  // namespace fledge::test
