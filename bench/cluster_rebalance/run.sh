#!/usr/bin/env bash
# Rebalance benchmark (see bench/README.md): redis_cluster against
# `redis-cli --cluster rebalance --cluster-use-empty-masters`. Report only. `make bench` runs it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
[[ -x .venv/bin/python ]] || { echo "bench: run \`make deps\` first" >&2; exit 1; }
[[ -x target/x86_64-unknown-linux-gnu/release/redis_cluster ]] || make build
mkdir -p build
exec .venv/bin/python bench/cluster_rebalance/bench.py "$@"
