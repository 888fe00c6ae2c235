#!/bin/bash
# The prepared GPU check for the device tool. Every step has its own time limit, so a slow step costs
# only itself; name the parts to run (default: all, about 8 minutes on one H100 — two calls of about
# 5 minutes, `tests floors` then `methods paper`, leave room to rerun one). From the repository root:
#     run(command="bash bench/gpu_check.sh tests floors", carry=[".whl"], timeout_s=420)
# (.whl from bench/gpu_wheels.sh). A dry run of the script's logic on a CPU (test_gpu.py skips):
#     NO_WHEELS=1 OUT=/tmp/gpu_check PY=.venv/bin/python DEVICE=cpu SHAPE=llama-micro \
#         bash bench/gpu_check.sh tests floors
# What it writes under $OUT comes back: summary.txt (one line per
# step: rc and seconds), each step's log and the decoding benchmark's JSON files.
#   1. tests: tests/test_gpu.py: the decoding engine on CUDA (cache, static cache, compile, bf16).
#   2. floors: issue #4's floors at the Llama-2-7B shape, batch 1, static cache + torch.compile: plain decoding
#      (<= 30 ms/token) and mage-e-m (<= 50 ms/token), one process each.
#   3. methods: every method at the 7B shape, batch 1 and 16, static cache without compile (the eager loop).
#   4. paper: the paper tasks' fixture tests with CUDA visible (judges in bf16, policies on the GPU).
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PY:-python3}
SHAPE=${SHAPE:-llama-7b}
DEVICE=${DEVICE:-cuda}
PARTS=" ${*:-tests floors methods paper} "
export PYTHONUNBUFFERED=1 MOBENCH_HOME=/tmp/mobench-home
# mobench is not installed there: pyproject maps mobench.tasks, .methods and .judges to the top-level
# folders, so a source tree with those links stands in for the editable install.
rm -rf /tmp/src && mkdir -p /tmp/src && cp -r mobench /tmp/src/
for d in tasks methods judges; do ln -s "$PWD/$d" "/tmp/src/mobench/$d"; done
if [ -d .whl ] && [ -z "${NO_WHEELS:-}" ]; then
    if [ ! -d /tmp/site ]; then  # a warm machine keeps it
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
            > "$OUT/install.log" 2>&1 || { echo "wheel install failed"; tail -20 "$OUT/install.log"; exit 1; }
    fi
    export PYTHONPATH=/tmp/site:/tmp/src:$PWD
else
    export PYTHONPATH=/tmp/src:$PWD
fi
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
$PY -c "import torch, transformers, trl, importlib.metadata as m; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(), transformers.__version__, trl.__version__, *(f'{p} {m.version(p)}' for p in ('pyarrow', 'safetensors', 'fsspec', 'anyio', 'click')))" \
    2>&1 | tee "$OUT/versions.txt"

step() {  # step NAME SECONDS COMMAND...: runs it with a time limit, logs to $OUT/NAME.log
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name rc=$rc $((SECONDS - start))s" | tee -a "$OUT/summary.txt"
    tail -4 "$OUT/$name.log"
}

case $PARTS in *" tests "*)
    step engine-tests 90 $PY -m pytest -q -p no:cacheprovider tests/test_gpu.py ;; esac
case $PARTS in *" floors "*)
    for method in plain mage-e-m; do
        step "floor-$method" 150 $PY bench/decoding.py --shape "$SHAPE" --device "$DEVICE" --batch 1 --methods "$method" \
            --cache static --compile --new-tokens 64 --out "$OUT/floor-$method.json"
    done ;; esac
case $PARTS in *" methods "*)
    step all-methods 150 $PY bench/decoding.py --shape "$SHAPE" --device "$DEVICE" --batch 1 16 --cache static \
        --new-tokens 32 --repeats 3 --out "$OUT/decoding-$SHAPE-$DEVICE.json" ;; esac
case $PARTS in *" paper "*)
    step paper-tests 90 $PY -m pytest -q -p no:cacheprovider tests/test_paper_tasks.py ;; esac
cat "$OUT/summary.txt"
