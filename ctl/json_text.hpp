#pragma once
// JSON for `fledge ctl`, on Boost.JSON's object model: parse errors that say where, text whose
// numbers read the way people write them, and lookups by JSON pointer that tolerate absence.
#include <boost/json/value.hpp>
#include <boost/system/result.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace fledge::ctl {

namespace json = boost::json;

// The document in `text`; an error names the line and column ("line 3, column 7: syntax error").
boost::system::result<json::value, std::string> parseJson(std::string_view text);

// Compact JSON text, or indented by two spaces. Doubles in their shortest decimal form: 12.5, not
// Boost.JSON's 1.25E1 — a weight written that way would be stored verbatim in the route.
std::string toJson(const json::value& v, bool pretty = false);

// A JSON number as people write it (5, 12.5, 0.0001); other values as compact JSON.
std::string numberText(const json::value& v);

// The value at JSON pointer `ptr` ("/status/phase"), or null if absent.
const json::value* find(const json::value& v, std::string_view ptr);
// The string, number or integer there; nullopt if absent or of another kind.
std::optional<std::string> findString(const json::value& v, std::string_view ptr);
std::optional<double> findNumber(const json::value& v, std::string_view ptr);
std::optional<std::int64_t> findInt(const json::value& v, std::string_view ptr);

}  // namespace fledge::ctl
