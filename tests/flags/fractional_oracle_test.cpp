// Differential test against @openfeature/flagd-core (npm): thousands of random `fractional`
// flags and targeting keys must resolve to the same variant in Fledge and in flagd-core.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "flags/flag_set.hpp"
#include "flags/json.hpp"

namespace fledge::flags {
namespace {

std::string runOracle(int cases) {
  std::string cmd = "node " + std::string(FLEDGE_SOURCE_DIR) + "/tests/node/fractional_oracle.mjs --cases " +
                    std::to_string(cases) + " --seed 7";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  if (!pipe) return out;
  char buf[65536];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  return out;
}

TEST(FractionalOracle, MatchesFlagdCoreBitForBit) {
  const std::string lines = runOracle(5000);
  ASSERT_FALSE(lines.empty()) << "node tests/node/fractional_oracle.mjs produced nothing (scripts/setup installs it)";
  simdjson::dom::parser parser;
  std::size_t pos = 0, cases = 0, mismatches = 0, matched_targeting = 0;
  while (pos < lines.size()) {
    std::size_t end = lines.find('\n', pos);
    if (end == std::string::npos) end = lines.size();
    std::string line = lines.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    simdjson::dom::element c;
    ASSERT_EQ(parser.parse(line).get(c), simdjson::SUCCESS) << line;
    std::string flag_key(c["flagKey"].get_string().value());
    std::string targeting_key(c["targetingKey"].get_string().value());
    std::string targeting = simdjson::minify(c["targeting"].value());
    simdjson::dom::array entries = c["targeting"]["fractional"].get_array().value();
    std::string variants;
    std::size_t buckets = 0;
    for (auto e : entries)
      if (e.is_array()) ++buckets;
    for (std::size_t i = 0; i < buckets; ++i)
      variants += (i ? ",\"v" : "\"v") + std::to_string(i) + "\":\"v" + std::to_string(i) + "\"";
    std::string key_json = simdjson::minify(c["flagKey"].value());
    std::string doc = "{\"flags\":{" + key_json + ":{\"state\":\"ENABLED\",\"variants\":{" + variants +
                      "},\"defaultVariant\":\"v0\",\"targeting\":" + targeting + "}}}";
    std::vector<FlagSetError> errors;
    auto set = FlagSet::load({{"", doc}}, errors);
    ASSERT_TRUE(set) << doc << "\n" << (errors.empty() ? "" : errors[0].str());

    std::string ctx_json = "{\"targetingKey\":" + simdjson::minify(c["targetingKey"].value()) + "}";
    simdjson::dom::parser ctx_parser;
    Arena arena;
    Value ctx;
    ASSERT_TRUE(fromDom(ctx_parser.parse(ctx_json).value(), arena, ctx));
    EvalScratch scratch;
    Evaluation ev = set->evaluate(*set->find(flag_key), ctx, scratch, 0);

    std::string want_variant = c["variant"].is_null() ? "" : std::string(c["variant"].get_string().value());
    std::string want_reason(c["reason"].get_string().value());
    std::string got_variant = ev.variant ? ev.variant->name : "";
    std::string got_reason(reasonName(ev.reason));
    ++cases;
    if (want_reason == "TARGETING_MATCH") ++matched_targeting;
    if (got_variant != want_variant || got_reason != want_reason) {
      if (++mismatches <= 10)
        ADD_FAILURE() << "flag " << flag_key << " key \"" << targeting_key << "\" " << targeting << ": fledge "
                      << got_variant << "/" << got_reason << ", flagd-core " << want_variant << "/" << want_reason;
    }
  }
  EXPECT_EQ(cases, 5000u);
  EXPECT_GT(matched_targeting, 4000u);  // the bulk of cases exercise the hash, not the fallbacks
  EXPECT_EQ(mismatches, 0u);
  std::printf("fractional oracle: %zu cases, %zu mismatches\n", cases, mismatches);
}

}  // namespace
}  // namespace fledge::flags
