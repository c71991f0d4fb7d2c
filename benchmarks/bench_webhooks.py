"""Status requests and completion-to-stored lag for the same 20 staggered jobs, with and without webhooks.

Two cases run at once, each in its own process with its own service and local store, against one
emulator in another process (`soranb emulator`, over 127.0.0.1) that sends signed `video.completed` /
`video.failed` events to the webhooks case's receiver:

- polling: no webhook secret; soranb's poll schedule alone (its pace guess right);
- webhooks: `SORANB_WEBHOOK_SECRET` and `SORANB_WEBHOOK_PORT` set; the receiver finishes jobs on
  events and polling is only the safety net. It also gets the polling case's events, and ignores them.

In each case 20 jobs (the polling benchmark's mix, 1280x720) arrive one every 10 s through
`generate()` while the service runs, with the default cap of 4 concurrent jobs. A job's true completion
is read afterwards from the emulator's files (its creation plus its duration, or its render's end if
later); the lag runs from there to soranb's `completed` event (video and thumbnail stored).

Run: `.venv/bin/python benchmarks/bench_webhooks.py` (about 10 minutes at the real pace). `--pace N`
runs the emulator N times faster and scales the stagger and soranb's guess by 1/N (a quick look; the
lag target is not scaled: an event's delivery does not get faster with the emulator).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_polling import StatusCounter, free_port, jobs_in_order, true_completion

CASES = ("polling", "webhooks")
SECRET = "whsec_" + base64.b64encode(b"soranb-bench-webhooks-secret-32b").decode()
TARGET_PER_JOB = 0.1
TARGET_LAG_S = 1.0


def run_case(case: str, base_url: str, workdir: Path, pace: float, count: int, stagger: float, port: int) -> dict:
    from soranb.config import Settings
    from soranb.request import GenerationRequest
    from soranb.service import VideoService

    env = {"SORANB_DATA_DIR": str(workdir / "data"), "SORANB_EMULATOR_URL": base_url}
    if case == "webhooks":
        env |= {"SORANB_WEBHOOK_SECRET": SECRET, "SORANB_WEBHOOK_PORT": str(port)}
    service = VideoService(Settings.from_env(env, dotenv=False), autostart=False)
    service.schedule.pace = 1.0 / pace  # the guess is right: what the polling benchmark calls "correct"
    service.schedule.late_s /= pace
    counter = StatusCounter()
    service.provider._http.event_hooks["request"].append(counter)  # also starts the receiver
    stored: dict[str, float] = {}

    def on_event(event: Any) -> None:
        if event.kind == "completed" and event.record is not None and event.record.openai_job_id:
            stored[event.record.openai_job_id] = time.time()

    service.subscribe(on_event)
    lines: list[str] = []
    service.log.subscribe(lambda e: lines.append(f"{e.time:%H:%M:%S.%f} {e.level} {e.message}"))
    service.start()
    started = time.time()
    for i, (model, seconds) in enumerate(jobs_in_order(count)):
        time.sleep(max(0.0, started + i * stagger / pace - time.time()))
        service.generate(GenerationRequest(f"bench {case} clip {i}: {model} {seconds}s", model, "1280x720", seconds))
    service.wait_all(timeout=3600 / pace)
    elapsed = time.time() - started
    (workdir / "debug.log").write_text("\n".join(lines))  # what soranb did, for a closer look
    receiver = service._webhooks
    events = receiver.events if receiver is not None else 0
    service.close()
    return {"case": case, "elapsed": elapsed, "requests": counter.count, "stored": stored, "events": events}


def summarise(result: dict[str, Any], state_dir: Path, count: int) -> dict[str, Any]:
    lags = [max(0.0, at - true_completion(state_dir, job_id)) for job_id, at in result["stored"].items()]
    return {
        "case": result["case"],
        "jobs": len(lags),
        "requests": result["requests"],
        "per_job": result["requests"] / count,
        "mean": statistics.mean(lags) if lags else math.nan,
        "max": max(lags) if lags else math.nan,
        "events": result["events"],
        "elapsed": result["elapsed"],
    }


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pace", type=float, default=1.0, help="emulator speed (1 = as slow as the real service)")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--stagger", type=float, default=10.0, help="seconds between two new jobs (at pace 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--hook-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = run_case(args.child, args.base_url, args.workdir, args.pace, args.jobs, args.stagger, args.hook_port)
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="soranb-hookbench-"))
    state_dir = work / "emulator"
    port, hook_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    hook_url = f"http://127.0.0.1:{hook_port}/soranb/webhooks"
    command = [sys.executable, "-m", "soranb.cli", "emulator", "--port", str(port), "--speed", str(args.pace)]
    command += ["--state-dir", str(state_dir), "--webhook-url", hook_url]
    emulator = subprocess.Popen(
        command,
        env={**os.environ, "SORANB_EMULATOR_WEBHOOK_SECRET": SECRET},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        knobs = ["--base-url", base_url, "--pace", str(args.pace), "--jobs", str(args.jobs)]
        knobs += ["--stagger", str(args.stagger), "--hook-port", str(hook_port)]
        children = [
            subprocess.Popen(
                [sys.executable, __file__, "--child", case, "--workdir", str(work / case), *knobs],
                stdout=subprocess.PIPE,
                text=True,
            )
            for case in CASES
        ]
        results = []
        for child in children:
            out, _ = child.communicate()
            if child.returncode != 0:
                raise SystemExit(f"a benchmark case failed (exit {child.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        emulator.terminate()
        emulator.wait(10)

    rows = {row["case"]: row for row in (summarise(r, state_dir, args.jobs) for r in results)}
    print(f"Webhooks benchmark, {started}: one run, both cases at once, each in its own process")
    print(f"  {args.jobs} jobs per case (the polling benchmark's mix; 1280x720), one new job every ")
    print(f"  {args.stagger / args.pace:g} s; default cap of 4 concurrent jobs; emulator pace x{args.pace:g}")
    print("  (1 = the real service's render times), in its own process over 127.0.0.1, sending signed events")
    print("  to the webhooks case's receiver; status requests only (list and retrieve); lag runs from the")
    print("  job's true completion to its video stored; the machine's 2 cores are shared with other work")
    print(f"  each case's debug log: {work}/<case>/debug.log\n")
    print(f"  {'case':<10} {'jobs':>4} {'requests':>8} {'per job':>8} {'mean lag':>9} {'max lag':>8} {'events':>6}")
    for row in rows.values():
        print(
            f"  {row['case']:<10} {row['jobs']:>4} {row['requests']:>8} {row['per_job']:>8.2f} "
            f"{row['mean']:>8.2f}s {row['max']:>7.2f}s {row['events']:>6}"
        )
    hooks, polls = rows["webhooks"], rows["polling"]
    request_ratio = hooks["requests"] / polls["requests"] if polls["requests"] else math.nan
    print(f"\nwebhooks / polling: status requests {request_ratio:.3f}, max lag {hooks['max'] / polls['max']:.3f}")
    print(
        f"webhooks: {hooks['per_job']:.2f} status requests per job (target <= {TARGET_PER_JOB}), "
        f"max lag {hooks['max']:.2f} s (target <= {TARGET_LAG_S:g} s)"
    )


if __name__ == "__main__":
    main()
