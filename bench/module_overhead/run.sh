#!/usr/bin/env bash
# Module overhead benchmark: creativeflow.redis.redis_health (Rust binary module) against
# community.general.redis_info (Python module) on one dedicated redis-server. See bench/README.md.
#
#   bash bench/module_overhead/run.sh      (from the repo root; `make bench` runs this)
#
# Setup (idempotent; a re-run skips what is already in place):
#   - build/bench-venv: a venv from the same base Python as .venv, with `ansible` (which bundles
#     community.general) and `redis` (redis-py) from PyPI; both modules run under its Ansible;
#   - the installed collection in build/ansible_collections_install (`make collection` if missing);
#   - a redis-server on 127.0.0.1, on a free port (never 6379), with a random requirepass, in a
#     temp dir under build/, stopped by pid at exit.
# Run counts: BENCH_N_ADHOC (7), BENCH_N_ALONE (20), BENCH_N_PLAYBOOK (5), BENCH_N_CLI (20).
# Report-only: exits 0 whatever the timings; non-zero only when something could not run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/bench/module_overhead"
VENV="$REPO/.venv"
BENCH_VENV="$REPO/build/bench-venv"
BENCH_PACKAGES=(ansible redis)
INSTALL_DIR="$REPO/build/ansible_collections_install"
MODULES_DIR="$INSTALL_DIR/ansible_collections/creativeflow/redis/plugins/modules"

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

cd "$REPO"

# ---------------------------------------------------------------------------------------------
# 1. The bench venv
# ---------------------------------------------------------------------------------------------
[[ -x $VENV/bin/python ]] || die "$VENV is missing: run \`make deps\` (.ci/install-deps) first"
# The real interpreter behind .venv: `.venv/bin/python -m venv` would copy the venv, not the base.
base_py="$("$VENV/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')"
[[ -x $base_py ]] || die "cannot find the base interpreter of $VENV (got '$base_py')"
want_stamp="$base_py $("$base_py" --version 2>&1) | ${BENCH_PACKAGES[*]}"
stamp="$BENCH_VENV/.bench-stamp"

bench_venv_ok() {
    [[ -x $BENCH_VENV/bin/ansible && -x $BENCH_VENV/bin/ansible-playbook && -x $BENCH_VENV/bin/ansible-doc ]] &&
        "$BENCH_VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.util, redis, ansible
assert importlib.util.find_spec("ansible_collections.community.general") is not None
PY
}

if [[ -f $stamp ]] && [[ $(head -n1 "$stamp") == "$want_stamp" ]] && bench_venv_ok; then
    say "bench venv: $BENCH_VENV up to date"
else
    if [[ -e $BENCH_VENV ]] && { [[ ! -f $stamp ]] || [[ $(head -n1 "$stamp") != "$want_stamp" ]]; }; then
        say "bench venv: $BENCH_VENV was made from another Python or package list; recreating it"
        rm -rf "$BENCH_VENV"
    fi
    if [[ ! -x $BENCH_VENV/bin/python ]]; then
        say "bench venv: creating $BENCH_VENV with $base_py"
        mkdir -p "$(dirname "$BENCH_VENV")"
        "$base_py" -m venv "$BENCH_VENV"
    fi
    say "bench venv: installing ${BENCH_PACKAGES[*]} from PyPI (once; ~30 s)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$BENCH_VENV/bin/python" -m pip install --quiet --upgrade \
        "${BENCH_PACKAGES[@]}" </dev/null
    bench_venv_ok || die "pip install finished but ansible, community.general or redis-py is missing in $BENCH_VENV"
    printf '%s\n' "$want_stamp" >"$stamp"
fi

# ---------------------------------------------------------------------------------------------
# 2. The installed collection
# ---------------------------------------------------------------------------------------------
if [[ ! -f $MODULES_DIR/redis_health ]]; then
    say "collection: $MODULES_DIR/redis_health missing; running make collection"
    make -C "$REPO" collection >&2
fi
[[ -x $MODULES_DIR/redis_health ]] || die "$MODULES_DIR/redis_health is missing after make collection"

# ---------------------------------------------------------------------------------------------
# 3. Work dir, Ansible environment
# ---------------------------------------------------------------------------------------------
# Under build/ rather than /tmp: binary modules run from remote_tmp and fail on a noexec mount.
mkdir -p "$REPO/build"
WORK="$(mktemp -d "$REPO/build/bench-tmp.XXXXXX")"
redis_pid=""
cleanup() {
    local rc=$?
    if [[ -n $redis_pid ]] && kill -0 "$redis_pid" 2>/dev/null; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        say "kept $WORK (BENCH_KEEP=1)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Hermetic: no ansible.cfg from the cwd or ~, our collection first, no colour or warning noise.
printf '[defaults]\n' >"$WORK/ansible.cfg"
export ANSIBLE_CONFIG="$WORK/ansible.cfg"
export ANSIBLE_COLLECTIONS_PATH="$INSTALL_DIR"
export ANSIBLE_REMOTE_TMP="$WORK/remote_tmp"
export ANSIBLE_LOCAL_TEMP="$WORK/local_tmp"
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_DEPRECATION_WARNINGS=0 ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0
export ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_RETRY_FILES_ENABLED=0
unset ANSIBLE_KEEP_REMOTE_FILES ANSIBLE_PIPELINING
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' \
    "$BENCH_VENV/bin/python" >"$WORK/inventory.ini"

# ---------------------------------------------------------------------------------------------
# 4. The redis-server
# ---------------------------------------------------------------------------------------------
command -v redis-server >/dev/null || die "redis-server is not installed (make deps)"
command -v redis-cli >/dev/null || die "redis-cli is not installed (make deps)"
password="$("$BENCH_VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
free_port() {
    "$BENCH_VENV/bin/python" - <<'PY'
import socket
while True:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port not in (6379, 26379):
        print(port)
        break
PY
}

port=""
for attempt in 1 2 3 4 5; do
    port="$(free_port)"
    cat >"$WORK/redis.conf" <<EOF
bind 127.0.0.1
port $port
requirepass $password
dir $WORK
daemonize no
save ""
appendonly no
logfile $WORK/redis.log
EOF
    redis-server "$WORK/redis.conf" </dev/null >/dev/null 2>&1 &
    redis_pid=$!
    ready=0
    for _ in $(seq 1 50); do
        if REDISCLI_AUTH="$password" redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -qx PONG; then
            ready=1
            break
        fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
    done
    ((ready)) && break
    say "redis-server did not start on port $port (attempt $attempt); retrying"
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
done
[[ -n $redis_pid ]] || die "could not start redis-server; last log:
$(tail -n 20 "$WORK/redis.log" 2>/dev/null)"
say "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on 127.0.0.1:$port (pid $redis_pid)"

# ---------------------------------------------------------------------------------------------
# 5. Measure
# ---------------------------------------------------------------------------------------------
export BENCH_REPO="$REPO" BENCH_WORK="$WORK" BENCH_VENV BENCH_MODULES_DIR="$MODULES_DIR"
export BENCH_REDIS_PORT="$port"
BENCH_REDIS_PASSWORD="$password" "$BENCH_VENV/bin/python" "$HERE/bench.py"
