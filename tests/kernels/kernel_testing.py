"""Shapes and dtypes shared by the kernel tests (conftest.py holds the fixtures and tolerances)."""

import torch

DTYPES = [torch.bfloat16, torch.float16, torch.float32]
ON_GPU = torch.cuda.is_available()
# Through the interpreter on CPU: few rows, the odd and the DiT widths.
SMALL_SHAPES = [(2, 3, 77), (1, 5, 1000), (2, 2, 3072), (1, 2, 5120)]
# On a GPU: the DiT shapes and odd ones at full size.
FULL_SHAPES = [(1, 4096, 3072), (2, 4608, 3072), (1, 32760, 5120), (3, 333, 1000), (2, 1001, 77)]
