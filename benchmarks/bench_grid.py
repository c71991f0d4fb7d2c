"""How the explorer's views scale: a 4x3 variation grid built, and the 1,000-record report written.

Measures, in one run and on one local store of 1,000 records (`bench_history.py`'s history, with
WebP thumbnails): building the 1,000-record history grid (the yardstick), building a 4x3
`VariationGrid` over twelve stored records of a plan (4 prompts x 3 lengths: the lookup of the plan's
records, pricing, headers and twelve live cards), and writing the whole offline report
(`soranb report`). Targets: the grid under 1 s, the report under 5 s. Prints each as a ratio to its
target and to the history build; asserts nothing.

    .venv/bin/python benchmarks/bench_grid.py [--records 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench_history import fill, make_history, ratio
from bench_report import place_thumbnails

from soranb.batch import line_ids
from soranb.config import Settings
from soranb.records import GenerationRecord, Status
from soranb.report_page import write_report
from soranb.service import VideoService
from soranb.store.base import RecordQuery
from soranb.variation import VariationPlan, plan_variations
from soranb.widgets import HistoryGrid, Toasts, VariationGrid

GRID_TARGET_S = 1.0
REPORT_TARGET_S = 5.0
PROMPTS = [f"a lighthouse at dusk, take {n}: waves, gulls, slow pan" for n in range(4)]


def grid_records(plan: VariationPlan) -> list[GenerationRecord]:
    """The plan's cells as finished records, under the ids `service.vary` gives them (so the grid finds them)."""
    ids = line_ids(plan.requests, f"vary:{plan.key}")
    return [
        GenerationRecord(
            request.prompt,
            request.model,
            request.size,
            request.seconds,
            id=record_id,
            status=Status.COMPLETED,
            progress=100,
            video_key=f"videos/{record_id}.mp4",
            thumbnail_key=f"thumbnails/{record_id}.webp",
        )
        for request, record_id in zip(plan.requests, ids, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()

    plan = plan_variations(PROMPTS, seconds=[4, 8, 12], key="bench")
    with tempfile.TemporaryDirectory(prefix="soranb-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        history = make_history(args.records - len(plan.made))
        records = history + grid_records(plan)
        asyncio.run(fill(data_dir, records))
        place_thumbnails(data_dir, records)
        settings = Settings.from_env({"SORANB_DATA_DIR": str(data_dir)}, dotenv=False)
        service = VideoService(settings, autostart=False)
        try:
            toasts = Toasts(dismiss_after=None)
            started = time.perf_counter()
            history_view = HistoryGrid(service, page_size=12, toasts=toasts)
            history_s = time.perf_counter() - started
            history_view.close()

            started = time.perf_counter()
            grid = VariationGrid(service, plan=plan, toasts=toasts)
            grid_s = time.perf_counter() - started
            shown = sum(1 for cell in grid.cells if cell.card is not None)
            grid.close()

            out = Path(tmp) / "report.html"
            started = time.perf_counter()
            count = write_report(service, out, RecordQuery(), limit=args.records)
            report_s = time.perf_counter() - started
        finally:
            service.close()

    print(f"soranb grid and report benchmark: {len(records)} records in a local store, WebP thumbnails")
    print(f"  build the history grid         {history_s * 1000:8.1f} ms   (the yardstick: 1.00)")
    print(
        f"  build a 4x3 variation grid     {grid_s * 1000:8.1f} ms   {ratio(grid_s, GRID_TARGET_S)}"
        f"   / history build: {grid_s / history_s:.2f}   ({shown} live cards)"
    )
    print(
        f"  write the report ({count} rows)  {report_s:8.3f} s    {ratio(report_s, REPORT_TARGET_S)}"
        f"   / history build: {report_s / history_s:.2f}"
    )


if __name__ == "__main__":
    main()
