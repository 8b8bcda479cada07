#!/usr/bin/env bash
# The compute-floor issue's GPU parts on one GPU (written for an H200), untracked; results under OUT_DIR.
#
#   bash diffexp/bench/floor_h200.sh OUT_DIR candidates   # GELU epilogue and SDPA backends at the DiT's shapes (~1 min)
#   bash diffexp/bench/floor_h200.sh OUT_DIR kernels      # per-kernel bandwidth of kernels/ (~1 min on an H200)
#   bash diffexp/bench/floor_h200.sh OUT_DIR pair         # stock vs kernels=triton (GELU epilogue included) DiT forward,
#                                                         # paired, + one traced forward each (~5.5 min: 2 compiles)
#   bash diffexp/bench/floor_h200.sh OUT_DIR graphs       # kernels=triton compiled with CUDA graphs (reduce-overhead)
#                                                         # against without, paired (~3.5 min)
#   bash diffexp/bench/floor_h200.sh OUT_DIR epilogue     # kernels=triton vs + the GELU epilogue, the same paired DiT
#                                                         # forwards, each output against the stock DiT's, traced (~6 min)
#   bash diffexp/bench/floor_h200.sh OUT_DIR split        # GELU epilogue vs + the single blocks' proj_out without its
#                                                         # cat, the same paired DiT forwards, traced (~5.5 min)
#   bash diffexp/bench/floor_h200.sh OUT_DIR step         # the compiled FLUX pipeline with kernels=triton (epilogue and
#                                                         # split proj_out), 5 repeats, its floor and efficiency (~3 min)
#   bash diffexp/bench/floor_h200.sh OUT_DIR wan_ti2v     # Wan2.2-TI2V-5B's recipe (720p, 81 frames) at 10 of its 50
#                                                         # steps, kernels=triton + GELU epilogue, floor and efficiency
#   bash diffexp/bench/floor_h200.sh OUT_DIR candidates kernels pair graphs
#
# Log the pairs later with `python -m diffexp.bench.transformer_ab --log OUT_DIR/<pair dir>`.
set -euo pipefail
OUT=${1:?usage: $0 OUT_DIR candidates|kernels|pair|graphs ...}
shift
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/diffexp-inductor}
source "$(dirname "${BASH_SOURCE[0]}")/flux_pipeline.sh"  # FLUX=(...): the timed pipeline
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
      python -m diffexp.bench.transformer_ab --out "$OUT/transformer_ab" --candidate triton_gelu --rounds 100 \
        --eager-rounds 10 --profile 2>&1 | tee "$OUT/transformer_ab.log"
      ;;
    graphs)
      python -m diffexp.bench.transformer_ab --out "$OUT/transformer_ab_graphs" --base triton_gelu \
        --candidate triton_gelu --candidate-compile-mode reduce-overhead --rounds 100 --eager-rounds 0 --profile \
        2>&1 | tee "$OUT/transformer_ab_graphs.log"
      ;;
    epilogue)
      python -m diffexp.bench.transformer_ab --out "$OUT/transformer_ab_epilogue" --base triton --candidate triton_gelu \
        --rounds 100 --eager-rounds 10 --profile 2>&1 | tee "$OUT/transformer_ab_epilogue.log"
      ;;
    split)
      python -m diffexp.bench.transformer_ab --out "$OUT/transformer_ab_split" --base triton_gelu \
        --candidate triton_gelu_split --rounds 100 --eager-rounds 10 --profile 2>&1 | tee "$OUT/transformer_ab_split.log"
      ;;
    step)
      python -m diffexp "${FLUX[@]}" kernels=triton kernels.gelu_epilogue=true kernels.split_proj_out=true \
        measure.repeats=5 measure.floor=true hydra.run.dir="$OUT/step_triton" 2>&1 | tee "$OUT/step_triton.log"
      ;;
    wan_ti2v)
      # The recipe's input image: its content does not change the work (the VAE encodes it to a fixed latent shape).
      ASSETS=$OUT/assets
      python -m diffexp.bench.assets "$ASSETS" > /dev/null
      DIFFEXP_ASSETS=$ASSETS python -m diffexp +recipe=wan22_ti2v engine=diffusers model.weights=random kernels=triton \
        kernels.gelu_epilogue=true model.sampling.num_inference_steps=10 compile.warmup_steps=2 measure.repeats=2 \
        measure.floor=true tracking.enabled=false hydra.run.dir="$OUT/wan22_ti2v_triton_gelu" 2>&1 \
        | tee "$OUT/wan22_ti2v_triton_gelu.log"
      ;;
    *)
      echo "unknown part $PART: candidates, kernels, pair, graphs, epilogue, split, step or wan_ti2v" >&2
      exit 2
      ;;
  esac
done
echo "== done $(date -Is); results under $OUT"
