#pragma once
// simdjson DOM -> flags::Value, copying strings into an arena.
#include <simdjson.h>

#include "flags/value.hpp"

namespace fledge::flags {

// Converts a parsed element; `depth_limit` guards against hostile nesting.
bool fromDom(simdjson::dom::element e, Arena& arena, Value& out, int depth_limit = 64);

}  // namespace fledge::flags
