"""How long the emulator takes to render its MP4s (video, thumbnail and spritesheet together).

    .venv/bin/python benchmarks/bench_render.py [--repeat N]

Renders 4, 8, 12 and 20 s clips at 720p (1280x720), 1024p (1792x1024) and 1080p (1920x1080),
each with its AAC audio track, in one run and prints the render time, the ratio to the 4 s 720p
render, and how much faster than real time each render is (video seconds / render seconds). The
best of --repeat runs counts. The last column shows what the sound costs: the audio track alone
(the tone generator and the AAC encoder) for the same length.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from soranb.catalog import parse_size
from soranb.emulator.render import FPS, RenderSpec, _Tone, render_media

CASES = [(size, seconds) for size in ("1280x720", "1792x1024", "1920x1080") for seconds in (4, 8, 12, 20)]
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


def audio_seconds(seconds: int) -> float:
    """Wall seconds to make and encode the audio track alone for a clip of `seconds` (into memory)."""
    import io

    import av

    started = time.perf_counter()
    with av.open(io.BytesIO(), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=24_000, layout="mono")
        tone = _Tone(FPS)
        for index in range(seconds * FPS):
            for packet in audio.encode(tone.next((index % FPS) / FPS)):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return time.perf_counter() - started


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
    print("every MP4 has its AAC audio track; 'audio s' is the part of the render the sound costs")
    print(
        f"{'size':<10} {'video s':>7} {'render s':>9} {'CPU s':>6} {'x 4s 720p':>10} {'x real time':>12} {'MP4 MB':>7}"
        f" {'audio s':>8}"
    )
    audio = {seconds: audio_seconds(seconds) for seconds in sorted({s for _, s in CASES})}
    for (size, seconds), (took, cpu) in results.items():
        print(
            f"{size:<10} {seconds:>7} {took:>9.2f} {cpu:>6.2f} {took / base:>10.2f} {seconds / took:>12.1f} "
            f"{sizes[(size, seconds)] / 1e6:>7.2f} {audio[seconds]:>8.2f}"
        )


if __name__ == "__main__":
    main()
