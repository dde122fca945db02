#pragma once
// Rollout webhooks: one HTTP POST with a JSON body to a RolloutWebhook's URL, asynchronous on the
// given executor (the admin work thread, where the rollout controller runs), bounded as a whole
// by the webhook's timeout (resolving, connecting, writing and reading together).
#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <string>

#include "admin/rollouts.hpp"

namespace fledge::admin {

struct WebhookResult {
  unsigned status = 0;  // the HTTP status; 0 when there was no answer
  std::string error;    // empty when the webhook answered (whatever its status)
  bool passed() const { return status == 200; }
  std::string describe() const;  // "answered 503" / "timed out after 2000 ms" / "connect: Connection refused"
};

void callWebhook(boost::asio::any_io_executor executor, const RolloutWebhook& hook, std::string body,
                 std::function<void(WebhookResult)> done);

}  // namespace fledge::admin
