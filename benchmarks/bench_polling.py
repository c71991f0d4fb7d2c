"""Status requests per job and completion-detection delay for 20 concurrent jobs.

Three watchers follow the same 20 jobs on one emulator served by uvicorn on
127.0.0.1, at the same time:

- soranb: the VideoService's background poller (one list call per refresh, ETA-driven);
- a fixed 10 s loop: every 10 s, one GET per open job;
- SDK poll(): `client.videos.poll(id, poll_interval_ms=1000)` per job (the SDK's 1 s default).

The true completion moment of each job is read from the emulator's own job table
every 50 ms. Run: `.venv/bin/python benchmarks/bench_polling.py [--speed 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import openai
import uvicorn

from soranb.config import Settings
from soranb.emulator import EmulatorConfig, create_app, uvicorn_config
from soranb.request import GenerationRequest
from soranb.service import VideoService

JOBS = [("sora-2", 4)] * 8 + [("sora-2", 8)] * 6 + [("sora-2", 12)] * 4 + [("sora-2-pro", 4)] * 2  # 20 jobs, 1280x720


class StatusCounter:
    """Counts status requests (list and retrieve, not downloads) made through one client."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, request: httpx2.Request) -> None:
        path = request.url.path
        if request.method == "GET" and path.startswith("/v1/videos") and not path.endswith("/content"):
            self.count += 1


def start_server(app, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn_config(app, port=port))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def watch_truth(table, job_ids: list[str], truth: dict[str, float], stop: threading.Event) -> None:
    while not stop.is_set() and len(truth) < len(job_ids):
        for job_id in job_ids:
            if job_id not in truth:
                job = table.get(job_id)
                if job is not None and table.state(job).status == "completed":
                    truth[job_id] = time.monotonic()
        time.sleep(0.05)


def sdk_client(base_url: str, counter: StatusCounter) -> openai.AsyncOpenAI:
    http = httpx2.AsyncClient(event_hooks={"request": [counter]}, timeout=30)
    return openai.AsyncOpenAI(api_key="bench", base_url=base_url, http_client=http, max_retries=2)


async def fixed_loop(base_url: str, job_ids: list[str], seen: dict[str, float], counter: StatusCounter) -> None:
    client = sdk_client(base_url, counter)
    open_ids = set(job_ids)
    while open_ids:
        for job_id in sorted(open_ids):
            video = await client.videos.retrieve(job_id)
            if video.status in ("completed", "failed"):
                seen[job_id] = time.monotonic()
                open_ids.discard(job_id)
        if open_ids:
            await asyncio.sleep(10)
    await client.close()


async def sdk_poll(base_url: str, job_ids: list[str], seen: dict[str, float], counter: StatusCounter) -> None:
    client = sdk_client(base_url, counter)

    async def one(job_id: str) -> None:
        await client.videos.poll(job_id, poll_interval_ms=1000)
        seen[job_id] = time.monotonic()

    await asyncio.gather(*(one(job_id) for job_id in job_ids))
    await client.close()


def summarise(name: str, counter: StatusCounter, seen: dict[str, float], truth: dict[str, float]) -> dict:
    delays = [max(0.0, seen[j] - truth[j]) for j in truth if j in seen]
    return {
        "name": name,
        "requests": counter.count,
        "per_job": counter.count / len(JOBS),
        "mean_delay": statistics.mean(delays),
        "max_delay": max(delays),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", type=float, default=4.0, help="emulator clock speed (1 = real service)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="soranb-bench-"))
    app = create_app(EmulatorConfig(speed=args.speed, state_dir=workdir / "emulator"))
    port = free_port()
    server = start_server(app, port)
    base_url = f"http://127.0.0.1:{port}/v1"

    settings = Settings.from_env(
        {
            "SORANB_DATA_DIR": str(workdir / "data"),
            "SORANB_EMULATOR_URL": base_url,
            "SORANB_EMULATOR_SPEED": str(args.speed),
            "SORANB_MAX_CONCURRENT_JOBS": str(len(JOBS)),
        },
        dotenv=False,
    )
    soranb_counter = StatusCounter()
    service = VideoService(settings, autostart=False)
    service.provider._http.event_hooks["request"].append(soranb_counter)
    soranb_seen: dict[str, float] = {}
    by_record: dict[str, str] = {}
    service.subscribe(
        lambda e: (
            soranb_seen.setdefault(by_record[e.record.id], time.monotonic())
            if e.kind == "completed" and e.record and e.record.id in by_record
            else None
        )
    )

    records = [
        service.generate(GenerationRequest(f"bench clip {i}: {model} {seconds}s", model, "1280x720", seconds))
        for i, (model, seconds) in enumerate(JOBS)
    ]
    job_ids = [r.openai_job_id or "" for r in records]
    by_record.update({r.id: r.openai_job_id or "" for r in records})
    truth: dict[str, float] = {}
    stop = threading.Event()
    threading.Thread(target=watch_truth, args=(app.state.emulator.table, job_ids, truth, stop), daemon=True).start()

    started = time.monotonic()
    service.start()
    fixed_counter, sdk_counter = StatusCounter(), StatusCounter()
    fixed_seen: dict[str, float] = {}
    sdk_seen: dict[str, float] = {}

    async def others() -> None:
        await asyncio.gather(
            fixed_loop(base_url, job_ids, fixed_seen, fixed_counter),
            sdk_poll(base_url, job_ids, sdk_seen, sdk_counter),
        )

    asyncio.run(others())
    service.wait_all(timeout=600)
    stop.set()
    elapsed = time.monotonic() - started
    service.close()
    server.should_exit = True

    rows = [
        summarise("soranb", soranb_counter, soranb_seen, truth),
        summarise("fixed 10 s loop (GET each)", fixed_counter, fixed_seen, truth),
        summarise("SDK poll() (1 s each)", sdk_counter, sdk_seen, truth),
    ]
    print(f"20 concurrent jobs, emulator speed x{args.speed:g}, {elapsed:.0f} s wall, status requests only")
    print(f"{'watcher':<28} {'requests':>8} {'per job':>8} {'mean delay':>11} {'max delay':>10}")
    for row in rows:
        print(
            f"{row['name']:<28} {row['requests']:>8} {row['per_job']:>8.2f} "
            f"{row['mean_delay']:>10.2f}s {row['max_delay']:>9.2f}s"
        )
    ours, fixed, sdk = rows
    print(f"soranb / fixed 10 s loop requests: {ours['requests'] / fixed['requests']:.3f} (target <= 0.200)")
    print(f"soranb / SDK poll() requests: {ours['requests'] / sdk['requests']:.4f} (target <= 0.0333)")
    print(f"soranb max completion-detection delay: {ours['max_delay']:.2f} s (target <= 1.5 s)")


if __name__ == "__main__":
    main()
