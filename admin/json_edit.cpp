#include "admin/json_edit.hpp"

#include <boost/json/parse.hpp>

#include <simdjson.h>

#include "flags/value.hpp"

namespace fledge::admin {

std::string jsonQuote(std::string_view s) {
  std::string out;
  flags::appendJson(out, flags::Value::string(s));
  return out;
}

std::optional<std::vector<std::pair<std::string, std::string>>> members(std::string_view object) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  simdjson::dom::object obj;
  if (parser.parse(object.data(), object.size()).get(e) || e.get_object().get(obj)) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  for (auto field : obj) out.emplace_back(std::string(field.key), simdjson::minify(field.value));
  return out;
}

std::optional<std::vector<std::string>> elements(std::string_view array) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  simdjson::dom::array arr;
  if (parser.parse(array.data(), array.size()).get(e) || e.get_array().get(arr)) return std::nullopt;
  std::vector<std::string> out;
  for (auto item : arr) out.push_back(simdjson::minify(item));
  return out;
}

namespace {
std::string objectOf(const std::vector<std::pair<std::string, std::string>>& m) {
  std::string out = "{";
  for (std::size_t i = 0; i < m.size(); ++i) {
    if (i) out += ',';
    out += jsonQuote(m[i].first);
    out += ':';
    out += m[i].second;
  }
  return out + "}";
}
}  // namespace

std::optional<std::string> setMember(std::string_view object, std::string_view key, std::string_view value) {
  auto m = members(object);
  if (!m) return std::nullopt;
  bool found = false;
  for (auto& [k, v] : *m)
    if (k == key) v = std::string(value), found = true;
  if (!found) m->emplace_back(std::string(key), std::string(value));
  return objectOf(*m);
}

std::optional<std::string> removeMember(std::string_view object, std::string_view key) {
  auto m = members(object);
  if (!m) return std::nullopt;
  std::erase_if(*m, [&](const auto& kv) { return kv.first == key; });
  return objectOf(*m);
}

std::optional<std::string> getMember(std::string_view object, std::string_view key) {
  auto m = members(object);
  if (!m) return std::nullopt;
  for (auto& [k, v] : *m)
    if (k == key) return v;
  return std::nullopt;
}

std::string checkJson(std::string_view text, std::string_view kind) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  if (auto err = parser.parse(text.data(), text.size()).get(e)) return std::string("invalid JSON: ") + simdjson::error_message(err);
  if (kind == "object" && !e.is_object()) return "must be a JSON object";
  if (kind == "array" && !e.is_array()) return "must be a JSON array";
  return {};
}

std::optional<boost::json::object> parseObject(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string stringMember(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

}  // namespace fledge::admin
