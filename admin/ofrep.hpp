#pragma once
// OFREP (OpenFeature Remote Evaluation Protocol) over the flag set:
//   POST /ofrep/v1/evaluate/flags/{key}   one flag
//   POST /ofrep/v1/evaluate/flags         every enabled flag with a value (ETag / If-None-Match)
// Bodies are {"context": {...}}; optional bearer or X-API-Key authentication.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "admin/http_server.hpp"
#include "flags/flag_set.hpp"

namespace fledge::admin {

class OfrepService {
 public:
  using FlagSource = std::function<std::shared_ptr<const flags::FlagSet>()>;

  // An empty token list disables authentication.
  OfrepService(FlagSource flags, std::vector<std::string> tokens);

  void install(HttpServer& server);

  Response evaluateOne(const Request& req, std::string_view key) const;
  Response evaluateAll(const Request& req) const;

 private:
  bool authorized(const Request& req) const;

  FlagSource flags_;
  std::vector<std::string> tokens_;
};

// Tokens from a file (one per line, '#' comments) and/or an environment variable (comma-separated).
// Returns false with `error` set when the file cannot be read.
bool loadTokens(const std::string& file, const char* env_var, std::vector<std::string>& out, std::string& error);

// Constant-time comparison, so response timing does not reveal how much of a token matched.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace fledge::admin
