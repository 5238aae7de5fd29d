#!/usr/bin/env bash
# SSH benchmark (issue 10): redis_health on the fast path and on the fallback against
# community.general.redis_info without and with pipelining, over SSH through a delay proxy at
# one-way delays of 0, 5 and 25 ms, plus the cold-cache first task and the local connection.
# See bench/README.md.
#
#   bash bench/ssh_fast_path/run.sh      (from the repo root, as root; `make bench` runs this)
#
# Setup (idempotent; a re-run skips what is already in place):
#   - build/bench-venv: the controller venv with `ansible` (bundles community.general) and
#     `redis`, the same venv (and stamp) as bench/module_overhead/run.sh;
#   - build/bench-target-venv: the managed host's Python for redis_info, from the system
#     /usr/bin/python3 with redis-py, reachable by the throwaway SSH user (the controller's
#     Python lives under /root);
#   - the installed collection in build/ansible_collections_install (`make collection` if it
#     is missing or has no action plugins), copied into the run's work dir;
#   - bench.py then starts a redis-server, an sshd for a throwaway user and the delay proxies,
#     and removes all of them at the end.
# Knobs: BENCH_SSH_DELAYS ("0 5 25"), BENCH_SSH_N (3), BENCH_SSH_TASKS (11), BENCH_KEEP=1.
# Report-only: exits 0 whatever the timings; non-zero only when something could not run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$REPO/bench/ssh_fast_path"
VENV="$REPO/.venv"
BENCH_VENV="$REPO/build/bench-venv"
BENCH_PACKAGES=(ansible redis)
TARGET_VENV="$REPO/build/bench-target-venv"
INSTALL_DIR="$REPO/build/ansible_collections_install"
COLL_DIR="$INSTALL_DIR/ansible_collections/creativeflow/redis"

say() { printf 'bench-ssh: %s\n' "$*" >&2; }
die() {
    printf 'bench-ssh: error: %s\n' "$*" >&2
    exit 1
}

cd "$REPO"
[[ $(id -u) -eq 0 ]] || die "the SSH benchmark runs as root: it starts its own sshd for a throwaway user"
for tool in /usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen /usr/sbin/useradd redis-server redis-cli; do
    command -v "$tool" >/dev/null || die "$tool is missing: make deps (.ci/install-deps)"
done

# ---------------------------------------------------------------------------------------------
# 1. The controller venv (shared with bench/module_overhead: same path, same stamp)
# ---------------------------------------------------------------------------------------------
[[ -x $VENV/bin/python ]] || die "$VENV is missing: run \`make deps\` (.ci/install-deps) first"
base_py="$("$VENV/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))')"
[[ -x $base_py ]] || die "cannot find the base interpreter of $VENV (got '$base_py')"
want_stamp="$base_py $("$base_py" --version 2>&1) | ${BENCH_PACKAGES[*]}"
stamp="$BENCH_VENV/.bench-stamp"
bench_venv_ok() {
    [[ -x $BENCH_VENV/bin/ansible-playbook ]] &&
        "$BENCH_VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.util, redis, ansible
assert importlib.util.find_spec("ansible_collections.community.general") is not None
PY
}
if [[ -f $stamp ]] && [[ $(head -n1 "$stamp") == "$want_stamp" ]] && bench_venv_ok; then
    say "bench venv: $BENCH_VENV up to date"
else
    if [[ -e $BENCH_VENV ]]; then
        say "bench venv: $BENCH_VENV is incomplete or from another Python; recreating it"
        rm -rf "$BENCH_VENV"
    fi
    mkdir -p "$(dirname "$BENCH_VENV")"
    "$base_py" -m venv "$BENCH_VENV"
    say "bench venv: installing ${BENCH_PACKAGES[*]} from PyPI (once; ~30 s)"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$BENCH_VENV/bin/python" -m pip install --quiet --upgrade \
        "${BENCH_PACKAGES[@]}" </dev/null
    bench_venv_ok || die "pip install finished but ansible, community.general or redis-py is missing in $BENCH_VENV"
    printf '%s\n' "$want_stamp" >"$stamp"
fi

# ---------------------------------------------------------------------------------------------
# 2. The managed host's Python for redis_info (system python3 + redis-py)
# ---------------------------------------------------------------------------------------------
target_stamp="$TARGET_VENV/.bench-stamp"
want_target="$(/usr/bin/python3 --version 2>&1) | redis"
if [[ -f $target_stamp ]] && [[ $(head -n1 "$target_stamp") == "$want_target" ]] &&
    "$TARGET_VENV/bin/python" -c 'import redis' 2>/dev/null; then
    say "target venv: $TARGET_VENV up to date"
else
    rm -rf "$TARGET_VENV"
    /usr/bin/python3 -m venv "$TARGET_VENV" || die "/usr/bin/python3 -m venv failed (install python3-venv)"
    say "target venv: installing redis from PyPI"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$TARGET_VENV/bin/python" -m pip install --quiet redis </dev/null
    printf '%s\n' "$want_target" >"$target_stamp"
fi
chmod -R a+rX "$TARGET_VENV"

# ---------------------------------------------------------------------------------------------
# 3. The installed collection, with its action plugins
# ---------------------------------------------------------------------------------------------
if [[ ! -f $COLL_DIR/plugins/modules/redis_health || ! -f $COLL_DIR/plugins/action/redis_health.py ]]; then
    say "collection: not built (or without action plugins); running make collection"
    make -C "$REPO" collection >&2
fi
[[ -f $COLL_DIR/plugins/action/redis_health.py ]] || die "$COLL_DIR has no action plugins after make collection"

# ---------------------------------------------------------------------------------------------
# 4. Measure
# ---------------------------------------------------------------------------------------------
mkdir -p "$REPO/build"
WORK="$(mktemp -d "$REPO/build/bench-ssh-tmp.XXXXXX")"
cleanup() {
    local rc=$?
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then
        say "kept $WORK (BENCH_KEEP=1)"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A snapshot of the installed collection: one build for the whole run, whatever `make collection`
# does meanwhile (it removes and reinstalls build/ansible_collections_install).
mkdir -p "$WORK/collections/ansible_collections"
cp -a "$INSTALL_DIR/ansible_collections/creativeflow" "$WORK/collections/ansible_collections/"
[[ -f $WORK/collections/ansible_collections/creativeflow/redis/plugins/action/redis_health.py ]] ||
    die "the collection snapshot in $WORK/collections is incomplete (was make collection running?)"

BENCH_REPO="$REPO" BENCH_WORK="$WORK" BENCH_VENV="$BENCH_VENV" BENCH_TARGET_PY="$TARGET_VENV/bin/python" \
    BENCH_COLLECTIONS="$WORK/collections" "$BENCH_VENV/bin/python" "$HERE/bench.py"
