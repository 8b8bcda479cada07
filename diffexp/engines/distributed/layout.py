"""How a parallel run's ranks are arranged: CFG branch groups × ring × Ulysses, as one device mesh."""

from __future__ import annotations

from dataclasses import dataclass

from diffexp.config.schema import ParallelConfig
from diffexp.errors import DiffexpError

# Row-major: the Ulysses groups are runs of adjacent ranks, and the CFG groups are the two halves.
MESH_DIMS = ("cfg", "ring", "ulysses")


@dataclass(frozen=True)
class Layout:
    cfg_degree: int  # 2: conditional and unconditional branches on separate rank groups
    ring_degree: int
    ulysses_degree: int

    @property
    def world_size(self) -> int:
        return self.cfg_degree * self.ring_degree * self.ulysses_degree

    @property
    def sequence_parallel(self) -> bool:
        return self.ring_degree * self.ulysses_degree > 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.cfg_degree, self.ring_degree, self.ulysses_degree)

    def describe(self) -> str:
        return " × ".join(f"{name} {size}" for name, size in zip(MESH_DIMS, self.shape))


def layout_of(parallel: ParallelConfig) -> Layout:
    if (parallel.tp_degree or 1) > 1:
        raise DiffexpError(
            f"parallel.tp_degree={parallel.tp_degree}: the in-process engine does not do tensor parallelism; "
            "use engine=sglang"
        )
    cfg_degree = 2 if (parallel.cfg_parallel or (parallel.cfg_parallel_size or 1) > 1) else 1
    ring = parallel.ring_degree or 1
    # As in SGLang: GPUs the degrees leave unassigned go to Ulysses.
    ulysses = parallel.ulysses_degree or max(1, parallel.num_gpus // (cfg_degree * ring))
    layout = Layout(cfg_degree, ring, ulysses)
    if layout.world_size != parallel.num_gpus:
        raise DiffexpError(
            f"parallel.num_gpus={parallel.num_gpus}: the layout {layout.describe()} needs {layout.world_size} ranks"
        )
    return layout


def build_mesh(layout: Layout, device_type: str):
    """The rank mesh; every rank must call this (it creates the sub-groups collectively)."""
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device_type, layout.shape, mesh_dim_names=MESH_DIMS)
