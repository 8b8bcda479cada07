#!/usr/bin/env bash
# The tuner on one GPU (written for an H200): the FLUX.1-dev-size pipeline with random weights (12 B DiT, T5-XXL,
# CLIP, VAE) under a 24 GiB or a 16 GiB VRAM budget, untracked; and the tuner judged against the exhaustive grid of
# one space under the same budget. Every step fits one 10-minute call (a session stops starting trials after
# 7 minutes; a started trial may run to its 150 s timeout). Log a tuning's folder later with
#   python -m diffexp.tune --log OUT_DIR/<folder> [--tracking-uri URI]
#
#   bash diffexp/tune/tune_h200.sh OUT_DIR 24            # the tuner over tune=image, 12 trials  → OUT_DIR/24
#   bash diffexp/tune/tune_h200.sh OUT_DIR 16            #                                     → OUT_DIR/16
#   bash diffexp/tune/tune_h200.sh OUT_DIR 24 grid       # one session of the grid over SPACE  → OUT_DIR/24_grid
#   bash diffexp/tune/tune_h200.sh OUT_DIR 24 tuner      # the tuner over SPACE, 1/3 of its grid → OUT_DIR/24_tuner
#   bash diffexp/tune/tune_h200.sh OUT_DIR 24 compare    # the goal's verdict (CPU only)      → OUT_DIR/24_compare
#   bash diffexp/tune/tune_h200.sh OUT_DIR 24 video      # Wan2.2-TI2V-5B over tune=video     → OUT_DIR/24_video
#
# Arguments after the step are overrides for the tuning and every trial (e.g. tune.max_minutes=5); give a grid and
# its tuner the same ones (the comparison refuses two settings) and every session of one folder the same too.
#
# The video tuning: Wan2.2-TI2V-5B at its recipe's shape (720p, 81 frames, CFG), random weights, 4 steps a
# generation (2 warmup steps): resident and compiled it peaked at 31.7 GiB on 2026-12-02, so 24 GiB makes it
# choose what to offload. 8 trials (the reference, the guide's low-VRAM anchor and SGLang's auto placement
# among them), resumable like the grid: run it again until it prints a winner without "stopped: tune.max_minutes".
#
# TUNE_REHEARSE=1 runs any step on CPU with the tiny FLUX (the video step: the tiny Wan2.2-TI2V), no GPU and no
# downloads, in seconds a trial: a checkout's script, resuming and verdict checked before a GPU call is spent on
# them (tests/tune/test_tune_script.py does so with a 3-point space; on CPU the offload params, CUDA-only, drop
# out of a space).
#
# The grid against the tuner. SPACE (default image_core) is what both search. On one GPU its grid has 18 points
# (offload resident / text encoder CPU / DiT CPU, layerwise and low_vram each with prefetch 0, 0.2, 0.4; × compile
# off / on); the tuner gets 6 trials (a third, reference and anchors included). SPACE=image has 1278 points (six
# placements, prefetch 0–0.5 by 0.05, pinned memory, three lossless attentions, three compile modes, two kernels):
# at about a minute a trial some 20 hours, far more than a session. A call runs about 4–10 trials (estimated, not
# measured: ~45 s an eager trial, 2–3 min a compiled one with a cold compile cache; an OOM is quicker), so the grid
# and the tuner are RESUMABLE: each call continues its folder from its tune.json (tune.resume=true). Run `grid`
# again until it prints "grid: 18 of 18 points (exhaustive)" (about 3 calls), `tuner` until it prints a winner
# without "stopped: tune.max_minutes" (1–2 calls), then `compare`. The comparison says "cannot say" while the grid
# is not exhaustive.
#
# Between calls OUT_DIR must survive: keep it under the repository's ignored outputs/ (a warm machine keeps it
# there) and copy it to $OUT at the end of each call. On a fresh machine carry it back without compile_cache/
# (what a resumed session needs: tune.json, trials/*/config.yaml and metrics.json, the reference trial's outputs/,
# which the review reads; a cold compile cache only costs compile time).
#
# Every trial runs with the CUDA allocator capped at the budget (engine.vram_cap_gib) once the pipeline is placed;
# an OOM is an infeasible trial. The compile cache under each folder's compile_cache/ is shared by its trials.
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR 24|16 [tune|grid|tuner|compare|video] [TUNE OVERRIDES...]}
BUDGET=${2:-24}
STEP=${3:-tune}
shift $(($# < 3 ? $# : 3))
SPACE=${SPACE:-image_core}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1

# FLUX.1-dev size at 1024^2, 8 steps; warmups of 4 steps (compiled graphs depend on shapes, not step counts); 3
# repeats a full trial, 1 a probe. The grid and its tuner must share every one of these (the comparison refuses
# two settings).
IMAGE=(model=flux1_dev model.weights=random engine=diffusers
  model.sampling.width=1024 model.sampling.height=1024 model.sampling.num_inference_steps=8 compile.warmup_steps=4)
VIDEO=(model=wan22_ti2v model.weights=random engine=diffusers model.sampling.num_inference_steps=4
  compile.warmup_steps=2)
if [[ "${TUNE_REHEARSE:-0}" == 1 ]]; then
  IMAGE=(model=tiny_flux)
  VIDEO=(model=tiny_wan22_ti2v)
fi
COMMON=(measure.max_warmup_runs=3 tracking.enabled=false)
TUNE=("tune.vram_gib=${BUDGET}" tune.max_minutes=7 tune.repeats=3 tune.probe_repeats=1 tune.trial_timeout_s=150)

machine() {
  {
    echo "== $(date -Is) $(hostname) budget ${BUDGET} GiB, step ${STEP}"
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,power.limit --format=csv \
      || echo "no nvidia-smi: no GPU visible"
    python -c "import optuna, torch; print('optuna', optuna.__version__, 'torch', torch.__version__)"
  } 2>&1 | tee -a "$OUT/machine_${BUDGET}.txt"
}

grid_size() {  # the grid's points on this machine (its GPUs, CUDA): what `tune.search=grid` will run
  python - "$SPACE" <<'PY'
import sys

from diffexp.tune import space
from diffexp.tune.config import load_tune_config
from diffexp.tune.search import machine

box = machine()
print(int(space.size(space.active(load_tune_config(sys.argv[1], []), box.num_gpus, box.cuda))))
PY
}

resumed() {  # tune.resume=true when the folder holds an earlier session
  [[ -f "$1/tune.json" ]] && echo tune.resume=true || true
}

tune() {  # exit status 1 (no configuration fits) is a result, not a failure
  python -m diffexp.tune "$@" 2>&1 | tee -a "$LOG" || [[ ${PIPESTATUS[0]} == 1 ]]
}

case "$STEP" in
  tune)
    machine
    LOG="$OUT/tune_${BUDGET}.log"
    tune tune=image "${TUNE[@]}" tune.max_trials=12 "tune.out=$OUT/$BUDGET" "${IMAGE[@]}" "${COMMON[@]}" "$@"
    echo "== done $(date -Is); results under $OUT/$BUDGET"
    ;;
  grid)
    machine
    N=$(grid_size)
    DIR="$OUT/${BUDGET}_grid"
    LOG="$OUT/grid_${BUDGET}.log"
    echo "== grid over $SPACE: $N points; this call continues $DIR" | tee -a "$LOG"
    tune "tune=$SPACE" tune.search=grid "tune.max_trials=$N" "${TUNE[@]}" "tune.out=$DIR" $(resumed "$DIR") \
      "${IMAGE[@]}" "${COMMON[@]}" "$@"
    echo "== done $(date -Is); run this step again until it prints 'grid: $N of $N points (exhaustive)'"
    ;;
  tuner)
    machine
    N=$(grid_size)
    DIR="$OUT/${BUDGET}_tuner"
    LOG="$OUT/tuner_${BUDGET}.log"
    echo "== tuner over $SPACE: $((N / 3)) trials, a third of its $N-point grid" | tee -a "$LOG"
    tune "tune=$SPACE" "tune.max_trials=$((N / 3))" "${TUNE[@]}" "tune.out=$DIR" $(resumed "$DIR") \
      "${IMAGE[@]}" "${COMMON[@]}" "$@"
    echo "== done $(date -Is); results under $DIR"
    ;;
  compare)
    python -m diffexp.report tune "$OUT/${BUDGET}_tuner" --against "$OUT/${BUDGET}_grid" \
      --out "$OUT/${BUDGET}_compare" 2>&1 | tee "$OUT/compare_${BUDGET}.log" || [[ ${PIPESTATUS[0]} == 1 ]]  # 1: not met
    ;;
  video)
    machine
    DIR="$OUT/${BUDGET}_video"
    LOG="$OUT/video_${BUDGET}.log"
    ASSETS=$OUT/assets
    python -m diffexp.bench.assets "$ASSETS" > /dev/null
    DIFFEXP_ASSETS=$ASSETS tune tune=video tune.max_trials=8 "${TUNE[@]}" "tune.out=$DIR" $(resumed "$DIR") \
      "${VIDEO[@]}" "${COMMON[@]}" "$@"
    echo "== done $(date -Is); results under $DIR"
    ;;
  *)
    echo "unknown step $STEP: tune, grid, tuner, compare or video" >&2
    exit 2
    ;;
esac
