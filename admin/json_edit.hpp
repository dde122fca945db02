#pragma once
// Small edits of JSON documents held as text (the admin API's resources), through simdjson.
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

}  // namespace fledge::admin
