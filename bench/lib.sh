# Shared by the bench scripts (sourced, never run): the tool check, free ports, a docker-registry
# and the latency proxy started and waited for, wall times and medians. A script keeps its own
# bookkeeping of what it started (each cleans up its own way); these only start things.

LIB_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# ensure_ocipush: OCIPUSH_BIN as given, else a release build of this tree.
ensure_ocipush() {
    if [ -z "${OCIPUSH_BIN:-}" ]; then
        echo "==> building (release)" >&2
        (cd "$LIB_ROOT" && cargo build -q --release -p ocipush --bin ocipush)
        OCIPUSH_BIN=$LIB_ROOT/target/release/ocipush
    fi
}

# ensure_fixtures DIR PATH...: writes the bench fixtures into DIR (`bench-fixtures`, which reads
# BENCH_LAYER_MIB and the like from the environment) unless every PATH is there under DIR.
ensure_fixtures() {
    local dir=$1 path
    shift
    for path in "$@"; do
        [ -e "$dir/$path" ] && continue
        echo "==> writing fixtures to $dir" >&2
        (cd "$LIB_ROOT" && cargo build -q --release -p ocipush-testkit --bin bench-fixtures)
        "$LIB_ROOT/target/release/bench-fixtures" "$dir"
        return
    done
}

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

# One registry at a time behind the latency proxy, for the far-registry benches: REG_DIR (a
# new directory under $WORK), REG_PID, PROXY_PID, and PORT, the proxy's.
REG_PID="" PROXY_PID="" REG_DIR=""
stop_far_registry() {
    [ -n "$PROXY_PID" ] && { kill "$PROXY_PID" 2>/dev/null || true; wait "$PROXY_PID" 2>/dev/null || true; }
    [ -n "$REG_PID" ] && { kill "$REG_PID" 2>/dev/null || true; wait "$REG_PID" 2>/dev/null || true; }
    [ -n "$REG_DIR" ] && rm -rf "$REG_DIR"
    REG_PID="" PROXY_PID="" REG_DIR=""
}

# start_far_registry NAME RTT_MS [RATE_MBIT] [LOG_LEVEL]: stops the one before, then starts a
# fresh registry in $WORK/NAME.XXXXXX — docker-registry, or with REGISTRY=ocipush the embedded
# one (`$OCIPUSH_BIN serve -v`, a line per request in its log) — and the proxy in front of it.
start_far_registry() {
    local name=$1 rtt=$2 rate=${3:-} level=${4:-error} reg_port
    stop_far_registry
    REG_DIR=$(mktemp -d "$WORK/$name.XXXXXX")
    reg_port=$(free_port)
    if [ "${REGISTRY:-distribution}" = ocipush ]; then
        "$OCIPUSH_BIN" serve -v --addr "127.0.0.1:$reg_port" --root "$REG_DIR/data" >"$REG_DIR/log" 2>&1 &
        REG_PID=$!
        wait_for_v2 "$reg_port" "$REG_DIR/log"
    else
        start_distribution "$REG_DIR" "$reg_port" "$level"
        REG_PID=$STARTED_PID
    fi
    PORT=$(free_port)
    start_latency_proxy "$PORT" "$reg_port" "$rtt" "$rate" "$REG_DIR/proxy.log"
    PROXY_PID=$STARTED_PID
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
