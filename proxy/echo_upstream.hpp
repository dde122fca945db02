#pragma once
// `fledge echo-upstream`: a small upstream for demos and tests. It answers every request with
// JSON describing what it received; query parameters shape the response:
//   status=N      respond with status N
//   bytes=N       respond with N bytes of 'x' instead of JSON (streamed; any size)
//   chunked=1     send the response body chunked
//   no_length=1   neither Content-Length nor chunked: the body ends when the connection closes
//   delay_ms=N    wait N ms before responding
//   close=1       close the connection after the response (with Connection: close)
//   hangup=1      close the connection after the response without announcing it
// Options make the whole upstream misbehave (a broken canary for rollout demos and tests):
// --fail-rate R answers a share R of requests with --fail-status (503), --delay-ms N adds N ms;
// with --fail-match TEXT both apply only to requests with a header value containing TEXT (a
// broken flag variant: --fail-match new-checkout=on). --reset-rate R resets the connection
// (RST, no answer) for a share R of requests, --hang-rate R never answers a share R (the
// connection stays open until the client gives up), --healthz-status N answers GET /healthz with
// N (the other options never apply to /healthz).
#include <string>

namespace fledge::proxy {

struct EchoOptions {
  std::string listen = "127.0.0.1:9001";
  std::string name = "echo";
  double fail_rate = 0;       // share of requests answered with fail_status
  unsigned fail_status = 503;
  unsigned delay_ms = 0;      // added to every response
  std::string fail_match;     // non-empty: the two above only for requests with a header value containing it
  double reset_rate = 0;      // share of requests answered by a connection reset
  double hang_rate = 0;       // share of requests never answered
  unsigned healthz_status = 200;
};

// Runs until the process is killed; returns a process exit code on startup failure.
int runEchoUpstream(const EchoOptions& options);

}  // namespace fledge::proxy
