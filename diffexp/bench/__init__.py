"""GPU benchmark drivers whose recorded figures live in the repo (docs/results/h100-2026-11-23-flux-dit.md, docs/results/h100-2026-11-23-kernels.md)."""
