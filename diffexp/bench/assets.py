"""The recipes' input pictures as plain placeholders, for runs with random weights where the real ones are absent:

    python -m diffexp.bench.assets DIR && export DIFFEXP_ASSETS=DIR

writes cat.png (1024², the edit recipes') and astronaut.jpg (1280×720, Wan2.2-TI2V's) into DIR. Their content does
not change the work: the pipelines resize an input picture to the run's resolution and the VAE encodes it to a
latent of a fixed shape."""

from __future__ import annotations

import sys
from pathlib import Path

# name -> (size, colour): the sizes of the guide's own inputs
PICTURES = {"cat.png": ((1024, 1024), (180, 140, 90)), "astronaut.jpg": ((1280, 720), (90, 90, 120))}


def write(folder: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (size, colour) in PICTURES.items():
        Image.new("RGB", size, colour).save(folder / name)
        written.append(folder / name)
    return written


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m diffexp.bench.assets DIR", file=sys.stderr)
        return 2
    for path in write(Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
