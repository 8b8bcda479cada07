#!/usr/bin/env bash
# Repeated trials, replicates, NVML state and the paired kernels A/B on one GPU (written for an H200), untracked.
# Everything lands under OUT_DIR; each part fits in one 10-minute call.
#
#   bash diffexp/bench/measurement_h200.sh OUT_DIR nvml         # real NVML samples: idle, 20 s of matmuls, idle (~40 s)
#   bash diffexp/bench/measurement_h200.sh OUT_DIR replicates   # FLUX.1-dev DiT, 5 repeats x 3 replicates, its floor
#   bash diffexp/bench/measurement_h200.sh OUT_DIR ab           # interleaved A/B kernels=torch vs kernels=triton, 3 rounds
#   bash diffexp/bench/measurement_h200.sh OUT_DIR epilogue     # the same A/B: kernels=triton vs + kernels.gelu_epilogue=true
#   bash diffexp/bench/measurement_h200.sh OUT_DIR nvml replicates ab   # several parts, in that order
#
# Needs nvidia-ml-py (pynvml) for the GPU state; without it the runs are measured but not sampled. Where the
# NVML recording fails or hangs (it is cut at 100 s), the later parts run with measure.gpu_sampling=false and
# say so, rather than hang inside a measured window.
# The FX graph cache (TORCHINDUCTOR_CACHE_DIR, default /tmp/diffexp-inductor, which a warm machine keeps between
# calls) makes the 2nd..Nth process's compile a cache hit.
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR nvml|replicates|ab ...}
shift
PARTS=("${@:-nvml replicates ab}")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/diffexp-inductor}

source "$(dirname "${BASH_SOURCE[0]}")/flux_pipeline.sh"  # FLUX=(...): the timed pipeline

{
  echo "== $(date -Is) $(hostname)"; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv
  python -c "import pynvml; print('pynvml', pynvml.__file__)" || echo "WARNING: pynvml missing: no GPU samples"
} 2>&1 | tee "$OUT/machine.txt"

sampling() {  # no GPU sampling where the NVML recording failed on this machine
  [[ -f "$OUT/nvml.failed" ]] && echo measure.gpu_sampling=false || true
}

for PART in ${PARTS[*]}; do
  echo "== $(date -Is) part $PART"
  case "$PART" in
    nvml)
      # Real NVML samples (idle, 20 s of bf16 matmuls at the power limit, idle): the throttle logic's fixture.
      if ! timeout 100 python -m diffexp.measure.record_nvml --out "$OUT/nvml" --load-s 20 --deadline-s 80 \
        2>&1 | tee "$OUT/nvml.log"; then
        echo "WARNING: the NVML recording failed or hung: the other parts run without GPU sampling" | tee "$OUT/nvml.failed"
      fi
      ;;
    replicates)
      # 5 measured generations per process after a warmup that runs until two agree within 2 %, 3 fresh
      # processes, then the step's compute floor and the run's efficiency against it.
      python -m diffexp "${FLUX[@]}" measure.repeats=5 measure.replicates=3 measure.warmup_until_stable=true \
        measure.max_warmup_runs=6 measure.floor=true $(sampling) hydra.run.dir="$OUT/flux1_dev_replicates" 2>&1 \
        | tee "$OUT/flux1_dev_replicates.log"
      ;;
    ab)
      # ABAB...: each round a fresh torch process then a fresh triton one; 3 repeats each; paired verdict at 2 %.
      python -m diffexp.ab --base "kernels=torch" --candidate "kernels=triton" --rounds 3 --out "$OUT/ab_kernels" \
        "${FLUX[@]}" measure.repeats=3 $(sampling) 2>&1 | tee "$OUT/ab_kernels.log" || [[ ${PIPESTATUS[0]} == 1 ]]
      ;;
    epilogue)
      # The floor issue's GELU-epilogue candidate (kernels/linear_gelu.py) against kernels=triton, with the floor.
      python -m diffexp.ab --base "kernels=triton" --candidate "kernels=triton kernels.gelu_epilogue=true" --rounds 3 \
        --out "$OUT/ab_epilogue" "${FLUX[@]}" measure.repeats=3 $(sampling) 2>&1 | tee "$OUT/ab_epilogue.log" \
        || [[ ${PIPESTATUS[0]} == 1 ]]
      ;;
    *)
      echo "unknown part $PART: nvml, replicates, ab or epilogue" >&2
      exit 2
      ;;
  esac
done
echo "== done $(date -Is); results under $OUT"
