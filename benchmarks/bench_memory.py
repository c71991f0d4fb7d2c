"""Peak memory while storing a 200 MB video: soranb's streamed path vs the SDK's own two ways to download.

The emulator runs as its own process (`soranb emulator`) so the body really
crosses a socket (in-process ASGI collects whole bodies). One job is made, then
its MP4 is replaced on the emulator's disk by a 200 MB file. Each contender runs
in a fresh process and reports how much its peak RSS grew while storing it:

- soranb: a VideoService poll step (download to a temp file in chunks, move into the store);
- SDK buffered: `client.videos.download_content(id).write_to_file(path)` (reads the whole body first);
- SDK streamed, the floor: `client.videos.with_streaming_response.download_content(id)` then
  `stream_to_file(path)` (nothing but the download: no store, no checks).

Run: `.venv/bin/python benchmarks/bench_memory.py [--mb 200]`.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2

SOR_CHILD = r"""
import json, resource, sys
from soranb.config import Settings
from soranb.records import GenerationRecord, Status
from soranb.service import VideoService
base_url, data_dir, job_id = sys.argv[1:4]
settings = Settings.from_env({"SORANB_DATA_DIR": data_dir, "SORANB_EMULATOR_URL": base_url}, dotenv=False)
service = VideoService(settings, autostart=False)
record = GenerationRecord(prompt="memory bench", model="sora-2", size="1280x720", seconds=4,
                          status=Status.PROCESSING, openai_job_id=job_id)
service._run(service.store.insert(record))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = service.poll_once()
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stored = service.media_path(service.get(record.id).video_key)
print(json.dumps({"grew_kb": after - before, "bytes": stored.stat().st_size, "completed": report.completed}))
service.close()
"""

SDK_CHILD = r"""
import json, resource, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import openai
base_url, out_path, job_id = sys.argv[1:4]
client = openai.OpenAI(api_key="bench", base_url=base_url)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
client.videos.download_content(job_id).write_to_file(out_path)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
import os
print(json.dumps({"grew_kb": after - before, "bytes": os.path.getsize(out_path)}))
"""


SDK_STREAM_CHILD = r"""
import json, os, resource, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import openai
base_url, out_path, job_id = sys.argv[1:4]
client = openai.OpenAI(api_key="bench", base_url=base_url)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with client.videos.with_streaming_response.download_content(job_id) as response:
    response.stream_to_file(out_path)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"grew_kb": after - before, "bytes": os.path.getsize(out_path)}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_child(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soranb-membench-"))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "soranb.cli", "emulator", "--port", str(port), "--speed", "1000"]
    server = subprocess.Popen(
        [*command, "--state-dir", str(work / "emulator")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx2.Client(base_url=base_url, headers={"Authorization": "Bearer bench"}, timeout=30) as http:
            for _ in range(200):
                try:
                    http.get("/videos")
                    break
                except httpx2.TransportError:
                    time.sleep(0.1)
            job = http.post("/videos", data={"prompt": "a 200 MB river", "size": "1280x720", "seconds": "4"}).json()
            while http.get(f"/videos/{job['id']}").json()["status"] != "completed":
                time.sleep(0.2)
        video = work / "emulator" / "media" / job["id"] / "video.mp4"
        chunk = os.urandom(1024 * 1024)
        with video.open("wb") as out:
            for _ in range(args.mb):
                out.write(chunk)

        ours = run_child(SOR_CHILD, base_url, str(work / "data"), job["id"])
        sdk = run_child(SDK_CHILD, base_url, str(work / "sdk.mp4"), job["id"])
        floor = run_child(SDK_STREAM_CHILD, base_url, str(work / "sdk-streamed.mp4"), job["id"])
    finally:
        server.terminate()
        server.wait(10)

    size_mb = args.mb
    print(f"storing one {size_mb} MB video from the emulator over 127.0.0.1 (peak RSS growth, each in a fresh process)")
    print(f"{'path':<48} {'stored MB':>9} {'peak RSS growth':>16}")
    rows = (
        ("soranb poll step (streamed, then stored)", ours),
        ("SDK download_content().write_to_file (buffered)", sdk),
        ("SDK with_streaming_response ... stream_to_file", floor),
    )
    for name, row in rows:
        print(f"{name:<48} {row['bytes'] / 2**20:>9.0f} {row['grew_kb'] / 1024:>13.1f} MB")

    def ratio(other: dict) -> float:
        return ours["grew_kb"] / other["grew_kb"] if other["grew_kb"] > 0 else float("nan")

    print(f"soranb / SDK buffered peak growth: {ratio(sdk):.3f}")
    print(f"soranb / SDK streamed (the floor) peak growth: {ratio(floor):.2f}")
    print(f"soranb grows {ours['grew_kb'] / 1024:.1f} MB (target < 20 MB)")


if __name__ == "__main__":
    main()
