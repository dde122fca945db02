#pragma once
// systemd's service notification protocol (sd_notify(3)) spoken directly, without libsystemd:
// one datagram of newline-separated VAR=value lines to the AF_UNIX socket named by $NOTIFY_SOCKET.
#include <cstdint>
#include <string>
#include <string_view>

namespace fledge::proxy {

// Sends `state` as one datagram to $NOTIFY_SOCKET: an absolute path, or "@name" for the abstract
// namespace. Returns false when nothing was sent; `err` is then empty if NOTIFY_SOCKET is unset
// or empty (not started by systemd, or not as Type=notify) and says why otherwise. Never throws.
bool sdNotify(std::string_view state, std::string& err);
bool sdNotify(std::string_view state);  // the same, for callers that do not report the reason

// The messages Fledge sends. `status` is what `systemctl status` shows; it is left out when
// empty, and control characters in it become spaces (a line break would start a new variable).
bool sdNotifyReady(std::string_view status, std::string& err);     // READY=1, STATUS=status
bool sdNotifyReloading(std::string_view status, std::string& err);  // RELOADING=1, STATUS=status, MONOTONIC_USEC=now
bool sdNotifyStopping(std::string_view status, std::string& err);  // STOPPING=1, STATUS=status
bool sdNotifyStatus(std::string_view status, std::string& err);    // STATUS=status (an empty one is an error)

// CLOCK_MONOTONIC in microseconds: the clock of MONOTONIC_USEC, which systemd >= 253 requires
// with RELOADING=1 to tell this reload from an earlier one (older versions ignore it).
std::uint64_t monotonicUsec();

}  // namespace fledge::proxy
