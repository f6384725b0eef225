#!/usr/bin/env bash
# Benchmark cases on a GPU machine that has torch but no internet (how the README's H100 figures were taken).
# Installs the wheels in $WHEELS (if set) into a private folder, then runs each case prefix in its own process with
# its own time limit, so one hang or CUDA fault cannot take the other cases' numbers with it, and merges every
# result into $OUT/all.json as it goes.
#   WHEELS=.whl OUT=/tmp/out DEMOHUB_BENCH_SPEECH=speech.wav bash bench/gpu_run.sh clip_zero_shot:120 sam_segment:150
# Time limits are seconds (default 600); REPEAT sets the repetitions of cases that do not fix their own; PYTHON the
# interpreter (default python3).
set -u
py=${PYTHON:-python3}  # the interpreter that has torch
out=${OUT:-bench/results/gpu}
runs=$(mktemp -d)
mkdir -p "$out"
export PYTHONPATH=$PWD
if [ -n "${WHEELS:-}" ]; then
  "$py" -m pip install -q --no-index --no-deps --no-compile --target /tmp/demohub-site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/demohub-site:$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 YOLO_OFFLINE=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
for spec in "$@"; do
  prefix=${spec%%:*}
  limit=${spec#*:}
  [ "$limit" = "$spec" ] && limit=600
  echo "=== $prefix (limit ${limit}s) $(date +%T)"
  timeout -k 10 "$limit" "$py" -m bench.harness "$prefix" --repeat "${REPEAT:-5}" --out "$runs/${prefix//\//_}" \
    || echo "=== $prefix ended with exit status $?"
  "$py" - "$runs" "$out/all.json" <<'PY'
import glob, json, sys
reports = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/*/*.json"))]
json.dump(reports, open(sys.argv[2], "w"), indent=1)
PY
done
echo "results: $out/all.json"
