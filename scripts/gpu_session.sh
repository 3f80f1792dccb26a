#!/usr/bin/env bash
# The GPU check (scripts/gpu_check.py) on a machine lent by the `device` tool, in two parts.
#
# 1. Here, in the checkout that the device tool sends (the one the session was started in):
#        bash scripts/gpu_session.sh prepare [DATA_DIR] [WHEELS_DIR]   # default ../shared/data ../shared/gpu-wheels
#    fills outputs/gpu_carry/ (git-ignored; about 49 MiB: with the ~1 MiB tree, under the 64 MiB that may travel):
#        wheels/                      hydra-core, omegaconf, antlr4 from the gpu-wheels copy (that machine has
#                                     torch, Lightning, scikit-learn; wandb, 20 MB, is imported only by logger=wandb)
#        data/FashionMNIST/raw/*.gz   the four idx files gzipped, 53 MB -> 31 MB (unpacked there)
#        data/cifar10-jpeg.tar.gz     19 MB as it is (the official cifar-10-batches-py, 178 MB, cannot travel)
# 2. The device tool's run, with carry ["outputs/gpu_carry"] and timeout_s 600:
#        bash scripts/gpu_session.sh run [more gpu_check.py arguments]
#    installs the wheels, unpacks Fashion-MNIST, runs the CUDA-trainer tests ($OUT/pytest_gpu.log, <= 45 s) and
#    the check (steps within 465 s, killed at 540 s), writing $OUT/gpu_check.json, $OUT/gpu_check.log and
#    $OUT/benchmarks.md (docs/benchmarks.md with its gpu-check section rewritten): copy that one over
#    docs/benchmarks.md here. GPU_TESTS=0 leaves the tests out; GPU_CHECK_TIMEOUT=S kills the check at S
#    seconds (a shorter rerun: --steps ... --keep EARLIER.json keeps the other steps' entries).
#    The project is not pip-installed there: its build backend (hatchling) is not on that machine and nothing
#    can be downloaded, so PYTHONPATH points at the checkout (gpu_check.py also puts it on sys.path).
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=outputs/gpu_carry

cmd=${1:-}
shift || true
case "$cmd" in
prepare)
    data=${1:-../shared/data} wheels=${2:-../shared/gpu-wheels}
    rm -rf "$CARRY"
    mkdir -p "$CARRY/wheels" "$CARRY/data/FashionMNIST/raw"
    cp "$wheels"/hydra_core-*.whl "$wheels"/omegaconf-*.whl "$wheels"/antlr4_python3_runtime-*.whl "$CARRY/wheels/"
    for f in "$data"/FashionMNIST/raw/*-ubyte; do
        gzip -c "$f" >"$CARRY/data/FashionMNIST/raw/$(basename "$f").gz"
    done
    cp "$data/cifar10-jpeg.tar.gz" "$CARRY/data/"
    du -sh "$CARRY"
    ;;
run)
    python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site "$CARRY"/wheels/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    for f in "$CARRY"/data/FashionMNIST/raw/*.gz; do
        if [ -e "$f" ]; then gunzip -f "$f"; fi
    done
    out=${OUT:-outputs}
    cp docs/benchmarks.md "$out/benchmarks.md"
    # The tests that build a CUDA trainer (skipped on CPU machines) first; a failure is reported, not fatal.
    if [ "${GPU_TESTS:-1}" = 1 ]; then
        timeout 45 python3 -m pytest -q -p no:cacheprovider -o addopts="--strict-markers -ra" -m "not slow" \
            tests/test_configs.py -k trainer 2>&1 | tee "$out/pytest_gpu.log" || true
    fi
    timeout "${GPU_CHECK_TIMEOUT:-540}" python3 scripts/gpu_check.py --data-dir "$CARRY/data" --budget 465 \
        --json "$out/gpu_check.json" --doc "$out/benchmarks.md" "$@" 2>&1 | tee "$out/gpu_check.log"
    ;;
*)
    sed -n '2,/^set -euo/p' "$0" | sed '$d'
    exit 2
    ;;
esac
