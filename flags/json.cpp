#include "flags/json.hpp"

namespace fledge::flags {

bool fromDom(simdjson::dom::element e, Arena& arena, Value& out, int depth_limit) {
  if (depth_limit <= 0) return false;
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::NULL_VALUE: out = Value(); return true;
    case element_type::BOOL: out = Value::boolean(bool(e.get_bool().value_unsafe())); return true;
    case element_type::INT64: out = Value::number(static_cast<double>(e.get_int64().value_unsafe())); return true;
    case element_type::UINT64: out = Value::number(static_cast<double>(e.get_uint64().value_unsafe())); return true;
    case element_type::DOUBLE: out = Value::number(e.get_double().value_unsafe()); return true;
    case element_type::STRING: out = Value::string(arena.copy(e.get_string().value_unsafe())); return true;
    case element_type::ARRAY: {
      simdjson::dom::array arr = e.get_array().value_unsafe();
      std::size_t n = arr.size();
      Value* items = arena.allocArray<Value>(n);
      std::size_t i = 0;
      for (auto item : arr)
        if (!fromDom(item, arena, items[i++], depth_limit - 1)) return false;
      out = Value::array(items, n);
      return true;
    }
    case element_type::OBJECT: {
      simdjson::dom::object obj = e.get_object().value_unsafe();
      std::size_t n = obj.size();
      Member* m = arena.allocArray<Member>(n);
      std::size_t i = 0;
      for (auto field : obj) {
        m[i].key = arena.copy(field.key);
        if (!fromDom(field.value, arena, m[i].value, depth_limit - 1)) return false;
        ++i;
      }
      out = Value::object(m, n);
      return true;
    }
  }
  return false;
}

}  // namespace fledge::flags
