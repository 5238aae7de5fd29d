#!/usr/bin/env bash
# Sentinel failover benchmark (see bench/README.md). Report only. `make bench` runs it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
[[ -x .venv/bin/python ]] || { echo "bench: run \`make deps\` first" >&2; exit 1; }
[[ -x target/x86_64-unknown-linux-gnu/release/redis_sentinel ]] || make build
mkdir -p build
exec .venv/bin/python bench/sentinel_failover/bench.py "$@"
