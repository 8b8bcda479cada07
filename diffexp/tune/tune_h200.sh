#!/usr/bin/env bash
# The tuner on one GPU (written for an H200): the FLUX.1-dev-size pipeline with random weights (12 B DiT, T5-XXL,
# CLIP, VAE) under a 24 GiB or a 16 GiB VRAM budget, untracked. Each budget fits in one 10-minute call; the trials,
# tune.json, trials.md/csv and the chart land under OUT_DIR/<budget>; log them later with
#   python -m diffexp.tune --log OUT_DIR/<budget> [--tracking-uri URI]
#
#   bash diffexp/tune/tune_h200.sh OUT_DIR 24
#   bash diffexp/tune/tune_h200.sh OUT_DIR 16
#
# Every trial runs with the CUDA allocator capped at the budget (engine.vram_cap_gib) once the pipeline is placed;
# an OOM is an infeasible trial. The compile cache under OUT_DIR/<budget>/compile_cache is shared by the trials.
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR 24|16}
BUDGET=${2:-24}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1

{
  echo "== $(date -Is) $(hostname) budget ${BUDGET} GiB"
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,power.limit --format=csv
  python -c "import optuna, torch; print('optuna', optuna.__version__, 'torch', torch.__version__)"
} 2>&1 | tee "$OUT/machine_${BUDGET}.txt"

# 1024^2, 8 steps; warmups of 4 steps (compiled graphs depend on shapes, not step counts). The search stops
# starting trials after 7 minutes (a started trial may run to its 150 s timeout); 3 repeats a full trial, 1 a probe.
python -m diffexp.tune tune=image "tune.vram_gib=${BUDGET}" tune.max_minutes=7 tune.max_trials=12 \
  tune.repeats=3 tune.probe_repeats=1 tune.trial_timeout_s=150 "tune.out=$OUT/$BUDGET" \
  model=flux1_dev model.weights=random engine=diffusers \
  model.sampling.width=1024 model.sampling.height=1024 model.sampling.num_inference_steps=8 \
  compile.warmup_steps=4 measure.max_warmup_runs=3 tracking.enabled=false \
  2>&1 | tee "$OUT/tune_${BUDGET}.log" || [[ ${PIPESTATUS[0]} == 1 ]]   # 1: no configuration fits
echo "== done $(date -Is); results under $OUT/$BUDGET"
