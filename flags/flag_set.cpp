#include "flags/flag_set.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "flags/json.hpp"

namespace fledge::flags {

bool isValidName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.';
  });
}

bool isValidVariantName(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  return std::none_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(std::min<std::size_t>(s.size(), 160));
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (out.size() >= 160) {
      out += "...";
      break;
    }
    auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x20 || u >= 0x7f || u == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += static_cast<char>(u);
    }
  }
  return out;
}

std::string_view reasonName(Reason r) {
  switch (r) {
    case Reason::kStatic: return "STATIC";
    case Reason::kDefault: return "DEFAULT";
    case Reason::kTargetingMatch: return "TARGETING_MATCH";
    case Reason::kDisabled: return "DISABLED";
    case Reason::kError: return "ERROR";
  }
  return "ERROR";
}

std::string_view errorCodeName(ErrorCode e) {
  switch (e) {
    case ErrorCode::kNone: return "";
    case ErrorCode::kFlagNotFound: return "FLAG_NOT_FOUND";
    case ErrorCode::kParseError: return "PARSE_ERROR";
    case ErrorCode::kTypeMismatch: return "TYPE_MISMATCH";
    case ErrorCode::kTargetingKeyMissing: return "TARGETING_KEY_MISSING";
    case ErrorCode::kInvalidContext: return "INVALID_CONTEXT";
    case ErrorCode::kGeneral: return "GENERAL";
  }
  return "GENERAL";
}

namespace {

const char* typeName(Type t) {
  switch (t) {
    case Type::kNull: return "null";
    case Type::kBool: return "boolean";
    case Type::kNumber: return "number";
    case Type::kString: return "string";
    case Type::kArray: return "array";
    case Type::kObject: return "object";
  }
  return "value";
}

std::uint64_t fnv1a(std::uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Metadata values are strings, numbers or booleans (flagd schema).
bool checkMetadata(const Value& m, const std::string& path, std::vector<FlagSetError>& errors) {
  if (!m.isObject()) {
    errors.push_back({path, std::string("must be an object, got ") + typeName(m.type)});
    return false;
  }
  bool ok = true;
  for (std::uint32_t i = 0; i < m.size; ++i) {
    Type t = m.obj[i].value.type;
    if (t != Type::kString && t != Type::kNumber && t != Type::kBool) {
      errors.push_back({path + "." + std::string(m.obj[i].key), "metadata values must be strings, numbers or booleans"});
      ok = false;
    }
  }
  return ok;
}

// `base` members overlaid with `over` members, as JSON.
std::string mergeMetadata(const Value* base, const Value* over) {
  std::string out = "{";
  bool first = true;
  auto add = [&](const Member& m) {
    if (!first) out += ',';
    first = false;
    appendJson(out, Value::string(m.key));
    out += ':';
    appendJson(out, m.value);
  };
  if (base)
    for (std::uint32_t i = 0; i < base->size; ++i)
      if (!over || !over->get(base->obj[i].key)) add(base->obj[i]);
  if (over)
    for (std::uint32_t i = 0; i < over->size; ++i) add(over->obj[i]);
  return out + "}";
}

void indexLiteralVariants(const Node& n, Flag& flag) {
  auto add = [&](const Value& v) {
    if (!v.isString()) return;
    for (std::size_t i = 0; i < flag.variants.size(); ++i)
      if (flag.variants[i].name == v.sv()) flag.literal_variants.emplace_back(v.str, static_cast<int>(i));
  };
  if (n.op == Op::kLiteral) add(n.literal);
  if (n.fractional)
    for (const auto& v : n.fractional->variants) add(v);
  for (const auto& c : n.args) indexLiteralVariants(c, flag);
}

void loadFlag(std::string_view key, const Value& def, const Value* set_metadata, const Evaluators& evaluators,
              ConstPool& pool, const std::string& path, FlagSet::Strictness strictness, std::vector<Flag>& out,
              std::vector<FlagSetError>& errors, std::vector<FlagSetError>* warnings) {
  std::size_t before = errors.size();
  if (!isValidName(key)) errors.push_back({path, std::string("flag key ") + kNameRule});
  if (!def.isObject()) {
    errors.push_back({path, std::string("must be an object, got ") + typeName(def.type)});
    return;
  }
  Flag flag;
  flag.key.assign(key);
  const Value* state = nullptr;
  const Value* variants = nullptr;
  const Value* default_variant = nullptr;
  const Value* targeting = nullptr;
  const Value* metadata = nullptr;
  for (std::uint32_t i = 0; i < def.size; ++i) {
    std::string_view k = def.obj[i].key;
    const Value* v = &def.obj[i].value;
    if (k == "state") state = v;
    else if (k == "variants") variants = v;
    else if (k == "defaultVariant") default_variant = v;
    else if (k == "targeting") targeting = v;
    else if (k == "metadata") metadata = v;
    else errors.push_back({path + "." + std::string(k), "unknown field"});
  }
  if (!state) {
    errors.push_back({path + ".state", "is required (\"ENABLED\" or \"DISABLED\")"});
  } else if (!state->isString() || (state->sv() != "ENABLED" && state->sv() != "DISABLED")) {
    errors.push_back({path + ".state", "must be \"ENABLED\" or \"DISABLED\""});
  } else {
    flag.enabled = state->sv() == "ENABLED";
  }
  if (!variants) {
    errors.push_back({path + ".variants", "is required"});
  } else if (!variants->isObject() || variants->size == 0) {
    errors.push_back({path + ".variants", "must be an object with at least one variant"});
  } else {
    Type first = variants->obj[0].value.type;
    for (std::uint32_t i = 0; i < variants->size; ++i) {
      const Member& m = variants->obj[i];
      std::string vp = path + ".variants." + printable(m.key);
      if (!isValidVariantName(m.key)) errors.push_back({vp, kVariantNameRule});
      if (m.value.type != first) {
        errors.push_back({vp, std::string("must be a ") + typeName(first) + " like the other variants, got " +
                                  typeName(m.value.type)});
      } else if (m.value.type == Type::kNull || m.value.type == Type::kArray) {
        errors.push_back({vp, "variants must be all booleans, all strings, all numbers or all objects"});
      }
      if (flag.findVariant(m.key)) errors.push_back({vp, "duplicate variant"});
      Variant var{std::string(m.key), m.value, {}};
      appendJson(var.json, m.value);
      flag.variants.push_back(std::move(var));
    }
    flag.type = first == Type::kBool     ? VariantType::kBoolean
                : first == Type::kString ? VariantType::kString
                : first == Type::kNumber ? VariantType::kNumber
                                         : VariantType::kObject;
  }
  if (default_variant && !default_variant->isNull()) {
    if (!default_variant->isString()) {
      errors.push_back({path + ".defaultVariant", "must be a variant name or null"});
    } else {
      for (std::size_t i = 0; i < flag.variants.size(); ++i)
        if (flag.variants[i].name == default_variant->sv()) flag.default_variant = static_cast<int>(i);
      if (flag.default_variant < 0 && variants && variants->isObject())
        errors.push_back({path + ".defaultVariant", "\"" + printable(default_variant->sv()) + "\" is not one of the variants"});
    }
  }
  if (metadata) checkMetadata(*metadata, path + ".metadata", errors);
  if (targeting) {
    if (!targeting->isObject()) {
      errors.push_back({path + ".targeting", "must be a JsonLogic object"});
    } else if (targeting->size != 0) {  // {} means no targeting
      std::vector<LogicError> logic_errors;
      const bool compiled = compileLogic(*targeting, evaluators, pool, path + ".targeting", flag.targeting, logic_errors);
      if (strictness == FlagSet::Strictness::kStrict) {
        for (auto& e : logic_errors) errors.push_back({std::move(e.path), std::move(e.message)});
      } else {
        for (const auto& e : logic_errors) {
          if (!compiled && !e.yields_null && flag.parse_error.empty()) flag.parse_error = e.path + ": " + e.message;
          if (warnings)
            warnings->push_back({e.path, e.message + (compiled || e.yields_null ? "" : "; the flag answers PARSE_ERROR")});
        }
      }
      if (compiled) {
        flag.has_targeting = true;
        indexLiteralVariants(flag.targeting, flag);
      } else {
        flag.targeting = Node();
      }
    }
  }
  flag.metadata_json = mergeMetadata(set_metadata, metadata && metadata->isObject() ? metadata : nullptr);
  if (errors.size() == before) out.push_back(std::move(flag));
}

}  // namespace

std::shared_ptr<const FlagSet> FlagSet::load(const std::vector<FlagSource>& sources, std::vector<FlagSetError>& errors,
                                             Strictness strictness, std::vector<FlagSetError>* warnings) {
  auto set = std::make_shared<FlagSet>();
  std::size_t before = errors.size();
  std::uint64_t fp = 0xcbf29ce484222325ull;
  simdjson::dom::parser parser;
  for (const auto& src : sources) {
    fp = fnv1a(fnv1a(fp, src.name), src.json);
    // A name ending in '.' is a path prefix ("flags." for a document inside Fledge's config);
    // any other name is a file name, followed by ": ".
    const bool is_path = !src.name.empty() && src.name.back() == '.';
    const std::string prefix = src.name.empty() || is_path ? src.name : src.name + ": ";
    const std::string whole = is_path ? src.name.substr(0, src.name.size() - 1) : src.name;
    simdjson::dom::element root;
    if (auto err = parser.parse(src.json).get(root); err) {
      errors.push_back({whole, std::string("invalid JSON: ") + simdjson::error_message(err)});
      continue;
    }
    Value doc;
    if (!fromDom(root, set->pool_.arena(), doc, 256)) {
      errors.push_back({whole, "document nests too deeply"});
      continue;
    }
    if (!doc.isObject()) {
      errors.push_back({whole, "a flagd flag definition must be a JSON object"});
      continue;
    }
    const Value* flags = nullptr;
    const Value* evaluators_v = nullptr;
    const Value* set_metadata = nullptr;
    for (std::uint32_t i = 0; i < doc.size; ++i) {
      std::string_view k = doc.obj[i].key;
      if (k == "flags") flags = &doc.obj[i].value;
      else if (k == "$evaluators") evaluators_v = &doc.obj[i].value;
      else if (k == "metadata") set_metadata = &doc.obj[i].value;
      else if (k != "$schema") errors.push_back({prefix + std::string(k), "unknown field"});
    }
    if (set_metadata && !checkMetadata(*set_metadata, prefix + "metadata", errors)) set_metadata = nullptr;
    Evaluators evaluators;
    if (evaluators_v) {
      if (!evaluators_v->isObject()) errors.push_back({prefix + "$evaluators", "must be an object"});
      else
        for (std::uint32_t i = 0; i < evaluators_v->size; ++i)
          evaluators.items.emplace_back(std::string(evaluators_v->obj[i].key), evaluators_v->obj[i].value);
    }
    if (!flags) {
      errors.push_back({prefix + "flags", "is required"});
      continue;
    }
    if (!flags->isObject()) {
      errors.push_back({prefix + "flags", "must be an object"});
      continue;
    }
    for (std::uint32_t i = 0; i < flags->size; ++i) {
      std::string_view key = flags->obj[i].key;
      std::string path = prefix + "flags." + printable(key);
      if (std::any_of(set->flags_.begin(), set->flags_.end(), [&](const Flag& f) { return f.key == key; })) {
        errors.push_back({path, "flag \"" + printable(key) + "\" is defined more than once"});
        continue;
      }
      loadFlag(key, flags->obj[i].value, set_metadata, evaluators, set->pool_, path, strictness, set->flags_, errors, warnings);
    }
  }
  if (errors.size() != before) return nullptr;
  std::sort(set->flags_.begin(), set->flags_.end(), [](const Flag& a, const Flag& b) { return a.key < b.key; });
  set->parse_errors_ = static_cast<std::size_t>(
      std::count_if(set->flags_.begin(), set->flags_.end(), [](const Flag& f) { return !f.parse_error.empty(); }));
  set->fingerprint_ = fp;
  return set;
}

const Flag* FlagSet::find(std::string_view key) const {
  auto it = std::lower_bound(flags_.begin(), flags_.end(), key, [](const Flag& f, std::string_view k) { return f.key < k; });
  return it != flags_.end() && it->key == key ? &*it : nullptr;
}

namespace {

// A targeting result that is not a known constant: flagd uses String(result) as the variant
// name (true -> "true", 1 -> "1"). Out of line: it may format into a string.
[[gnu::noinline]] const Variant* variantByValue(const Flag& flag, const Value& result) {
  std::string tmp;
  std::string_view name;
  switch (result.type) {
    case Type::kString: name = result.sv(); break;
    case Type::kBool: name = result.b ? "true" : "false"; break;
    case Type::kNumber: appendJsNumber(tmp, result.num), name = tmp; break;
    default: appendJsString(tmp, result), name = tmp;
  }
  return flag.findVariant(name);
}

}  // namespace

Evaluation FlagSet::evaluate(const Flag& flag, const Value& context, EvalScratch& scratch, std::int64_t now) const {
  Evaluation r;
  if (!flag.enabled) {
    r.reason = Reason::kDisabled;
    return r;
  }
  if (!flag.parse_error.empty()) {  // flagd: the targeting cannot be evaluated
    r.reason = Reason::kError;
    r.error = ErrorCode::kParseError;
    r.detail = flag.parse_error;
    return r;
  }
  const Variant* chosen = flag.default_variant >= 0 ? &flag.variants[static_cast<std::size_t>(flag.default_variant)] : nullptr;
  r.reason = Reason::kStatic;
  if (flag.has_targeting) {
    if (scratch.arena.used()) scratch.arena.reset();
    EvalState st;
    st.root = &context;
    st.flag_key = flag.key;
    st.timestamp = now;
    st.arena = &scratch.arena;
    const Value result = flags::evaluate(flag.targeting, st);
    if (result.isNull()) {
      r.reason = Reason::kDefault;
    } else {
      r.reason = Reason::kTargetingMatch;
      const Variant* hit = nullptr;
      if (result.isString())
        for (const auto& [ptr, idx] : flag.literal_variants)
          if (ptr == result.str && flag.variants[static_cast<std::size_t>(idx)].name.size() == result.size) {
            hit = &flag.variants[static_cast<std::size_t>(idx)];
            break;
          }
      if (!hit) hit = variantByValue(flag, result);
      if (!hit) {
        r.reason = Reason::kError;
        r.error = ErrorCode::kGeneral;
        r.detail = "targeting returned a variant that is not defined";
        return r;
      }
      chosen = hit;
    }
  }
  if (!chosen) r.reason = Reason::kDefault;  // defaultVariant null: the client's code default applies
  r.variant = chosen;
  return r;
}

}  // namespace fledge::flags
