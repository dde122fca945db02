// admin/ofrep.cpp: OFREP evaluation requests through the handlers the HTTP server calls
// (OfrepService::evaluateOne / evaluateAll): the body's {"context": {...}} is parsed and every
// answer must be JSON of the OFREP shape naming real flags and variants; the bulk answer, the
// single-flag answers and the ETag must agree with each other.
//
// Input: the request target on the first line ("/ofrep/v1/evaluate/flags[/KEY]"), then the body.
#include <simdjson.h>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "admin/ofrep.hpp"
#include "flags/flag_set.hpp"
#include "tests/fuzz/fuzz.hpp"

namespace {
namespace http = boost::beast::http;
using fledge::admin::OfrepService;
using fledge::admin::Request;
using fledge::admin::Response;
using fledge::fuzz::printable;

constexpr std::string_view kSinglePrefix = "/ofrep/v1/evaluate/flags/";
constexpr std::size_t kMaxInput = 64 * 1024;

// tests/node/ofrep_flags.json and the demo's flags, in one set.
constexpr const char* kFlags = R"({
  "$evaluators": {"is_staff": {"ends_with": [{"var": "email"}, "@example.com"]}},
  "metadata": {"flagSetId": "fuzz", "version": 2},
  "flags": {
    "bool-flag": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "targeting": {"if": [{"==": [{"var": "plan"}, "pro"]}, "on", null]}},
    "string-flag": {"state": "ENABLED", "variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red"},
    "number-flag": {"state": "ENABLED", "variants": {"small": 1, "big": 1000.5}, "defaultVariant": "small",
                    "targeting": {"if": [{"ends_with": [{"var": "email"}, "@corp.example"]}, "big", null]}},
    "object-flag": {"state": "ENABLED", "variants": {"a": {"theme": "dark", "limits": {"n": 3}}, "b": {"theme": "light"}},
                    "defaultVariant": "b", "targeting": {"fractional": [["a", 50], ["b", 50]]}, "metadata": {"owner": "ui"}},
    "disabled-flag": {"state": "DISABLED", "variants": {"on": true, "off": false}, "defaultVariant": "on"},
    "no-default": {"state": "ENABLED", "variants": {"x": "x", "y": "y"}, "defaultVariant": null,
                   "targeting": {"if": [{"sem_ver": [{"var": "version"}, ">=", "2.0.0"]}, "x", {"var": "pick"}]}},
    "new-checkout": {"state": "ENABLED", "variants": {"on": true, "off": false}, "defaultVariant": "off",
                     "targeting": {"if": [{"or": [{"in": [{"var": "plan"}, ["pro", "enterprise"]]}, {"$ref": "is_staff"}]}, "on", "off"]}}
  }
})";

std::shared_ptr<const fledge::flags::FlagSet> flagSet() {
  static const auto set = [] {
    std::vector<fledge::flags::FlagSetError> errors;
    auto s = fledge::flags::FlagSet::load({{"ofrep.json", kFlags}}, errors);
    FUZZ_CHECK(s != nullptr, errors.empty() ? "" : errors.front().str());
    return s;
  }();
  return set;
}

struct Parsed {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
};

// The answer's body as JSON; checks the shape every OFREP answer has.
void parseAnswer(const Response& res, Parsed& p, const std::string& what) {
  const std::string w = what + "\nanswer " + std::to_string(res.result_int()) + ": " + printable(res.body(), 2000);
  FUZZ_CHECK(res[http::field::content_type] == "application/json", w);
  FUZZ_CHECK(!p.parser.parse(res.body()).get(p.root) && p.root.is_object(), w);
  if (res.result() != http::status::ok) {
    std::string_view code, details;
    FUZZ_CHECK(!p.root["errorCode"].get_string().get(code) && !p.root["errorDetails"].get_string().get(details), w);
    const bool known = code == "PARSE_ERROR" || code == "INVALID_CONTEXT" || code == "GENERAL" || code == "FLAG_NOT_FOUND" ||
                       code == "TYPE_MISMATCH" || code == "TARGETING_KEY_MISSING";
    FUZZ_CHECK(known && !details.empty(), w);
  }
}

// {"key","value","reason","variant","metadata"} for one flag; returns the variant ("" for none).
std::string checkResult(simdjson::dom::element r, const fledge::flags::FlagSet& set, const std::string& w) {
  std::string_view key, reason, variant;
  FUZZ_CHECK(!r["key"].get_string().get(key) && !r["reason"].get_string().get(reason), w);
  const fledge::flags::Flag* flag = set.find(key);
  FUZZ_CHECK(flag != nullptr, w + "\nunknown flag " + std::string(key));
  FUZZ_CHECK(reason == "STATIC" || reason == "DEFAULT" || reason == "TARGETING_MATCH" || reason == "DISABLED", w);
  FUZZ_CHECK((reason == "DISABLED") == !flag->enabled, w);
  FUZZ_CHECK(r["metadata"].is_object(), w);
  simdjson::dom::element value;
  const bool has_value = !r["value"].get(value);
  if (r["variant"].get_string().get(variant)) {
    FUZZ_CHECK(!has_value, w);
    return {};
  }
  FUZZ_CHECK(flag->enabled, w);
  const fledge::flags::Variant* v = flag->findVariant(variant);
  FUZZ_CHECK(v != nullptr && has_value, w + "\nvariant " + std::string(variant) + " is not one of " + flag->key + "'s");
  FUZZ_CHECK(simdjson::minify(value) == v->json, w);
  return std::string(variant);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > kMaxInput) return -1;
  fledge::fuzz::Bytes in(data, size);
  const std::string_view target = in.until("\n");
  const std::string_view body = in.rest();
  const auto set = flagSet();
  static const OfrepService service([] { return flagSet(); }, {});

  Request req{http::verb::post, target, 11};
  req.set(http::field::content_type, "application/json");
  req.body() = std::string(body);
  req.prepare_payload();
  const std::string what = "target \"" + printable(target) + "\" body \"" + printable(body, 1000) + "\"";

  if (target.starts_with(kSinglePrefix)) {
    // As OfrepService::install routes it: the rest of the path is the (percent-encoded) key.
    const std::string_view path = target.substr(0, target.find('?'));
    const Response res = service.evaluateOne(req, path.substr(kSinglePrefix.size()));
    Parsed p;
    parseAnswer(res, p, what);
    const unsigned status = res.result_int();
    FUZZ_CHECK(status == 200 || status == 400 || status == 404, what);
    if (status == 200) checkResult(p.root, *set, what + "\n" + res.body());
    return 0;
  }

  const Response all = service.evaluateAll(req);
  Parsed p;
  parseAnswer(all, p, what);
  const unsigned status = all.result_int();
  FUZZ_CHECK(status == 200 || status == 400, what + "\nstatus " + std::to_string(status));
  if (status != 200) {
    // The single-flag handler parses the same body the same way.
    Request one = req;
    one.target(std::string(kSinglePrefix) + "bool-flag");
    const Response r = service.evaluateOne(one, "bool-flag");
    FUZZ_CHECK(r.result_int() == status, what + "\nsingle: " + r.body());
    return 0;
  }
  const std::string etag(all[http::field::etag]);
  FUZZ_CHECK(etag.size() > 2 && etag.front() == '"' && etag.back() == '"', what);

  // Every enabled flag with a value is listed once, with the answer its own endpoint gives.
  simdjson::dom::array flags;
  FUZZ_CHECK(!p.root["flags"].get_array().get(flags), what);
  std::map<std::string, std::string> listed;
  for (auto r : flags) {
    std::string_view key;
    FUZZ_CHECK(!r["key"].get_string().get(key), what);
    const std::string variant = checkResult(r, *set, what + "\n" + all.body());
    FUZZ_CHECK(!variant.empty(), what);  // flags without a value are left out
    FUZZ_CHECK(listed.emplace(std::string(key), variant).second, what + "\nlisted twice: " + std::string(key));
  }
  for (const auto& flag : set->flags()) {
    Request one = req;
    one.target(std::string(kSinglePrefix) + flag.key);
    const Response r = service.evaluateOne(one, flag.key);
    Parsed q;
    parseAnswer(r, q, what + "\nsingle " + flag.key);
    auto it = listed.find(flag.key);
    if (r.result_int() != 200) {
      FUZZ_CHECK(it == listed.end(), what + "\n" + flag.key + " listed but answers " + r.body());
      continue;
    }
    const std::string variant = checkResult(q.root, *set, what + "\n" + r.body());
    FUZZ_CHECK(variant.empty() ? it == listed.end() : (it != listed.end() && it->second == variant),
               what + "\n" + flag.key + " answers " + r.body() + " but the bulk answer says " + all.body());
  }

  // The same context again: the same ETag, and If-None-Match gets 304.
  Request again = req;
  again.set(http::field::if_none_match, etag);
  const Response cached = service.evaluateAll(again);
  FUZZ_CHECK(cached.result() == http::status::not_modified && cached[http::field::etag] == etag,
             what + "\nIf-None-Match " + etag + " answered " + std::to_string(cached.result_int()));
  return 0;
}
