"""What the one hand-off from the service thread to the views costs, and what a blocked views' thread leaves.

Measures, in one run, on a history grid of 12 running jobs (local store, no browser):
- per event: the service emitting progress events that a `Delivery` hands to the views' thread,
  against applying the same events directly on the emitting thread (what the grid did before);
- a blocked views' thread (a cell that runs `service.wait(...)` for `--ticks` seconds at one progress
  event per job per second): the card updates and the time to catch up once it is free, with only the
  newest waiting progress per job kept (`call_latest`) against every event queued (`call`).
Prints figures and ratios; asserts nothing.

    .venv/bin/python benchmarks/bench_delivery.py [--events 2000] [--ticks 600]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from soranb.config import Settings
from soranb.events import ServiceEvent
from soranb.records import GenerationRecord, Status, utcnow
from soranb.service import VideoService
from soranb.store.local import LocalStore
from soranb.widgets import HistoryGrid, Toasts

JOBS = 12


def running_jobs() -> list[GenerationRecord]:
    start = utcnow() - timedelta(minutes=JOBS)
    return [
        GenerationRecord(
            prompt=f"benchmark job {i}: a slow pan across a harbour at dusk",
            model="sora-2",
            size="1280x720",
            seconds=8,
            status=Status.PROCESSING,
            progress=1,
            created_at=start + timedelta(minutes=i),
            updated_at=start + timedelta(minutes=i),
        )
        for i in range(JOBS)
    ]


async def fill(data_dir: Path, records: list[GenerationRecord]) -> None:
    store = LocalStore(data_dir)
    await store.open()
    try:
        for record in records:
            await store.insert(record)
    finally:
        await store.close()


def count_updates(grid: HistoryGrid) -> list[int]:
    """Counts card updates (each one is a few widget messages in a browser)."""
    counter = [0]
    for card in grid.cards:
        real = card.update

        def update(record: GenerationRecord, real: Any = real) -> Any:
            counter[0] += 1
            return real(record)

        card.update = update  # type: ignore[method-assign]
    return counter


def progress_events(jobs: list[GenerationRecord], rounds: int) -> list[ServiceEvent]:
    return [ServiceEvent("progress", job.evolve(progress=1 + n % 99)) for n in range(rounds) for job in jobs]


def per_event(service: VideoService, jobs: list[GenerationRecord], count: int) -> tuple[float, float]:
    """Seconds per event: handed over and applied by the views' thread, and applied directly."""
    events = progress_events(jobs, max(1, count // len(jobs)))
    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None))
    try:
        started = time.perf_counter()
        for event in events:
            grid._hand_over(event)
            grid.flush()  # one at a time: the full round trip of each hand-off
        handed = (time.perf_counter() - started) / len(events)
        started = time.perf_counter()
        for event in events:
            grid._on_event(event)
        direct = (time.perf_counter() - started) / len(events)
    finally:
        grid.close()
    return handed, direct


def catch_up(service: VideoService, jobs: list[GenerationRecord], ticks: int, coalesce: bool) -> tuple[int, float]:
    """Card updates and seconds to catch up after the views' thread was busy for `ticks` rounds."""
    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None))
    try:
        if not coalesce:
            grid._delivery.call_latest = lambda _key, fn, *args: grid._delivery.call(fn, *args)  # type: ignore[method-assign]
        counter = count_updates(grid)
        gate = threading.Event()
        grid._delivery.call(gate.wait)
        for event in progress_events(jobs, ticks):
            grid._hand_over(event)
        started = time.perf_counter()
        gate.set()
        grid.flush(timeout=600)
        return counter[0], time.perf_counter() - started
    finally:
        grid.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=600)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soranb-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        jobs = running_jobs()
        asyncio.run(fill(data_dir, jobs))
        service = VideoService(Settings.from_env({"SORANB_DATA_DIR": str(data_dir)}, dotenv=False), autostart=False)
        try:
            handed, direct = per_event(service, jobs, args.events)
            kept_updates, kept_s = catch_up(service, jobs, args.ticks, coalesce=True)
            all_updates, all_s = catch_up(service, jobs, args.ticks, coalesce=False)
        finally:
            service.close()

    queued = args.ticks * JOBS
    print(f"soranb delivery benchmark: {JOBS} running jobs, {args.events} events, {args.ticks} s blocked")
    print(f"  one event, handed over and applied   {handed * 1e6:9.1f} us")
    print(f"  one event, applied directly          {direct * 1e6:9.1f} us   hand-off / direct {handed / direct:.2f}")
    print(f"  after {queued:,} queued progress events:")
    print(f"    newest per job only (call_latest)  {kept_updates:9,d} card updates  {kept_s * 1000:8.1f} ms")
    print(f"    every event (call)                 {all_updates:9,d} card updates  {all_s * 1000:8.1f} ms")
    print(
        f"    ratio every / newest               {all_updates / max(1, kept_updates):9.1f} x updates "
        f"{all_s / max(kept_s, 1e-9):8.1f} x time"
    )


if __name__ == "__main__":
    main()
