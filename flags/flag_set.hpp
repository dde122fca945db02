#pragma once
// A compiled, immutable set of flags in flagd's flag-definition format
// (https://flagd.dev/schema/v0/flags.json) and their evaluation with flagd's semantics.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flags/jsonlogic.hpp"
#include "flags/value.hpp"

namespace fledge::flags {

enum class Reason : std::uint8_t { kStatic, kDefault, kTargetingMatch, kDisabled, kError };
enum class ErrorCode : std::uint8_t {
  kNone, kFlagNotFound, kParseError, kTypeMismatch, kTargetingKeyMissing, kInvalidContext, kGeneral
};
std::string_view reasonName(Reason r);
std::string_view errorCodeName(ErrorCode e);

enum class VariantType : std::uint8_t { kBoolean, kString, kNumber, kObject };

struct Variant {
  std::string name;
  Value value;
  std::string json;  // the value as JSON text, ready for responses
};

struct Flag {
  std::string key;
  bool enabled = true;
  VariantType type = VariantType::kBoolean;
  std::vector<Variant> variants;
  int default_variant = -1;  // index into variants; -1 when null or absent
  bool has_targeting = false;
  Node targeting;
  // Non-empty for a flag loaded the flagd way whose targeting could not be compiled: it is kept
  // and every evaluation of it answers PARSE_ERROR with this text.
  std::string parse_error;
  std::string metadata_json;  // flag-set metadata overlaid with the flag's own, as a JSON object
  // Constant strings in the targeting that name a variant, by address: a rule returning one of
  // them resolves its variant with a pointer compare.
  std::vector<std::pair<const char*, int>> literal_variants;

  const Variant* findVariant(std::string_view name) const {
    for (const auto& v : variants)
      if (shortEquals(v.name, name)) return &v;
    return nullptr;
  }
};

struct Evaluation {
  Reason reason = Reason::kError;
  ErrorCode error = ErrorCode::kNone;
  const Variant* variant = nullptr;  // nullptr: no value (the client uses its code default)
  std::string_view detail;           // for errors; static text or a view into the flag
};

// Scratch reused across evaluations on one thread; its arena is reset per evaluation.
struct EvalScratch {
  Arena arena;
  char number_buf[32];
};

// Names that Fledge writes into headers, metric labels and URL paths — flag keys and the
// config's route, cluster, arm and listener names — are 1-128 characters of [A-Za-z0-9._-].
bool isValidName(std::string_view s);
inline constexpr const char* kNameRule = "must be 1-128 characters of [A-Za-z0-9._-]";
// Variant names: 1-128 bytes without control characters. Where one goes into a header it is
// percent-encoded (proxy/headers.hpp), so ',', '=' and spaces cannot forge anything.
bool isValidVariantName(std::string_view s);
inline constexpr const char* kVariantNameRule = "variant names must be 1-128 bytes without control characters";
// `s` with control characters and non-ASCII bytes as \xNN, for error messages about bad names.
std::string printable(std::string_view s);

struct FlagSetError {
  std::string path;
  std::string message;
  std::string str() const { return path.empty() ? message : path + ": " + message; }
};

// One flagd document to load: its JSON text and a name for error messages: a file name
// ("shop.json: flags.x.state: ..."), a path prefix ending in '.' ("flags." gives
// "flags.flags.x.state: ..."), or "".
struct FlagSource {
  std::string name;
  std::string json;
};

class FlagSet {
 public:
  FlagSet() = default;
  FlagSet(const FlagSet&) = delete;
  FlagSet& operator=(const FlagSet&) = delete;

  // How targeting mistakes are taken. kStrict (admin API writes): any one refuses the document.
  // kFlagd (flag files, as flagd loads them): a flag whose targeting cannot be compiled is kept
  // and answers PARSE_ERROR, an operator flagd evaluates to null (starts_with, ends_with, sem_ver
  // with a wrong argument count) is null; each is a warning. Structural errors (bad JSON, state,
  // variants, defaultVariant, unknown fields) refuse the document in both.
  enum class Strictness { kStrict, kFlagd };

  // Parses and compiles every source; a flag key defined twice is an error. On any error,
  // returns nullptr and fills `errors` (nothing is half-loaded). Warnings go to `warnings`.
  static std::shared_ptr<const FlagSet> load(const std::vector<FlagSource>& sources, std::vector<FlagSetError>& errors,
                                             Strictness strictness = Strictness::kStrict,
                                             std::vector<FlagSetError>* warnings = nullptr);

  const Flag* find(std::string_view key) const;
  const std::vector<Flag>& flags() const { return flags_; }  // sorted by key
  // Flags kept with a parse_error (kFlagd loading).
  std::size_t parseErrorCount() const { return parse_errors_; }
  // Changes whenever the definitions do (FNV-1a of the sources), for ETags.
  std::uint64_t fingerprint() const { return fingerprint_; }

  // Evaluates `flag` against `context` (a JSON object value). `now_seconds` is $flagd.timestamp.
  Evaluation evaluate(const Flag& flag, const Value& context, EvalScratch& scratch, std::int64_t now_seconds) const;

 private:
  ConstPool pool_;
  std::vector<Flag> flags_;
  std::uint64_t fingerprint_ = 0;
  std::size_t parse_errors_ = 0;
};

}  // namespace fledge::flags
