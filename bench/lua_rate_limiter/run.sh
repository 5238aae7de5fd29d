#!/usr/bin/env bash
# Rate limiter benchmark: lua/rate_limiter.lua's limiters through redis-benchmark (FCALL, and
# EVALSHA for one) against plain INCR on the same key shapes, the naive sliding-window log as the
# reference, and MEMORY USAGE of a key at the limit; prints one table of ratios. See bench.py.
#
#   bash bench/lua_rate_limiter/run.sh     (from anywhere; `make bench` runs it)
#
# Knobs: BENCH_N (100000 requests per run at -P 16, a quarter at -P 1), BENCH_REPS (3), BENCH_KEYS (-r, 1000),
# BENCH_CLIENTS (50), BENCH_PIPELINES ("16,1"). A run takes about a minute.
# Report-only: exits 0 whatever the figures; non-zero only when something could not run.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$REPO/.venv/bin/python"
[[ -x $PY ]] || { echo "bench: $REPO/.venv is missing: run \`make deps\` first" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "bench: redis-server not found (apt install redis-server)" >&2; exit 1; }
exec "$PY" "$REPO/bench/lua_rate_limiter/bench.py"
