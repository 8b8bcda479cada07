#!/usr/bin/env bash
# The multi-GPU runs on one host of 2, 4 or 8 H200s (written for nvidia-h200-x8), in-process with random weights,
# untracked (the GPU box has no MLflow). Upload afterwards where MLflow is: single runs with
#   python -m diffexp.upload OUT_DIR/<run>/        sweeps with   python -m diffexp.sweeps.upload OUT_DIR/sweep_*/
#
#   bash diffexp/bench/parallel_h200.sh OUT_DIR headline   # Wan2.2-T2V-A14B as its recipe says: cfg_ulysses4, 8 GPUs
#   bash diffexp/bench/parallel_h200.sh OUT_DIR ulysses8   # the same work on ulysses8
#   bash diffexp/bench/parallel_h200.sh OUT_DIR profile    # cfg_ulysses4 profiled (2 of 4 steps): the nccl_comm share
#   bash diffexp/bench/parallel_h200.sh OUT_DIR flux N     # FLUX.1-dev-size 1024², true CFG: single, ulysses N, CFG × Ulysses N/2
#   bash diffexp/bench/parallel_h200.sh OUT_DIR wan N      # Wan2.2-T2V-A14B: single, ulysses N, CFG × Ulysses N/2
#
# The sweeps (N = 2, 4 or 8) are the ulysses_vs_cfg question at N GPUs with the single-GPU point as their baseline
# (extra.sweep_baseline): the sweep's table gives each point's speed-up and scaling efficiency against it, and each
# point is reviewed against its output. FLUX.1-dev is guidance-distilled, so its sweep turns on true CFG
# (true_cfg_scale 4.0 with a negative prompt): every point does the same work, CFG-parallel included.
#
# Steps: the Wan runs measure WAN_STEPS (default 10 for headline / ulysses8, 2 for the sweep, whose single-GPU point
# runs the recipe's layerwise offload at ~23 s a step) of the recipe's 40, with the same per-step shape; such runs
# are tagged NOT THE RECIPE AS WRITTEN in the tables. Call lengths are estimated, not measured (no multi-GPU machine
# has been lent yet): the sweep's single-GPU Wan point alone took ~4 min at 4 steps on 2026-12-04.
#
# NVLink multicast stays off: diffexp sets NCCL_NVLS_ENABLE=0, TORCH_SYMM_MEM_DISABLE_MULTICAST=1 and
# NVSHMEM_DISABLE_NVLS=1 in every rank (docs/parallel.md); they are exported here as well, for anything else.
# PARALLEL_DRY_RUN=1 composes and validates every command without running it (engine.dry_run=true; on CPU, as
# tests/bench/test_parallel_script.py does).
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR headline|ulysses8|profile|flux N|wan N}
PART=${2:?usage: $0 OUT_DIR headline|ulysses8|profile|flux N|wan N}
GPUS=${3:-8}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/diffexp-inductor}
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DRY=()
[[ "${PARALLEL_DRY_RUN:-0}" == 1 ]] && DRY=(engine.dry_run=true)
[[ ${#DRY[@]} -eq 0 ]] && { nvidia-smi --query-gpu=index,name,driver_version,clocks.max.sm,power.limit \
  --format=csv 2>&1 | tee -a "$OUT/machine.txt"; nvidia-smi topo -m 2>&1 | tee -a "$OUT/machine.txt"; }

COMMON=(engine=diffusers model.weights=random tracking.enabled=false)
FLUX_CFG=("model.sampling.negative_prompt='blurry, low quality'" +model.call_kwargs.true_cfg_scale=4.0)

layouts() {  # the two layouts of the ulysses_vs_cfg question at N GPUs
  case "$1" in
    2) echo ulysses2,cfg2 ;;
    4) echo ulysses4,cfg_ulysses2 ;;
    8) echo ulysses8,cfg_ulysses4 ;;
    *) echo "N=$1: the sweeps run on 2, 4 or 8 GPUs" >&2; exit 2 ;;
  esac
}

run() {  # run NAME OVERRIDES...: one run into OUT_DIR/NAME
  local name=$1
  shift
  echo "== $(date -Is) $name $*"
  python -m diffexp "${COMMON[@]}" "$@" "${DRY[@]}" hydra.run.dir="$OUT/$name" 2>&1 | tee "$OUT/$name.log"
}

sweep() {  # sweep NAME OVERRIDES...: a multirun into OUT_DIR/NAME, the single-GPU point its baseline
  local name=$1
  shift
  echo "== $(date -Is) sweep $name $*"
  python -m diffexp -m +sweep=ulysses_vs_cfg "${COMMON[@]}" "+extra.sweep_baseline='parallel=single'" "$@" \
    "${DRY[@]}" hydra.sweep.dir="$OUT/$name" 2>&1 | tee "$OUT/$name.log"
}

case "$PART" in
  headline)
    run wan22_t2v_cfg_ulysses4 +recipe=wan22_t2v "model.sampling.num_inference_steps=${WAN_STEPS:-10}" \
      compile.warmup_steps=2 measure.repeats=3
    ;;
  ulysses8)
    run wan22_t2v_ulysses8 +recipe=wan22_t2v parallel=ulysses8 "model.sampling.num_inference_steps=${WAN_STEPS:-10}" \
      compile.warmup_steps=2 measure.repeats=3
    ;;
  profile)
    run profile_wan22_t2v_cfg_ulysses4 +recipe=wan22_t2v model.sampling.num_inference_steps=4 profile=torch \
      profile.num_steps=2
    if [[ ${#DRY[@]} -eq 0 ]]; then
      trace=$(find "$OUT/profile_wan22_t2v_cfg_ulysses4" -name '*.trace.json*' | head -n 1)
      [[ -n "$trace" ]] && python -m diffexp.profile "$trace" --out "$OUT/profile_wan22_t2v_cfg_ulysses4/report" \
        2>&1 | tee "$OUT/profile_wan22_t2v_cfg_ulysses4.categories.txt"
    fi
    ;;
  flux)  # the sweep file's recipe (Wan's) replaced by FLUX.1-dev's
    LAYOUTS=$(layouts "$GPUS")
    sweep "sweep_flux1_dev_${GPUS}" recipe=flux1_dev "parallel=single,$LAYOUTS" "${FLUX_CFG[@]}" measure.repeats=3
    ;;
  wan)  # the sweep file's own recipe
    LAYOUTS=$(layouts "$GPUS")
    sweep "sweep_wan22_t2v_${GPUS}" "parallel=single,$LAYOUTS" "model.sampling.num_inference_steps=${WAN_STEPS:-2}" \
      compile.warmup_steps=1 measure.repeats=2
    ;;
  *)
    echo "unknown part $PART: headline, ulysses8, profile, flux N or wan N" >&2
    exit 2
    ;;
esac
echo "== done $(date -Is); results under $OUT"
