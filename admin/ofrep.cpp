#include "admin/ofrep.hpp"

#include <simdjson.h>

#include <cstdlib>
#include <ctime>
#include <fstream>

#include "flags/json.hpp"
#include "flags/murmur3.hpp"
#include "proxy/log.hpp"

namespace fledge::admin {
namespace http = boost::beast::http;

namespace {

constexpr std::string_view kSinglePrefix = "/ofrep/v1/evaluate/flags/";
constexpr std::string_view kBulkPath = "/ofrep/v1/evaluate/flags";

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string jsonString(std::string_view s) {
  std::string out;
  flags::appendJson(out, flags::Value::string(s));
  return out;
}

Response errorResponse(const Request& req, http::status status, std::string_view key, std::string_view code,
                       std::string_view details) {
  std::string body = "{";
  if (!key.empty() || status == http::status::not_found) body += "\"key\":" + jsonString(key) + ",";
  body += "\"errorCode\":" + jsonString(code) + ",\"errorDetails\":" + jsonString(details) + "}";
  return HttpServer::json(req, status, std::move(body));
}

// The request's evaluation context, or an error response.
struct ParsedContext {
  flags::Arena arena;
  flags::Value value = flags::Value::object(nullptr, 0);
  std::string canonical;  // JSON of the context, for ETags
  std::string error_code, error_details;
};

void parseContext(const Request& req, ParsedContext& out) {
  const std::string& body = req.body();
  bool blank = body.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) {
    out.canonical = "{}";
    return;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto err = parser.parse(body).get(root); err) {
    out.error_code = "PARSE_ERROR";
    out.error_details = std::string("request body is not valid JSON: ") + simdjson::error_message(err);
    return;
  }
  if (!root.is_object()) {
    out.error_code = "PARSE_ERROR";
    out.error_details = "request body must be a JSON object like {\"context\": {...}}";
    return;
  }
  simdjson::dom::element ctx;
  if (root["context"].get(ctx) != simdjson::SUCCESS || ctx.is_null()) {
    out.canonical = "{}";
    return;
  }
  if (!ctx.is_object()) {
    out.error_code = "INVALID_CONTEXT";
    out.error_details = "context must be a JSON object";
    return;
  }
  if (!flags::fromDom(ctx, out.arena, out.value, 64)) {
    out.error_code = "INVALID_CONTEXT";
    out.error_details = "context nests too deeply";
    return;
  }
  if (const flags::Value* tk = out.value.get("targetingKey"); tk && !tk->isString()) {
    out.error_code = "INVALID_CONTEXT";
    out.error_details = "targetingKey must be a string";
    return;
  }
  out.canonical = simdjson::minify(ctx);
}

// Appends the success shape for one evaluation: {"key","value","reason","variant","metadata"};
// value and variant are left out when the flag yields no value.
void appendResult(std::string& out, const flags::Flag& flag, const flags::Evaluation& ev) {
  out += "{\"key\":" + jsonString(flag.key);
  if (ev.variant) {
    out += ",\"value\":" + ev.variant->json;
    out += ",\"variant\":" + jsonString(ev.variant->name);
  }
  out += ",\"reason\":\"";
  out += flags::reasonName(ev.reason);
  out += "\",\"metadata\":" + flag.metadata_json + "}";
}

}  // namespace

bool constantTimeEquals(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ (b.empty() ? 0 : b[i % b.size()]));
  return diff == 0;
}

bool loadTokens(const std::string& file, const char* env_var, std::vector<std::string>& out, std::string& error) {
  auto add = [&](std::string t) {
    while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) t.pop_back();
    std::size_t start = t.find_first_not_of(" \t");
    if (start == std::string::npos || t[start] == '#') return;
    out.push_back(t.substr(start));
  };
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) {
      error = "cannot read tokens file \"" + file + "\"";
      return false;
    }
    for (std::string line; std::getline(in, line);) add(line);
  }
  if (const char* env = env_var ? std::getenv(env_var) : nullptr) {
    std::string_view rest = env;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      add(std::string(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest = rest.substr(comma + 1);
    }
  }
  return true;
}

OfrepService::OfrepService(FlagSource flags, std::vector<std::string> tokens)
    : flags_(std::move(flags)), tokens_(std::move(tokens)) {}

bool OfrepService::authorized(const Request& req) const {
  if (tokens_.empty()) return true;
  std::string_view presented;
  auto auth = req.find(http::field::authorization);
  if (auth != req.end()) {
    std::string_view v = auth->value();
    if (v.size() > 7 && boost::beast::iequals(v.substr(0, 7), "Bearer ")) presented = v.substr(7);
  }
  auto key = req.find("x-api-key");
  if (presented.empty() && key != req.end()) presented = key->value();
  if (presented.empty()) return false;
  bool ok = false;
  for (const auto& t : tokens_) ok |= constantTimeEquals(presented, t);  // no early exit
  return ok;
}

void OfrepService::install(HttpServer& server) {
  server.handle(http::verb::post, std::string(kBulkPath), [this](const Request& req) { return evaluateAll(req); });
  server.handlePrefix(http::verb::post, std::string(kSinglePrefix), [this](const Request& req) {
    std::string_view target = req.target();
    std::string_view path = target.substr(0, target.find('?'));
    return evaluateOne(req, path.substr(kSinglePrefix.size()));
  });
}

Response OfrepService::evaluateOne(const Request& req, std::string_view raw_key) const {
  std::string key = percentDecode(raw_key);
  if (!authorized(req)) return errorResponse(req, http::status::unauthorized, key, "GENERAL", "missing or invalid credentials");
  if (key.empty()) return errorResponse(req, http::status::bad_request, key, "GENERAL", "flag key missing in path");
  ParsedContext ctx;
  parseContext(req, ctx);
  if (!ctx.error_code.empty()) return errorResponse(req, http::status::bad_request, key, ctx.error_code, ctx.error_details);
  auto set = flags_();
  const flags::Flag* flag = set ? set->find(key) : nullptr;
  if (!flag) return errorResponse(req, http::status::not_found, key, "FLAG_NOT_FOUND", "flag not found");
  flags::EvalScratch scratch;
  flags::Evaluation ev = set->evaluate(*flag, ctx.value, scratch, std::time(nullptr));
  if (ev.error != flags::ErrorCode::kNone)
    return errorResponse(req, http::status::bad_request, key, flags::errorCodeName(ev.error), ev.detail);
  std::string body;
  appendResult(body, *flag, ev);
  return HttpServer::json(req, http::status::ok, std::move(body));
}

Response OfrepService::evaluateAll(const Request& req) const {
  if (!authorized(req)) return errorResponse(req, http::status::unauthorized, "", "GENERAL", "missing or invalid credentials");
  ParsedContext ctx;
  parseContext(req, ctx);
  if (!ctx.error_code.empty()) return errorResponse(req, http::status::bad_request, "", ctx.error_code, ctx.error_details);
  auto set = flags_();
  // The ETag changes with the flag definitions and the context; a client holding the same one
  // already has these results (timestamp-dependent targeting aside).
  char etag[48];
  std::snprintf(etag, sizeof etag, "\"%016llx-%08x\"", static_cast<unsigned long long>(set ? set->fingerprint() : 0),
                flags::murmur3_x86_32(ctx.canonical));
  auto inm = req.find(http::field::if_none_match);
  if (inm != req.end() && inm->value().find(etag) != std::string_view::npos) {
    Response res{http::status::not_modified, req.version()};
    res.set(http::field::etag, etag);
    return res;
  }
  std::string body = "{\"flags\":[";
  bool first = true;
  if (set) {
    flags::EvalScratch scratch;
    const std::int64_t now = std::time(nullptr);
    for (const auto& flag : set->flags()) {
      flags::Evaluation ev = set->evaluate(flag, ctx.value, scratch, now);
      if (!ev.variant) continue;  // as flagd: disabled flags and flags without a value are left out
      if (!first) body += ',';
      first = false;
      appendResult(body, flag, ev);
    }
  }
  body += "]}";
  auto res = HttpServer::json(req, http::status::ok, std::move(body));
  res.set(http::field::etag, etag);
  return res;
}

}  // namespace fledge::admin
