"""How the history grid scales: 1,000 records in a local store, one page rendered.

Measures, in one run: building the grid (store queries + one page of cards), applying
one progress event to a card, turning a page, and the size of the saved widget state.
Targets: build under 1 s, one update under 50 ms. Prints ratios; asserts nothing.

    .venv/bin/python benchmarks/bench_history.py [--records 1000] [--page-size 12]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from soranb.config import Settings
from soranb.events import ServiceEvent
from soranb.records import GenerationRecord, Status, utcnow
from soranb.service import VideoService
from soranb.store.local import LocalStore
from soranb.widgets import HistoryGrid, Toasts
from soranb.widgets._base import state_json, widget_tree

BUILD_TARGET_S = 1.0
UPDATE_TARGET_S = 0.050


def make_history(count: int) -> list[GenerationRecord]:
    """Mostly completed videos, with some running and failed ones mixed in, one minute apart."""
    start = utcnow() - timedelta(minutes=count)
    records = []
    for i in range(count):
        status = Status.PROCESSING if i % 10 == 9 else Status.FAILED if i % 25 == 0 else Status.COMPLETED
        record = GenerationRecord(
            prompt=f"benchmark clip {i}: a slow pan across a harbour at dusk, gulls, light rain",
            model="sora-2" if i % 3 else "sora-2-pro",
            size="1280x720",
            seconds=(4, 8, 12)[i % 3],
            status=status,
            progress=100 if status == Status.COMPLETED else 40,
            created_at=start + timedelta(minutes=i),
            updated_at=start + timedelta(minutes=i),
        )
        if status == Status.COMPLETED:
            record = record.evolve(
                video_key=f"videos/{record.id}.mp4",
                thumbnail_key=f"thumbnails/{record.id}.webp",
                updated_at=record.updated_at,
            )
        elif status == Status.FAILED:
            record = record.evolve(error_message="moderation_blocked", updated_at=record.updated_at)
        records.append(record)
    return records


async def fill(data_dir: Path, records: list[GenerationRecord]) -> None:
    store = LocalStore(data_dir)
    await store.open()
    try:
        for record in records:
            await store.insert(record)
    finally:
        await store.close()


def ratio(value: float, target: float) -> str:
    return f"{value / target:.2f}x of target ({'ok' if value <= target else 'OVER'})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=12)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soranb-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        records = make_history(args.records)
        started = time.perf_counter()
        asyncio.run(fill(data_dir, records))
        fill_s = time.perf_counter() - started

        settings = Settings.from_env({"SORANB_DATA_DIR": str(data_dir)}, dotenv=False)
        service = VideoService(settings, autostart=False)
        try:
            toasts = Toasts(dismiss_after=None)
            started = time.perf_counter()
            grid = HistoryGrid(service, page_size=args.page_size, toasts=toasts)
            build_s = time.perf_counter() - started

            running = [c.record for c in grid.cards if c.record.status == Status.PROCESSING]
            target = running[0] if running else grid.cards[0].record
            others = {id(c) for c in grid.cards if c.record.id != target.id}
            timings = []
            for step in range(50):
                event = ServiceEvent("progress", target.evolve(progress=41 + step % 50))
                started = time.perf_counter()
                grid._on_event(event)
                timings.append(time.perf_counter() - started)
            update_s = statistics.median(timings)
            assert {id(c) for c in grid.cards if c.record.id != target.id} == others  # nothing rebuilt

            started = time.perf_counter()
            grid.go_to(1)
            page_s = time.perf_counter() - started
            grid.go_to(0)

            state = state_json(grid)
            models = len(widget_tree(grid))
        finally:
            service.close()

    print(f"soranb history benchmark: {args.records} records, page size {args.page_size}")
    print(f"  fill store (setup)       {fill_s:8.3f} s")
    print(f"  build grid               {build_s * 1000:8.1f} ms   {ratio(build_s, BUILD_TARGET_S)}")
    print(
        f"  apply one update event   {update_s * 1000:8.3f} ms   {ratio(update_s, UPDATE_TARGET_S)}"
        f"   (median of {len(timings)}, max {max(timings) * 1000:.3f} ms)"
    )
    print(f"  turn a page              {page_s * 1000:8.1f} ms")
    print(f"  saved widget state       {len(state.encode()):8,d} bytes in {models} widget models")


if __name__ == "__main__":
    main()
