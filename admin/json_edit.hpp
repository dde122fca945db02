#pragma once
// Small edits of JSON documents held as text (the admin API's resources), through simdjson, and
// the two helpers that documents built with Boost.JSON share.
#include <boost/json/object.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fledge::admin {

std::string jsonQuote(std::string_view s);
// `object` with member `key` set to the JSON text `value` (replaced in place, or appended).
std::optional<std::string> setMember(std::string_view object, std::string_view key, std::string_view value);
std::optional<std::string> removeMember(std::string_view object, std::string_view key);
// The member's JSON text; nullopt if absent or `object` is not an object.
std::optional<std::string> getMember(std::string_view object, std::string_view key);
// Members of an object as (key, JSON text), in order; nullopt if not an object.
std::optional<std::vector<std::pair<std::string, std::string>>> members(std::string_view object);
// Elements of an array as JSON texts; nullopt if not an array.
std::optional<std::vector<std::string>> elements(std::string_view array);
// Parses `text`; empty `error` when it is JSON of the wanted kind ("object", "array" or "any").
std::string checkJson(std::string_view text, std::string_view kind);

// `text` parsed as a JSON object; nullopt if it is not one.
std::optional<boost::json::object> parseObject(std::string_view text);
// The string member `key` of `o`; empty if absent or not a string.
std::string stringMember(const boost::json::object& o, std::string_view key);

}  // namespace fledge::admin
