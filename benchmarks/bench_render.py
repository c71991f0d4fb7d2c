"""How long the emulator takes to render its MP4s (video, thumbnail and spritesheet together).

    .venv/bin/python benchmarks/bench_render.py [--repeat N]

Renders 4, 8 and 12 s clips at 720p (1280x720) and 1024p (1792x1024) in one run and prints
the render time, the ratio to the 4 s 720p render, and how much faster than real time each
render is (video seconds / render seconds). The best of --repeat runs counts.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from soranb.catalog import parse_size
from soranb.emulator.render import RenderSpec, render_media

CASES = [(size, seconds) for size in ("1280x720", "1792x1024") for seconds in (4, 8, 12)]
PROMPT = "A calico cat rides a longboard down a sunlit coastal road, handheld camera, golden hour, 35 mm film"


def render_seconds(size: str, seconds: int, folder: Path, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeat` renders; CPU counts the encoder's threads too."""
    width, height = parse_size(size)
    best = (float("inf"), float("inf"))
    for n in range(repeat):
        out = folder / f"{size}-{seconds}-{n}"
        started, cpu = time.perf_counter(), time.process_time()
        render_media(RenderSpec(width, height, seconds, PROMPT), out)
        best = min(best, (time.perf_counter() - started, time.process_time() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="renders per case; the fastest counts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soranb-bench-") as tmp:
        folder = Path(tmp)
        render_media(RenderSpec(320, 240, 1, "warm-up"), folder / "warm-up")  # fonts, codec init
        results = {case: render_seconds(*case, folder, args.repeat) for case in CASES}
        sizes = {case: (folder / f"{case[0]}-{case[1]}-0" / "video.mp4").stat().st_size for case in CASES}
    base = results[("1280x720", 4)][0]
    load = os.getloadavg()[0]
    print(
        f"soranb emulator render benchmark (Python {platform.python_version()}, {os.cpu_count()} CPUs, load {load:.1f})"
    )
    print(
        f"{'size':<10} {'video s':>7} {'render s':>9} {'CPU s':>6} {'x 4s 720p':>10} {'x real time':>12} {'MP4 MB':>7}"
    )
    for (size, seconds), (took, cpu) in results.items():
        print(
            f"{size:<10} {seconds:>7} {took:>9.2f} {cpu:>6.2f} {took / base:>10.2f} {seconds / took:>12.1f} "
            f"{sizes[(size, seconds)] / 1e6:>7.2f}"
        )


if __name__ == "__main__":
    main()
