#!/bin/sh
# Runs the load-test harness from the repository root; flags pass through,
# e.g. bench/run.sh -duration 5s -runs 3 -out bench/README.md
set -eu
cd "$(dirname "$0")/.."
exec go run ./bench "$@"
