"""The work items of one forward, as the shapes the device has to run: GEMMs, convolutions, attention calls."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod
from typing import Union

GEMM, ATTENTION, MEMORY = "gemm", "attention", "memory-bound"
CATEGORIES = (GEMM, ATTENTION, MEMORY)


@dataclass(frozen=True)
class GemmShape:
    """`batch` × (M×K @ K×N), plus a bias of N when `bias` (addmm); `b_transposed`: B is a weight read as W.t()."""

    m: int
    n: int
    k: int
    bias: bool
    dtype: str
    batch: int = 1
    b_transposed: bool = True

    category = GEMM

    @property
    def flops(self) -> int:
        # The multiply-adds only, as torch.utils.flop_counter counts addmm; the bias add is M×N, negligible.
        return 2 * self.batch * self.m * self.n * self.k

    @property
    def label(self) -> str:
        head = f"{self.batch}×" if self.batch > 1 else ""
        return f"{head}{self.m}×{self.n}×{self.k}{' +bias' if self.bias else ''} {self.dtype}"


@dataclass(frozen=True)
class ConvShape:
    """One aten.convolution call (e.g. a patch embedding) with its full argument list."""

    input: tuple[int, ...]
    weight: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    transposed: bool
    output_padding: tuple[int, ...]
    groups: int
    bias: bool
    output: tuple[int, ...]
    dtype: str

    category = GEMM

    @property
    def flops(self) -> int:
        # A convolution: each output element is a dot product of (C_in / groups) × kernel volume; a transposed
        # one: each input element is scattered into (C_out / groups) × kernel volume outputs.
        per_element = self.weight[1] * prod(self.weight[2:])
        return 2 * prod(self.input if self.transposed else self.output) * per_element

    @property
    def label(self) -> str:
        return f"conv {'×'.join(map(str, self.input))} * {'×'.join(map(str, self.weight))} /{self.stride} {self.dtype}"


@dataclass(frozen=True)
class AttentionShape:
    """One scaled-dot-product attention call: (batch, heads, Sq, Skv, D, Dv)."""

    batch: int
    heads: int
    q_len: int
    kv_len: int
    head_dim: int
    v_head_dim: int
    dtype: str
    causal: bool = False
    # Shape of the attention mask, () when there is none.
    mask: tuple[int, ...] = ()
    # Layout of q as the model hands it over: "bshd" (a transposed (B, S, H, D) tensor, as diffusers'
    # dispatcher passes it) or "bhsd" (contiguous).
    layout: str = "bhsd"

    category = ATTENTION

    @property
    def flops(self) -> int:
        # QK^T (2·Sq·Skv·D) and PV (2·Sq·Skv·Dv) per head, as torch.utils.flop_counter counts SDPA; a causal
        # mask skips half of the score matrix.
        full = 2 * self.batch * self.heads * self.q_len * self.kv_len * (self.head_dim + self.v_head_dim)
        return full // 2 if self.causal else full

    @property
    def label(self) -> str:
        extra = (" causal" if self.causal else "") + (" masked" if self.mask else "")
        return f"B{self.batch} H{self.heads} Sq{self.q_len} Skv{self.kv_len} D{self.head_dim} {self.dtype}{extra}"


Shape = Union[GemmShape, ConvShape, AttentionShape]
KINDS = {"gemm": GemmShape, "conv": ConvShape, "attention": AttentionShape}


def shape_to_dict(shape: Shape) -> dict:
    kind = next(name for name, cls in KINDS.items() if isinstance(shape, cls))
    return {"kind": kind, **asdict(shape)}


def shape_from_dict(data: dict) -> Shape:
    data = dict(data)
    cls = KINDS[data.pop("kind")]
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
