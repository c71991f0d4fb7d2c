"""How `soranb report` scales: 1,000 records in a local store, every completed one with a WebP thumbnail.

Measures, in one run: writing the whole offline report (store reads, one JPEG data URI per thumbnail,
the page), its size, and, under the same conditions, building the 1,000-record history grid
(`bench_history.py`'s measure) as the yardstick. Target: the report in under 5 s. Prints ratios;
asserts nothing.

    .venv/bin/python benchmarks/bench_report.py [--records 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import tempfile
import time
from pathlib import Path

from bench_history import fill, make_history, ratio
from PIL import Image

from soranb.config import Settings
from soranb.records import GenerationRecord
from soranb.report_page import write_report
from soranb.service import VideoService
from soranb.store.base import RecordQuery

REPORT_TARGET_S = 5.0


def thumbnail_webp() -> bytes:
    """A thumbnail like the provider's: 1280x720 WebP of a gradient."""
    image = Image.linear_gradient("L").resize((1280, 720)).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=80)
    return out.getvalue()


def place_thumbnails(data_dir: Path, records: list[GenerationRecord]) -> int:
    data = thumbnail_webp()
    folder = data_dir / "media" / "thumbnails"
    folder.mkdir(parents=True, exist_ok=True)
    placed = 0
    for record in records:
        if record.thumbnail_key:
            (data_dir / "media" / record.thumbnail_key).write_bytes(data)
            placed += 1
    return placed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soranb-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        records = make_history(args.records)
        asyncio.run(fill(data_dir, records))
        thumbs = place_thumbnails(data_dir, records)
        settings = Settings.from_env({"SORANB_DATA_DIR": str(data_dir)}, dotenv=False)
        service = VideoService(settings, autostart=False)
        try:
            out = Path(tmp) / "report.html"
            started = time.perf_counter()
            count = write_report(service, out, RecordQuery(), limit=args.records)
            report_s = time.perf_counter() - started
            size = out.stat().st_size

            history_s = None
            try:  # the yardstick: the history grid over the same store
                from soranb.widgets import HistoryGrid, Toasts

                started = time.perf_counter()
                HistoryGrid(service, page_size=12, toasts=Toasts(dismiss_after=None))
                history_s = time.perf_counter() - started
            except Exception as exc:  # the widgets change independently; the report's figure still stands
                print(f"  (history grid not measured: {type(exc).__name__}: {exc})")
        finally:
            service.close()

    print(f"soranb report benchmark: {count} records, {thumbs} WebP thumbnails (1280x720) embedded as JPEG data URIs")
    print(f"  write the report         {report_s:8.3f} s    {ratio(report_s, REPORT_TARGET_S)}")
    print(f"  report size              {size:8,d} bytes ({size / max(count, 1):,.0f} per record)")
    if history_s is not None:
        times = report_s / history_s
        print(f"  build the history grid   {history_s * 1000:8.1f} ms   report / history build: {times:.1f}")


if __name__ == "__main__":
    main()
