#!/usr/bin/env bash
# The compute-floor issue's GPU parts on one GPU (written for an H200), untracked; results under OUT_DIR.
#
#   bash diffexp/bench/floor_h200.sh OUT_DIR candidates   # GELU epilogue and SDPA backends at the DiT's shapes (~1 min)
#   bash diffexp/bench/floor_h200.sh OUT_DIR kernels      # per-kernel bandwidth of kernels/ (~1 min on an H200)
#   bash diffexp/bench/floor_h200.sh OUT_DIR pair         # stock vs kernels=triton DiT forward, paired, + one traced
#                                                         # forward each (~6 min: each variant's compile took 131 s)
#   bash diffexp/bench/floor_h200.sh OUT_DIR graphs       # the same pair compiled with CUDA graphs (reduce-overhead)
#   bash diffexp/bench/floor_h200.sh OUT_DIR candidates kernels pair graphs
#
# Log the pairs later with `python -m diffexp.bench.transformer_ab --log OUT_DIR/<pair dir>`.
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR candidates|kernels|pair|graphs ...}
shift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/diffexp-inductor}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,power.limit --format=csv 2>&1 \
  | tee -a "$OUT/machine.txt"

for PART in "$@"; do
  echo "== $(date -Is) part $PART"
  case "$PART" in
    candidates)
      python -m diffexp.bench.candidates --out "$OUT/candidates" 2>&1 | tee "$OUT/candidates.log"
      ;;
    kernels)
      python -m diffexp.bench.kernels log_mlflow=false "output_dir=$OUT/kernel_bench" 2>&1 | tee "$OUT/kernel_bench.log"
      ;;
    pair)
      python -m diffexp.bench.transformer_ab --out "$OUT/transformer_ab" --rounds 100 --eager-rounds 10 --profile \
        2>&1 | tee "$OUT/transformer_ab.log"
      ;;
    graphs)
      python -m diffexp.bench.transformer_ab --out "$OUT/transformer_ab_graphs" --rounds 100 --eager-rounds 0 \
        --compile-mode reduce-overhead 2>&1 | tee "$OUT/transformer_ab_graphs.log"
      ;;
    *)
      echo "unknown part $PART: candidates, kernels, pair or graphs" >&2
      exit 2
      ;;
  esac
done
echo "== done $(date -Is); results under $OUT"
