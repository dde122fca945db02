#pragma once
// `fledge ctl`: the admin API from the command line. Status, split weights, flags and rollouts,
// for people (tables, a live rollout view) and for scripts (-o json, exit codes).
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace fledge::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;      // a request, the API or a file failed
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRolledBack = 3;  // --wait/--watch: the rollout was rolled back or aborted
inline constexpr int kExitWaitTimeout = 4; // --timeout-wait passed

extern const char* const kUsage;

// What run() takes from the process around it.
struct Environment {
  std::string admin_url;    // FLEDGE_ADMIN_URL (empty: unset)
  std::string admin_token;  // FLEDGE_ADMIN_TOKEN
  bool terminal = false;    // stdout is a terminal: live views instead of lines
};
Environment processEnvironment();

// `fledge ctl ARGS...` (ARGS without "ctl"); returns the exit code.
int run(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err, const Environment& env);
inline int run(const std::vector<std::string_view>& args, std::ostream& out, std::ostream& err) {
  return run(args, out, err, processEnvironment());
}

}  // namespace fledge::ctl
