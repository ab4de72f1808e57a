# Shared by the bench scripts (sourced, never run): the tool check, free ports, a docker-registry
# and the latency proxy started and waited for, wall times and medians. A script keeps its own
# bookkeeping of what it started (each cleans up its own way); these only start things.

# require_tools TOOL...: stops the bench with a hint when one is missing.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || {
            echo "error: $tool is missing (bash .ci/run installs the test tools)" >&2
            exit 1
        }
    done
}

# free_port: a TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for_v2 PORT [LOG]: until `GET /v2/` answers on 127.0.0.1:PORT (10 s at most; then the
# bench stops, printing LOG if given).
wait_for_v2() {
    local port=$1 log=${2:-}
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return 0
        sleep 0.1
    done
    echo "error: nothing answers GET /v2/ on 127.0.0.1:$port" >&2
    [ -n "$log" ] && cat "$log" >&2
    exit 1
}

# start_distribution DIR PORT [LOG_LEVEL] [EXTRA_STORAGE_YAML]: docker-registry on
# 127.0.0.1:PORT storing under DIR/data, logging to DIR/log; sets STARTED_PID. Called directly
# (not in a subshell) so that the PID reaches the caller.
start_distribution() {
    local dir=$1 port=$2 level=${3:-error} extra=${4:-}
    cat >"$dir/config.yml" <<CFG
version: 0.1
log: {level: $level}
storage:
  filesystem: {rootdirectory: $dir/data}
$extra
http: {addr: 127.0.0.1:$port}
CFG
    env -u REGISTRY_AUTH_FILE docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    STARTED_PID=$!
    wait_for_v2 "$port" "$dir/log"
}

# start_latency_proxy PORT UPSTREAM_PORT RTT_MS [RATE_MBIT] [LOG]: bench/latency_proxy.py on
# PORT in front of UPSTREAM_PORT; sets STARTED_PID.
start_latency_proxy() {
    local port=$1 upstream=$2 rtt=$3 rate=${4:-} log=${5:-/dev/null}
    # shellcheck disable=SC2086 # no rate: no argument
    python3 "$(dirname "${BASH_SOURCE[0]}")/latency_proxy.py" "$port" "$upstream" "$rtt" $rate 2>"$log" &
    STARTED_PID=$!
    wait_for_v2 "$port" "$log"
}

# timed CMD...: the wall seconds CMD took (its output dropped; a failing CMD stops the bench).
timed() {
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null || { echo "error: $* failed" >&2; return 1; }
    e=$(date +%s%N)
    awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", (e - s) / 1e9 }'
}

# median: the median of the numbers on stdin, separated by spaces or newlines.
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
