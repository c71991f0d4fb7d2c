"""Start-up is light: browsing, listing and deleting history never load the SDK, PyAV or a web server.

Each check runs in a fresh interpreter (so nothing imported by other tests counts) and looks at
`sys.modules` after the user's action; timings belong to `benchmarks/bench_startup.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("openai", "av", "starlette", "uvicorn")

SEED = """
import asyncio, dataclasses, sys
from soranb.records import GenerationRecord, Status
from soranb.store.base import media_key
from soranb.store.local import LocalStore

async def seed(folder, count):
    store = LocalStore(folder)
    await store.open()
    for i in range(count):
        record = GenerationRecord(f"clip {i}", "sora-2", "1280x720", 4, status=Status.COMPLETED, progress=100,
                                  openai_job_id=f"video_{i:048x}")
        await store.insert(dataclasses.replace(record, video_key=media_key("videos", record.id),
                                               thumbnail_key=media_key("thumbnails", record.id)))
    await store.insert(GenerationRecord("never sent", "sora-2", "1280x720", 4, status=Status.FAILED,
                                        error_message="refused", id="00000000-0000-4000-8000-000000000000"))
    await store.close()

asyncio.run(seed(sys.argv[1], int(sys.argv[2])))
"""

REPORT = "import json, sys; print(json.dumps(sorted(m for m in {heavy} if m in sys.modules)))"


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SORANB_", "OPENAI_", "SUPABASE_"))}
    env.update(SORANB_DATA_DIR=str(data), SORANB_POLL_INTERVAL_MAX="0.2")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # never this machine's saved keys
    return env


def _loaded_after(script: str, data: Path) -> list[str]:
    """Run `script` in a fresh interpreter on a seeded local store; the heavy modules it loaded."""
    if not (data / "soranb.db").exists():
        subprocess.run([sys.executable, "-c", SEED, str(data), "5"], check=True, timeout=60, env=_env(data))
    code = script + "\n" + REPORT.format(heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=data.parent, env=_env(data), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_a_notebook_that_browses_history_loads_no_sdk_renderer_or_server(tmp_path: Path) -> None:
    script = """
import threading
import soranb
from soranb import HistoryGrid, RecordQuery, get_service, history_table_html, media_src
from soranb.service import VideoService

service = VideoService(autostart=False)
asked = threading.Event()

def noting(method):
    async def asking(query):  # the poller's question "which jobs are open?"
        try:
            return await method(query)
        finally:
            if query == RecordQuery.open_jobs():
                asked.set()
    return asking

service.store.count, service.store.query = noting(service.store.count), noting(service.store.query)
service.start()
for _ in range(2):  # two rounds of the background poller, not just its start
    assert asked.wait(20), "the poller never asked the store"
    asked.clear()
grid = HistoryGrid(service)
records = service.list_records(RecordQuery(limit=12))
html = history_table_html(records, lambda key: media_src(service, key))
assert len(records) == 6 and html
service.close()
"""
    assert _loaded_after(script, tmp_path / "data") == []


def test_soranb_list_and_delete_load_no_sdk_renderer_or_server(tmp_path: Path) -> None:
    script = """
import contextlib, io, json
from soranb.cli import main

out = io.StringIO()
with contextlib.redirect_stdout(out):
    assert main(["list", "--json"]) == 0
    assert main(["delete", "00000000-0000-4000-8000-000000000000"]) == 0  # a record with no provider job
    assert main(["list", "--json"]) == 0
listed = out.getvalue()
assert listed.count('"status": "completed"') == 10 and "never sent" in listed.split("deleted")[0]
assert "never sent" not in listed.split("deleted")[1]
"""
    assert _loaded_after(script, tmp_path / "data") == []


def test_browsing_commands_never_load_the_keyring_for_a_provider_they_do_not_build(tmp_path: Path) -> None:
    """`soranb list`, `tag`, `budget` on a local store read no key: the keyring (a slow import) stays unloaded,
    while a command that may reach the provider (`delete`) still asks it for the key."""
    browse = """
import contextlib, io, sys
from soranb.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    assert main(["list", "--json"]) == 0
    assert main(["budget"]) == 0
print("keyring" in sys.modules)
"""
    data = tmp_path / "data"
    _loaded_after("pass", data)  # seeds the store
    run = subprocess.run(
        [sys.executable, "-c", browse], cwd=tmp_path, env=_env(data), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "False"
    delete = browse.replace('main(["budget"])', 'main(["delete", "00000000-0000-4000-8000-000000000000"])')
    run = subprocess.run(
        [sys.executable, "-c", delete], cwd=tmp_path, env=_env(data), capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "True"


def test_the_service_protocol_loads_nothing_heavy(tmp_path: Path) -> None:
    """Views and tests type against `ServiceLike`; importing it never loads the service's dependencies."""
    script = "import sys; import soranb.protocols; assert 'soranb.service' not in sys.modules"
    assert _loaded_after(script, tmp_path / "data") == []


def test_the_emulator_loads_uvicorn_only_to_serve(tmp_path: Path) -> None:
    in_process = """
from soranb.emulator import EmulatorConfig, EmulatorTransport, create_app
app = create_app(EmulatorConfig(state_dir=__import__("pathlib").Path("emu")))
app.state.emulator.close()
"""
    assert "uvicorn" not in _loaded_after(in_process, tmp_path / "data")
    assert "uvicorn" in _loaded_after("from soranb.emulator import serve", tmp_path / "data")


def test_a_browsing_kernel_still_finishes_a_job_the_cli_started(tmp_path: Path) -> None:
    """The poller that has not built its provider yet keeps asking the store, and takes over new jobs."""
    from soranb import GenerationRequest, Settings
    from soranb.records import Status
    from soranb.service import VideoService

    environ = {"SORANB_DATA_DIR": str(tmp_path / "data"), "SORANB_EMULATOR_SPEED": "240"}
    settings = Settings.from_env({**environ, "SORANB_POLL_INTERVAL_MAX": "0.2"}, dotenv=False)
    with VideoService(settings) as browsing:  # its poller runs; nothing is open, so no provider yet
        assert browsing.list_records() == []
        with VideoService(settings, autostart=False) as cli:  # `soranb generate` without --wait
            record = cli.generate(GenerationRequest("started from the CLI", "sora-2", "1280x720", 4))
        (finished,) = browsing.wait([record.id], timeout=60)
        assert finished.status == Status.COMPLETED and finished.video_key
        assert browsing.media_path(finished.video_key) is not None
