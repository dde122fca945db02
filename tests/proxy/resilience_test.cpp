// Retry decisions, the retry budget and outlier ejection, with an injected clock.
#include "proxy/resilience.hpp"

#include "proxy/health.hpp"

#include <gtest/gtest.h>

namespace fledge::proxy {
namespace {

namespace http = boost::beast::http;
using namespace std::chrono_literals;
using Clock = OutlierState::Clock;

TEST(Retry, ConditionsFollowThePolicy) {
  RetryPolicy p;
  p.on_gateway_error = true;
  p.statuses = {409};
  EXPECT_TRUE(p.retriesOn(AttemptResult::kConnectFailure, 0));
  EXPECT_TRUE(p.retriesOn(AttemptResult::kReset, 0));
  EXPECT_TRUE(p.retriesOn(AttemptResult::kTimeout, 0));
  EXPECT_TRUE(p.retriesOn(AttemptResult::kStatus, 503));
  EXPECT_FALSE(p.retriesOn(AttemptResult::kStatus, 500));  // not a gateway error
  EXPECT_TRUE(p.retriesOn(AttemptResult::kStatus, 409));
  EXPECT_FALSE(p.retriesOn(AttemptResult::kStatus, 404));
  EXPECT_FALSE(p.retriesOn(AttemptResult::kOk, 200));
  RetryPolicy only_connect;
  only_connect.on_connect_failure = true;
  EXPECT_TRUE(only_connect.retriesOn(AttemptResult::kConnectFailure, 0));
  EXPECT_FALSE(only_connect.retriesOn(AttemptResult::kReset, 0));
  EXPECT_FALSE(only_connect.retriesOn(AttemptResult::kStatus, 503));
}

TEST(Retry, OnlyIdempotentMethodsUnlessListed) {
  RetryPolicy p;
  for (auto m : {http::verb::get, http::verb::head, http::verb::options, http::verb::put, http::verb::delete_})
    EXPECT_TRUE(p.allowsMethod(m)) << http::to_string(m);
  for (auto m : {http::verb::post, http::verb::patch}) EXPECT_FALSE(p.allowsMethod(m)) << http::to_string(m);
  p.methods = {http::verb::get, http::verb::post};
  EXPECT_TRUE(p.allowsMethod(http::verb::post));
  EXPECT_FALSE(p.allowsMethod(http::verb::put));
}

TEST(Retry, BudgetCapsRetriesToAShareOfRequestsInFlight) {
  // Below the minimum concurrency: always.
  EXPECT_TRUE(retryBudgetAllows(1, 0, 20, 3));
  EXPECT_TRUE(retryBudgetAllows(1, 2, 20, 3));
  EXPECT_FALSE(retryBudgetAllows(1, 3, 20, 3));
  // 100 requests in flight at 20 %: 20 retries, not 21.
  EXPECT_TRUE(retryBudgetAllows(100, 19, 20, 3));
  EXPECT_FALSE(retryBudgetAllows(100, 20, 20, 3));
  // An outage: every request fails and wants a retry; in-flight retries never pass the budget,
  // so attempts stay at most (1 + 20 %) per request in flight (plus the minimum).
  std::uint64_t retries = 0;
  for (int i = 0; i < 1000; ++i)
    if (retryBudgetAllows(1000, retries, 20, 3)) ++retries;
  EXPECT_EQ(retries, 200u);
}

TEST(Outlier, ConsecutiveGatewayErrorsEjectWithGrowingBackoff) {
  OutlierConfig cfg;
  cfg.consecutive_gateway_errors = 3;
  cfg.base_ejection = 30s;
  cfg.max_ejection = 100s;
  OutlierState s;
  Clock::time_point t{};
  EXPECT_FALSE(s.record(AttemptResult::kConnectFailure, 0, cfg, true, t));
  EXPECT_FALSE(s.record(AttemptResult::kStatus, 503, cfg, true, t));
  EXPECT_TRUE(s.record(AttemptResult::kReset, 0, cfg, true, t));  // the third in a row
  EXPECT_TRUE(s.ejected(t + 29s));
  EXPECT_FALSE(s.ejected(t + 30s));
  // Ejected again right away: twice as long; then capped at max_ejection.
  t += 30s;
  for (int i = 0; i < 3; ++i) s.record(AttemptResult::kTimeout, 0, cfg, true, t);
  EXPECT_EQ(s.until() - t, 60s);
  t = s.until();
  for (int i = 0; i < 3; ++i) s.record(AttemptResult::kTimeout, 0, cfg, true, t);
  EXPECT_EQ(s.until() - t, 90s);
  t = s.until();
  for (int i = 0; i < 3; ++i) s.record(AttemptResult::kTimeout, 0, cfg, true, t);
  EXPECT_EQ(s.until() - t, 100s);  // capped
  EXPECT_EQ(s.timesEjected(), 4u);
  // Healthy time earns ejections back, one per base_ejection.
  t = s.until() + 65s;
  s.record(AttemptResult::kOk, 200, cfg, true, t);
  EXPECT_EQ(s.timesEjected(), 2u);
  t += 10min;
  s.record(AttemptResult::kOk, 200, cfg, true, t);
  EXPECT_EQ(s.timesEjected(), 0u);
}

TEST(Outlier, ASuccessBreaksTheRunAndTheShareLimitHolds) {
  OutlierConfig cfg;
  cfg.consecutive_5xx = 2;
  cfg.consecutive_gateway_errors = 0;
  OutlierState s;
  Clock::time_point t{};
  EXPECT_FALSE(s.record(AttemptResult::kOk, 500, cfg, true, t));
  EXPECT_FALSE(s.record(AttemptResult::kOk, 200, cfg, true, t));  // the run starts over
  EXPECT_FALSE(s.record(AttemptResult::kOk, 500, cfg, true, t));
  EXPECT_FALSE(s.record(AttemptResult::kOk, 500, cfg, false, t));  // cluster at its ejection share
  EXPECT_FALSE(s.ejected(t));
  EXPECT_TRUE(s.record(AttemptResult::kOk, 500, cfg, true, t));   // still in the run: ejected once allowed
  EXPECT_FALSE(s.record(AttemptResult::kConnectFailure, 0, cfg, true, t));  // gateway errors are off
  EXPECT_EQ(maxEjected(3, 50), 1u);
  EXPECT_EQ(maxEjected(10, 50), 5u);
  EXPECT_EQ(maxEjected(1, 10), 1u);  // at least one
}

TEST(Health, ThresholdsDecideTheTransitions) {
  HealthCheckConfig cfg;
  cfg.unhealthy_threshold = 3;
  cfg.healthy_threshold = 2;
  HealthState h;
  EXPECT_TRUE(h.healthy());  // endpoints start in service
  EXPECT_FALSE(h.record(false, cfg));
  EXPECT_FALSE(h.record(false, cfg));
  EXPECT_FALSE(h.record(true, cfg));   // a pass breaks the run
  EXPECT_FALSE(h.record(false, cfg));
  EXPECT_FALSE(h.record(false, cfg));
  EXPECT_TRUE(h.record(false, cfg));   // three in a row: out
  EXPECT_FALSE(h.healthy());
  EXPECT_FALSE(h.record(true, cfg));
  EXPECT_FALSE(h.record(false, cfg));  // a failure breaks the run back
  EXPECT_FALSE(h.record(true, cfg));
  EXPECT_TRUE(h.record(true, cfg));    // two passes in a row: back
  EXPECT_TRUE(h.healthy());
}

}  // namespace
}  // namespace fledge::proxy
