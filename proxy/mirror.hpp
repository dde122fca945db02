#pragma once
// Shadow traffic: a fire-and-forget copy of a request sent to another cluster on its own
// connection. Its response is read and dropped; nothing it does can reach the primary exchange.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/http_head.hpp"

#include "proxy/upstream_connection.hpp"

namespace fledge::proxy {

class Worker;
struct Generation;

class MirrorCall : public std::enable_shared_from_this<MirrorCall> {
 public:
  // `request` is the complete request (head and body) to send. Takes over the slot the request
  // reserved with Worker::admitMirror; `gen` is the generation the request pinned.
  MirrorCall(Worker& worker, std::string request, std::shared_ptr<Generation> gen, std::size_t route,
             std::size_t cluster, std::size_t endpoint, std::chrono::milliseconds timeout);
  ~MirrorCall();
  void start();

 private:
  void onConnect(boost::system::error_code ec);
  void send();
  void onWrite(boost::system::error_code ec);
  void readSome();
  void finish(bool ok);

  Worker& w_;
  std::string request_;
  std::shared_ptr<Generation> gen_;
  std::size_t route_;
  std::size_t cluster_, endpoint_;
  UpstreamConnection socket_;
  boost::asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  Head head_;
  BodySink sink_;
  std::unique_ptr<char[]> discard_;
  std::optional<HeadParser<false>> parser_;
  bool done_ = false;
};

}  // namespace fledge::proxy
