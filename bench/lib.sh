# bench/lib.sh: what bench/load and bench/tls share. Sourced, not run.
#
# Processes and their cleanup, ports, config rendering, the upstream and Fledge targets, wrk
# (and fledge_tls_handshakes) runs with the CPU time they cost each target, idle-connection
# memory, medians over rounds, ratios and JSON helpers. Before sourcing, the caller sets
# PROG (the name its messages start with) and ROOT; the functions read the settings named in
# their comments (WORKERS, CONNECTIONS, DURATION, THREADS, ROUNDS, WARMUP, FLEDGE,
# IDLE_CONNS, IDLE_CLIENT, IDLE_SETTLE, KEEP_TMP, HANDSHAKE_CLIENT) when called.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source it

TEMPLATES=$ROOT/bench/templates

die() { echo "$PROG: $*" >&2; exit 1; }

# raise_fd_limit: wrk, the upstream and the proxies each need a descriptor per connection; a
# proxy holding the idle connections needs one per idle connection on top (the idle client, a
# process of its own, needs as many). Raises the hard limit if we may, then the soft limit to
# it; if that is not enough, holds fewer idle connections (IDLE_CONNS) and says so in
# IDLE_NOTE. Sets FD_HEADROOM, IDLE_CONNS_ASKED, IDLE_NOTE and NOFILE.
raise_fd_limit() {
  FD_HEADROOM=$((CONNECTIONS * 2 + 1024))
  IDLE_CONNS_ASKED=$IDLE_CONNS
  IDLE_NOTE=""
  if [[ $(ulimit -Hn) != unlimited ]] && (($(ulimit -Hn) < IDLE_CONNS + FD_HEADROOM)); then
    ulimit -Hn "$((IDLE_CONNS + FD_HEADROOM))" 2>/dev/null || true
  fi
  if [[ $(ulimit -Hn) == unlimited ]]; then
    ulimit -n "$((IDLE_CONNS + FD_HEADROOM))" 2>/dev/null || true
  else
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  fi
  NOFILE=$(ulimit -n)
  if ((IDLE_CONNS > 0)) && [[ $NOFILE != unlimited ]] && ((NOFILE < IDLE_CONNS + FD_HEADROOM)); then
    IDLE_CONNS=$((NOFILE - FD_HEADROOM))
    ((IDLE_CONNS > 0)) || IDLE_CONNS=0
    IDLE_NOTE="IDLE_CONNS reduced from $IDLE_CONNS_ASKED to $IDLE_CONNS: the descriptor limit is $NOFILE and cannot be raised"
    echo "$PROG: $IDLE_NOTE" >&2
  fi
  [[ $NOFILE != unlimited ]] || NOFILE=$((IDLE_CONNS + FD_HEADROOM))
  # Enough descriptors for the clients plus one upstream connection each, with headroom.
  WORKER_CONNECTIONS=$FD_HEADROOM
  # A proxy also holds the idle connections (one descriptor each; they hold no upstream one).
  PROXY_CONNECTIONS=$((WORKER_CONNECTIONS + IDLE_CONNS))
}

# ---------------------------------------------------------------------------------------
# Processes and cleanup
# ---------------------------------------------------------------------------------------

declare -a PIDS=()            # every process we started, in start order
declare -A PID_OF=()          # target name -> pid of the process serving it
declare -A PORT_OF=()         # target name -> port
declare -A SCHEME_OF=()       # target name -> https (set before starting it), or http if unset
declare -A LOG_OF=()          # target name -> its log file
declare -a TARGETS=()         # targets to measure, in measurement order
declare -a CURL_OPTS=()       # extra curl options for readiness checks (--cacert ...)
FAILED=0
IDLE_PID=""                   # the idle-connection client while it runs
TMP=""

# shellcheck disable=SC2317  # only reached through the trap
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  # Fledge drains on SIGTERM and nginx/HAProxy stop at once; with no load left running
  # all of them exit well within 5 s. Anything still there then is killed.
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # only reached through the trap
cleanup() {
  local rc=$? i
  trap - EXIT INT TERM
  [[ -z $IDLE_PID ]] || stop_pid "$IDLE_PID"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if [[ -z $TMP ]]; then
    :
  elif [[ $KEEP_TMP == 1 ]]; then
    echo "$PROG: kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}

# make_tmp: the run's temp dir (TMP) and the traps that stop everything and remove it.
make_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/fledge-bench.XXXXXX")
  # When run as root, nginx workers drop to "nobody"; they must be able to traverse TMP to
  # reach their temp paths. 0711 lets them in without letting them list anything.
  chmod 0711 "$TMP"
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------------------
# Ports and config rendering
# ---------------------------------------------------------------------------------------

# Listeners go below the kernel's ephemeral port range: a port in that range may be in
# use as the local end of an outgoing connection (the proxies open many) at any moment.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
((EPHEMERAL_LOW > 11000)) || EPHEMERAL_LOW=61000
NEXT_PORT=$((10000 + RANDOM % (EPHEMERAL_LOW - 11000)))   # random base: parallel runs rarely collide

port_in_use() {
  # Any socket at all on the port (listening or connected) rules it out.
  [[ -n $(ss -Htan "sport = :$1" 2>/dev/null) ]]
}

# Prints a free port. Must not run in a subshell ($(free_port)), or NEXT_PORT would not
# advance; use: free_port; port=$REPLY.
free_port() {
  while port_in_use "$NEXT_PORT"; do NEXT_PORT=$((NEXT_PORT + 1)); done
  REPLY=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

# render TEXT KEY=VALUE...: replaces every @KEY@ in TEXT. Values are numbers and paths.
render() {
  local text=$1 kv
  shift
  for kv in "$@"; do text=${text//@${kv%%=*}@/${kv#*=}}; done
  if [[ $text =~ @[A-Z_]+@ ]]; then die "unreplaced placeholder ${BASH_REMATCH[0]}"; fi
  printf '%s\n' "$text"
}

# ---------------------------------------------------------------------------------------
# Starting targets
# ---------------------------------------------------------------------------------------

now() { echo "${EPOCHREALTIME/./}"; }   # microseconds

# url_of NAME: the URL every client is pointed at.
url_of() { echo "${SCHEME_OF[$1]:-http}://127.0.0.1:${PORT_OF[$1]}/"; }

# wait_ready NAME [LOG_PATTERN]: waits up to 10 s for the target to answer / with 200
# (and, if given, for LOG_PATTERN to appear in its log first). Exits on failure.
wait_ready() {
  local name=$1 pattern=${2:-} pid=${PID_OF[$1]} log=${LOG_OF[$1]} url
  local deadline=$(($(now) + 10000000)) code=none
  url=$(url_of "$name")
  while (($(now) < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      start_failed "$name" "exited during startup"
    fi
    if [[ -z $pattern ]] || grep -q -- "$pattern" "$log" 2>/dev/null; then
      code=$(curl -s "${CURL_OPTS[@]}" -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
      [[ $code == 200 ]] && return 0
    fi
    sleep 0.1
  done
  start_failed "$name" "not ready after 10 s (last HTTP status: $code${pattern:+, log pattern: $pattern})"
}

start_failed() {
  echo "$PROG: $1 failed to start: $2" >&2
  echo "--- last lines of ${LOG_OF[$1]}:" >&2
  tail -n 20 "${LOG_OF[$1]}" >&2 || true
  exit 1
}

# spawn NAME PORT LOG CMD...: runs CMD in the background and registers it as target NAME.
spawn() {
  local name=$1 port=$2 log=$3
  shift 3
  [[ -z ${PORT_OF[$name]:-} ]] || die "target '$name' started twice"
  "$@" >"$log" 2>&1 &
  PIDS+=($!)
  PID_OF[$name]=$!
  PORT_OF[$name]=$port
  LOG_OF[$name]=$log
}

# start_upstream: the nginx every proxy forwards to ("hello world\n", plain HTTP), target
# "direct"; sets UPSTREAM_PORT. Not added to TARGETS: the caller decides whether to measure it.
start_upstream() {
  local port conf=$TMP/upstream.conf
  free_port; port=$REPLY
  mkdir -p "$TMP/upstream-tmp"
  render "$(<"$TEMPLATES/upstream-nginx.conf")" DIR="$TMP" PORT="$port" \
    WORKER_CONNECTIONS="$((WORKER_CONNECTIONS * 2))" >"$conf"
  # -e: the error log before the config is read; -p: keeps nginx away from /usr/share/nginx.
  spawn direct "$port" "$TMP/upstream.log" nginx -p "$TMP" -e "$TMP/upstream-error.log" -c "$conf"
  UPSTREAM_PORT=$port
  wait_ready direct
}

# start_fledge NAME CONFIG_JSON [KEY=VALUE...]: starts a Fledge instance and adds it as
# a target (over HTTPS if SCHEME_OF[NAME] is https). CONFIG_JSON may (and for the listener
# port must) use these placeholders:
#   @PORT@           a free port picked here; the listener must use it
#   @UPSTREAM_PORT@  the upstream nginx
#   @WORKERS@        $WORKERS
# plus any @KEY@ given as KEY=VALUE, which take precedence over the three above (do not
# override PORT). Extra ports a scenario needs (a second upstream...) come from free_port.
start_fledge() {
  local name=$1 json=$2 port conf=$TMP/$1.json
  shift 2
  [[ $json == *@PORT@* ]] || die "start_fledge $name: config has no @PORT@ listener"
  free_port; port=$REPLY
  render "$json" "$@" PORT="$port" UPSTREAM_PORT="$UPSTREAM_PORT" WORKERS="$WORKERS" >"$conf" ||
    die "start_fledge $name: cannot render its config"
  spawn "$name" "$port" "$TMP/$name.log" "$FLEDGE" --config "$conf"
  # Fledge logs one JSON line with "msg":"started" once every listener is accepting.
  wait_ready "$name" '"msg":"started"'
  TARGETS+=("$name")
}

# ---------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------

# Results of client runs, keyed "KEY,round": KEY is the target name for keep-alive runs and
# MODE:NAME for the others (close:NAME for Connection: close, hs:NAME for new TLS handshakes).
# R_OTHER: the share of the CPU (percent) that processes the script did not start used during
# the run (other_pct); above OTHER_LOAD_WARN the run is reported as disturbed.
declare -A R_RPS=() R_P50=() R_P99=() R_REQS=() R_NON2XX=() R_SOCKERR=() R_RESUMED=() R_CPU_TICKS=() R_CPU=() R_OTHER=()
OTHER_LOAD_WARN=${OTHER_LOAD_WARN:-10}
# Idle connections, keyed by target name; measured once, in round 1 (see measure_idle).
declare -A I_HELD=() I_RSS_BEFORE=() I_RSS_IDLE=() I_KIB=() I_TLS=()

CLK_TCK=$(getconf CLK_TCK)

# proc_tree PID: PID and all its descendants (nginx's workers are children of its master).
proc_tree() {
  local pid=$1 t kid
  echo "$pid"
  for t in /proc/"$pid"/task/*/children; do
    [[ -r $t ]] || continue
    for kid in $(<"$t"); do proc_tree "$kid"; done
  done
}
if [[ ! -r /proc/$$/task/$$/children ]]; then   # kernel without CONFIG_PROC_CHILDREN
  proc_tree() {
    local kid
    echo "$1"
    for kid in $(ps -o pid= --ppid "$1"); do proc_tree "$kid"; done
  }
fi

# cpu_ticks PID: user+sys CPU time of PID and its descendants, in clock ticks.
cpu_ticks() {
  local pid line total=0
  local -a f
  for pid in $(proc_tree "$1"); do
    read -r line 2>/dev/null <"/proc/$pid/stat" || continue
    # The fields after the command name (which may hold spaces) start with the state (field
    # 3), so utime (field 14) and stime (15) are the 12th and 13th of them.
    read -r -a f <<<"${line##*) }"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# rss_kib PID: resident memory of PID and its descendants, in KiB.
rss_kib() {
  local pid key value total=0
  for pid in $(proc_tree "$1"); do
    while read -r key value _; do
      if [[ $key == VmRSS: ]]; then total=$((total + value)); fi
    done 2>/dev/null <"/proc/$pid/status" || true
  done
  echo "$total"
}

# machine_ticks: "BUSY TOTAL" CPU time of the whole machine since boot, all CPUs, in clock
# ticks (/proc/stat: busy is user, nice, system and steal; interrupt time is left out, as the
# loopback traffic of the run itself lands there).
machine_ticks() {
  local -a c
  read -r -a c </proc/stat
  echo "$((c[1] + c[2] + c[3] + c[8])) $((c[1] + c[2] + c[3] + c[4] + c[5] + c[6] + c[7] + c[8]))"
}

# own_ticks: user+sys CPU time of this script and of everything it started, running or
# finished (the finished ones, like wrk, are in its cutime and cstime once waited for).
own_ticks() {
  local line
  local -a f
  read -r line <"/proc/$$/stat"
  read -r -a f <<<"${line##*) }"
  echo "$((f[13] + f[14] + $(cpu_ticks $$)))"
}

# other_pct BUSY0 TOTAL0 OWN0 BUSY1 TOTAL1 OWN1: the share of the machine's CPU, in percent,
# that processes this script did not start used between the two readings: a build on the same
# cores moves every figure measured meanwhile by more than the differences between proxies.
other_pct() {
  awk -v b="$(($4 - $1))" -v t="$(($5 - $2))" -v o="$(($6 - $3))" \
    'BEGIN { x = (t > 0) ? 100 * (b - o) / t : 0; if (x < 0) x = 0; printf "%.0f\n", x }'
}

# per_request_us TICKS REQUESTS: CPU microseconds per request, or n/a without requests.
per_request_us() {
  awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n + 0 == 0) print "n/a"; else printf "%.1f\n", t * 1e6 / hz / n }'
}

# wrk prints latencies as e.g. 812.00us, 1.25ms, 2.01s (and m/h, in theory).
to_us() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 1 : (u == "ms") ? 1e3 : (u == "s") ? 1e6 : (u == "m") ? 6e7 : (u == "h") ? 3.6e9 : -1
    if (f < 0) { print "bad latency: " v > "/dev/stderr"; exit 1 }
    printf "%.0f\n", n * f }'
}

# duration_s D: a wrk duration (10s, 1m, 500ms is not one) in seconds.
duration_s() {
  awk -v d="$1" 'BEGIN { n = d + 0; u = d; sub(/^[0-9.]+/, "", u)
    f = (u == "" || u == "s") ? 1 : (u == "m") ? 60 : (u == "h") ? 3600 : -1
    if (f < 0) { print "bad duration: " d > "/dev/stderr"; exit 1 }
    print n * f }'
}

# warm_up NAME MODE: the same load as the measurement, WARMUP seconds, results dropped.
warm_up() {
  local name=$1 mode=$2 url
  [[ $WARMUP =~ ^0*(\.0*)?$ ]] && return 0
  url=$(url_of "$name")
  if [[ $mode == handshake ]]; then
    "$HANDSHAKE_CLIENT" --port "${PORT_OF[$name]}" --connections "$CONNECTIONS" --threads "$THREADS" \
      --duration "$WARMUP" >/dev/null 2>&1 || true
    return 0
  fi
  local -a wrk_args=()
  [[ $mode != close ]] || wrk_args=(-H 'Connection: close')
  # wrk only takes whole seconds, so the warm-up length comes from timeout; SIGINT makes
  # wrk stop cleanly. Its exit status and output do not matter.
  timeout -s INT -k 5 "$WARMUP" \
    wrk "${wrk_args[@]}" -t"$THREADS" -c"$CONNECTIONS" -d"$((${WARMUP%.*} + 5))s" "$url" >/dev/null 2>&1 || true
}

# run_target NAME [ROUND [MODE]]: warms the target up, measures it once and records the
# result for ROUND (default 1). MODE is keepalive (default: wrk), close (wrk, every request
# carries Connection: close, so every request is a new connection) or handshake
# (HANDSHAKE_CLIENT: every request a new TLS connection with a full handshake). The CPU time
# of the target's processes is read right before and after the run. Marks the run failed
# (exit 1 at the end) if the client fails, serves zero requests, or the target process is gone.
run_target() {
  local name=$1 round=${2:-1} mode=${3:-keepalive}
  local key=$name label=$name url
  local -a wrk_args=()
  url=$(url_of "$name")
  case $mode in
    keepalive) ;;
    close) key=close:$name label="$name (Connection: close)" wrk_args=(-H 'Connection: close') ;;
    handshake) key=hs:$name label="$name (new TLS connections)" ;;
    *) die "run_target: unknown mode $mode" ;;
  esac
  local out=$TMP/run-${key/:/-}-$round.txt ok=1 ticks
  warm_up "$name" "$mode"
  local m0 m1 own0 own1
  m0=$(machine_ticks)
  own0=$(own_ticks)
  ticks=$(cpu_ticks "${PID_OF[$name]}")
  if [[ $mode == handshake ]]; then
    "$HANDSHAKE_CLIENT" --port "${PORT_OF[$name]}" --connections "$CONNECTIONS" --threads "$THREADS" \
      --duration "$(duration_s "$DURATION")" >"$out" 2>&1 || ok=0
  else
    wrk "${wrk_args[@]}" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" >"$out" 2>&1 || ok=0
  fi
  ticks=$(($(cpu_ticks "${PID_OF[$name]}") - ticks))
  own1=$(own_ticks)
  m1=$(machine_ticks)
  local other
  # shellcheck disable=SC2086  # word splitting wanted: "BUSY TOTAL"
  other=$(other_pct $m0 "$own0" $m1 "$own1")
  if ((!ok)); then
    echo "$PROG: the client failed against $label (round $round):" >&2
    cat "$out" >&2
    FAILED=1
  fi
  key=$key,$round
  local rps p50 p99 reqs non2xx sockerr resumed=""
  if [[ $mode == handshake ]]; then
    # "key value" lines; latencies already in microseconds.
    rps=$(awk '$1 == "rps" {print $2}' "$out")
    reqs=$(awk '$1 == "requests" {print $2}' "$out")
    p50=$(awk '$1 == "p50_us" {print $2 "us"}' "$out")
    p99=$(awk '$1 == "p99_us" {print $2 "us"}' "$out")
    non2xx=$(awk '$1 == "non_2xx" {print $2}' "$out")
    sockerr=$(awk '$1 ~ /_errors$/ {s += $2} END {print s + 0}' "$out")
    resumed=$(awk '$1 == "resumed" {print $2}' "$out")
  else
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    reqs=$(awk '/ requests in / {print $1}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    # "Socket errors: connect 0, read 0, write 0, timeout 0" - add them all up.
    sockerr=$(awk '/Socket errors:/ {gsub(/,/, ""); s = 0; for (i = 4; i <= NF; i += 2) s += $i; print s}' "$out")
  fi
  R_RPS[$key]=${rps:-0}
  R_REQS[$key]=${reqs:-0}
  R_P50[$key]=$([[ -n $p50 ]] && to_us "$p50" || echo 0)
  R_P99[$key]=$([[ -n $p99 ]] && to_us "$p99" || echo 0)
  R_NON2XX[$key]=${non2xx:-0}
  R_SOCKERR[$key]=${sockerr:-0}
  R_RESUMED[$key]=$resumed
  R_CPU_TICKS[$key]=$ticks
  R_CPU[$key]=$(per_request_us "$ticks" "${R_REQS[$key]}")
  R_OTHER[$key]=$other
  if [[ ${R_REQS[$key]} == 0 ]]; then
    echo "$PROG: $label served zero requests (round $round); the client said:" >&2
    cat "$out" >&2
    FAILED=1
  fi
  if [[ -n $resumed && $resumed != 0 ]]; then
    echo "$PROG: $label: $resumed of the handshakes were resumptions; expected none" >&2
    FAILED=1
  fi
  check_alive "$name" "the measurement"
  local line="round $round/$ROUNDS  $label: ${R_RPS[$key]} req/s, p99 ${R_P99[$key]} us, cpu ${R_CPU[$key]} us/req"
  ((R_NON2XX[$key] + R_SOCKERR[$key] == 0)) || line+=", errors: ${R_NON2XX[$key]} non-2xx, ${R_SOCKERR[$key]} socket"
  ((other <= OTHER_LOAD_WARN)) || line+=", other processes used $other% of the CPU (disturbed)"
  echo "$line" >&2
}

# check_alive NAME WHAT: marks the run failed if the target's process is gone.
check_alive() {
  if ! kill -0 "${PID_OF[$1]}" 2>/dev/null; then
    echo "$PROG: $1 exited during $2; last lines of ${LOG_OF[$1]}:" >&2
    tail -n 20 "${LOG_OF[$1]}" >&2 || true
    FAILED=1
  fi
}

# measure_idle NAME [CLIENT_ARG...]: opens IDLE_CONNS keep-alive connections to the target
# with IDLE_CLIENT (each completes one request, so whatever a proxy keeps per connection is
# warm, then goes idle; CLIENT_ARGs such as --tls are passed on), holds them IDLE_SETTLE
# seconds and records the growth of the target's RSS (all its processes) over what it was
# before they were opened. Measure once per target (round 1, after that round's other runs):
# memory a process freed when earlier idle connections closed stays in its heap and would
# hide the growth of a second measurement.
measure_idle() {
  local name=$1 port=${PORT_OF[$1]} pid=${PID_OF[$1]} out=$TMP/idle-$1.out err=$TMP/idle-$1.err line before idle held
  shift
  # Set-up runs 64 connections at a time; 10000 take about a second here (plain HTTP).
  local setup_s=$((30 + IDLE_CONNS / 200))
  before=$(rss_kib "$pid")
  # The client holds the connections until SIGTERM (stop_pid); --hold bounds it on its own.
  "$IDLE_CLIENT" --port "$port" --count "$IDLE_CONNS" --timeout "$setup_s" --hold "$((setup_s + 60))" "$@" \
    </dev/null >"$out" 2>"$err" &
  IDLE_PID=$!
  local deadline=$(($(now) + (setup_s + 5) * 1000000))
  while ! grep -q '^ready ' "$out" && kill -0 "$IDLE_PID" 2>/dev/null && (($(now) < deadline)); do
    sleep 0.1
  done
  line=$(grep -m 1 '^ready ' "$out" || true)
  if [[ $line == "ready $IDLE_CONNS" ]]; then
    sleep "$IDLE_SETTLE"
    idle=$(rss_kib "$pid")
    # The proxy's side of the connections (local port = its listener), as the kernel sees them.
    held=$(ss -Htn state established "( sport = :$port )" | wc -l)
    I_RSS_BEFORE[$name]=$before
    I_RSS_IDLE[$name]=$idle
    I_HELD[$name]=$held
    I_KIB[$name]=$(awk -v a="$before" -v b="$idle" -v n="$IDLE_CONNS" 'BEGIN { printf "%.2f\n", (b - a) / n }')
    I_TLS[$name]=$(awk '$1 == "tls" {sub(/^tls /, ""); print; exit}' "$out")
    echo "idle        $name: $held of $IDLE_CONNS connections held, RSS $before -> $idle KiB, ${I_KIB[$name]} KiB/conn" >&2
    if ((held < IDLE_CONNS)); then
      echo "$PROG: $name closed $((IDLE_CONNS - held)) of the $IDLE_CONNS idle connections" >&2
    fi
  else
    echo "$PROG: $name: the idle-connection client did not get $IDLE_CONNS connections idle${line:+ (it said: $line)}:" >&2
    cat "$err" >&2
    FAILED=1
  fi
  # On SIGTERM the client closes everything and says how many connections were still open.
  stop_pid "$IDLE_PID"
  IDLE_PID=""
  line=$(grep '^held ' "$out" || true)
  if [[ -n $line && $line != *" closed 0" ]]; then
    echo "$PROG: $name: idle-connection client: $line (of $IDLE_CONNS)" >&2
  fi
  check_alive "$name" "the idle-connection measurement"
}

# Summary per measurement key, filled by summarize: the median round by throughput (for an
# even number of rounds, the lower of the two middle ones), and errors summed over all
# rounds so that no round's errors are hidden. With SKIP_DISTURBED=1 the median is taken
# over the rounds that other processes did not disturb (R_OTHER at most OTHER_LOAD_WARN), if
# there is one. S_USED: "ROUNDS_IN_THE_MEDIAN/ROUNDS".
declare -A S_RPS=() S_P50=() S_P99=() S_NON2XX=() S_SOCKERR=() S_REQS=() S_CPU=() S_USED=()

# summarize KEY...: over rounds 1..ROUNDS.
summarize() {
  local key r median
  local -a use
  for key in "$@"; do
    use=()
    if [[ ${SKIP_DISTURBED:-0} == 1 ]]; then
      for ((r = 1; r <= ROUNDS; r++)); do
        ((${R_OTHER[$key,$r]:-0} > OTHER_LOAD_WARN)) || use+=("$r")
      done
    fi
    if ((${#use[@]} == 0)); then
      for ((r = 1; r <= ROUNDS; r++)); do use+=("$r"); done
    fi
    median=$(for r in "${use[@]}"; do echo "${R_RPS[$key,$r]} $r"; done |
      sort -g -k1,1 | awk -v m=$(((${#use[@]} + 1) / 2)) 'NR == m {print $2}')
    S_USED[$key]=${#use[@]}/$ROUNDS
    S_RPS[$key]=${R_RPS[$key,$median]}
    S_P50[$key]=${R_P50[$key,$median]}
    S_P99[$key]=${R_P99[$key,$median]}
    S_CPU[$key]=${R_CPU[$key,$median]}
    S_NON2XX[$key]=0 S_SOCKERR[$key]=0 S_REQS[$key]=0
    for ((r = 1; r <= ROUNDS; r++)); do
      S_NON2XX[$key]=$((S_NON2XX[$key] + R_NON2XX[$key,$r]))
      S_SOCKERR[$key]=$((S_SOCKERR[$key] + R_SOCKERR[$key,$r]))
      S_REQS[$key]=$((S_REQS[$key] + R_REQS[$key,$r]))
    done
  done
}

# ratio A B: A/B with two decimals, or n/a when B is zero or missing (or A is missing).
ratio() {
  awk -v a="${1:-n/a}" -v b="${2:-0}" 'BEGIN { if (b + 0 == 0 || a == "n/a" || a == "") print "n/a"; else printf "%.2f\n", a / b }'
}

cpu_model() {
  local m
  m=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true)
  echo "${m:-$(uname -m)}"
}

# fledge_commit: the checked-out commit, "-dirty" if the work tree has changes.
fledge_commit() {
  local commit
  commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || commit+="-dirty"
  echo "$commit"
}

json_str() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# json_num VALUE: VALUE, or null for n/a or nothing.
json_num() { if [[ -z ${1:-} || $1 == n/a ]]; then printf null; else printf '%s' "$1"; fi; }

# json_runs PREFIX NAME...: a JSON array of run results, keys PREFIX+NAME, named NAME (or,
# if JSON_NAME_OF[NAME] is set, that).
declare -A JSON_NAME_OF=()
json_runs() {
  local prefix=$1 name key r sep="" rsep
  shift
  printf '['
  for name in "$@"; do
    key=$prefix$name
    printf '%s\n    {"name": %s, "rps": %s, "p50_us": %s, "p99_us": %s, "cpu_us_per_req": %s, "errors": %s, "non_2xx": %s, "socket_errors": %s, "requests": %s, "rounds_in_median": %s,\n     "rounds": [' \
      "$sep" "$(json_str "${JSON_NAME_OF[$name]:-$name}")" "${S_RPS[$key]}" "${S_P50[$key]}" "${S_P99[$key]}" "$(json_num "${S_CPU[$key]}")" \
      "$((S_NON2XX[$key] + S_SOCKERR[$key]))" "${S_NON2XX[$key]}" "${S_SOCKERR[$key]}" "${S_REQS[$key]}" "${S_USED[$key]%/*}"
    rsep=""
    for ((r = 1; r <= ROUNDS; r++)); do
      printf '%s{"rps": %s, "p50_us": %s, "p99_us": %s, "requests": %s, "non_2xx": %s, "socket_errors": %s, ' \
        "$rsep" "${R_RPS[$key,$r]}" "${R_P50[$key,$r]}" "${R_P99[$key,$r]}" "${R_REQS[$key,$r]}" \
        "${R_NON2XX[$key,$r]}" "${R_SOCKERR[$key,$r]}"
      [[ -z ${R_RESUMED[$key,$r]:-} ]] || printf '"resumed": %s, ' "${R_RESUMED[$key,$r]}"
      printf '"cpu_s": %s, "cpu_us_per_req": %s, "other_cpu_pct": %s}' \
        "$(awk -v t="${R_CPU_TICKS[$key,$r]}" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')" \
        "$(json_num "${R_CPU[$key,$r]}")" "$(json_num "${R_OTHER[$key,$r]:-}")"
      rsep=", "
    done
    printf ']}'
    sep=","
  done
  printf '\n  ]'
}
