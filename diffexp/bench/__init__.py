"""GPU benchmark drivers whose recorded figures live in the repo (diffexp/bench/RESULTS.md, kernels/RESULTS.md)."""
