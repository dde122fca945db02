// admin/fleet.hpp's pure parts: fleet-wide totals from members' published cumulative counts, and
// the counts' JSON form in the member documents.
#include <gtest/gtest.h>

#include "admin/fleet.hpp"

namespace fledge::admin {
namespace {

ArmCounts counts(std::uint64_t ok, std::uint64_t errors, std::uint64_t fast = 0) {
  ArmCounts c;
  c.by_class[1] = ok;
  c.by_class[4] = errors;
  c.latency[0] = fast;
  return c;
}

TEST(FleetTotals, SumsEveryMemberButTheCaller) {
  FleetTotals t;
  const std::string k = armCountsKey("web", "canary");
  t.update("a", {{k, counts(10, 1, 4)}});
  t.update("b", {{k, counts(20, 2, 5)}});
  t.update("c", {{k, counts(30, 3, 6)}});
  const ArmCounts all_but_a = t.total(k, "a");
  EXPECT_EQ(all_but_a.by_class[1], 50u);
  EXPECT_EQ(all_but_a.by_class[4], 5u);
  EXPECT_EQ(all_but_a.latency[0], 11u);
  EXPECT_EQ(t.total(k, "").requests(), 66u);
  EXPECT_EQ(t.total(armCountsKey("web", "stable"), "").requests(), 0u);
}

TEST(FleetTotals, NeverGoBackwardsWhenAMemberRestartsOrLeaves) {
  FleetTotals t;
  const std::string k = variantCountsKey("checkout", "new");
  t.update("a", {{k, counts(100, 0)}});
  t.update("b", {{k, counts(50, 5)}});
  EXPECT_EQ(t.total(k, "").requests(), 155u);
  t.update("b", {{k, counts(3, 0)}});  // b restarted: its counts begin again
  EXPECT_EQ(t.total(k, "").requests(), 158u);
  t.update("b", {{k, counts(10, 1)}});
  EXPECT_EQ(t.total(k, "").requests(), 166u);
  t.update("a", {});  // a stopped publishing this key (or left): its last counts stay
  EXPECT_EQ(t.total(k, "").requests(), 166u);
}

TEST(FleetCounts, JsonRoundTripAndRefusals) {
  CountsByKey in{{armCountsKey("web", "canary"), counts(7, 2, 3)}, {variantCountsKey("f", "x, y=z"), counts(1, 0)}};
  CountsByKey out;
  ASSERT_TRUE(countsFromJson(countsToJson(in), out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[armCountsKey("web", "canary")].by_class, in[armCountsKey("web", "canary")].by_class);
  EXPECT_EQ(out[armCountsKey("web", "canary")].latency, in[armCountsKey("web", "canary")].latency);
  EXPECT_EQ(out[variantCountsKey("f", "x, y=z")].requests(), 1u);
  CountsByKey bad;
  EXPECT_FALSE(countsFromJson("[]", bad));
  EXPECT_FALSE(countsFromJson(R"({"a:web/x": [1, 2]})", bad));  // wrong length
  EXPECT_FALSE(countsFromJson(R"({"a:web/x": "many"})", bad));
  EXPECT_FALSE(countsFromJson("{", bad));
}

}  // namespace
}  // namespace fledge::admin
