"""The soranb command, run in-process exactly as a user types it."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path

import av
import pytest

from soranb.cli import EXIT_NOT_SENT, main
from soranb.records import GenerationRecord
from soranb.store.local import LocalStore


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_wait_json_prints_a_completed_record_with_a_playable_file(cli_env, capsys):
    code, out, err = run(capsys, "generate", "a red fox running through snow", "--seconds", "4", "--wait", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "completed" and record["model"] == "sora-2"
    video = Path(record["video_path"])
    assert video.is_relative_to(cli_env / "soranb-data") and Path(record["thumbnail_path"]).is_file()
    with av.open(str(video)) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_generate_without_wait_returns_then_wait_finishes_and_list_filters(cli_env, capsys):
    code, out, _ = run(capsys, "generate", "first light over the sea", "--json")
    assert code == 0 and json.loads(out)["status"] == "processing"
    run(capsys, "generate", "a quiet street at dusk", "--json")
    code, out, err = run(capsys, "wait", "--json")
    assert code == 0, err
    assert {r["status"] for r in json.loads(out)} == {"completed"}
    assert "100.0%" not in out  # the progress bar goes to stderr, never into JSON

    code, out, _ = run(capsys, "list", "--json", "--search", "STREET")
    assert [r["prompt"] for r in json.loads(out)] == ["a quiet street at dusk"]
    code, out, _ = run(capsys, "list", "--json", "--status", "failed")
    assert json.loads(out) == []
    code, out, _ = run(capsys, "list")
    assert "first light over the sea" in out and "video path:" in out


def test_delete_removes_the_record_and_its_files(cli_env, capsys):
    _, out, _ = run(capsys, "generate", "to be deleted", "--wait", "--json")
    record = json.loads(out)
    code, out, _ = run(capsys, "delete", record["id"])
    assert code == 0 and record["id"] in out
    assert not Path(record["video_path"]).exists()
    code, _, err = run(capsys, "delete", record["id"])
    assert code == 1 and "no record" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["generate", ""], "prompt is empty"),
        (["generate", "x", "--size", "1792x1024"], "does not offer 1792x1024"),
        (["generate", "x", "--seconds", "5"], "5 seconds is not offered"),
        (["generate", "x", "--model", "sora-3"], "unknown model"),
        (["generate", "x", "--image", "missing.png"], "cannot read missing.png"),
        (["emulator", "--fault", "meteor=0.5"], "rate-limit"),
    ],
)
def test_bad_input_exits_2_and_says_what_to_change(cli_env, capsys, argv, says):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert says in err
    assert not (cli_env / "soranb-data" / "soranb.db").exists() or argv[0] != "generate"


def test_doctor_passes_offline_and_fails_with_advice_on_a_missing_key(cli_env, capsys, monkeypatch):
    code, out, _ = run(capsys, "doctor")
    assert code == 0
    assert out.count("[ok  ]") == 5
    monkeypatch.setenv("SORANB_PROVIDER", "openai")
    code, _, err = run(capsys, "doctor")
    assert code == 2 and "OPENAI_API_KEY" in err


def test_the_emulator_command_serves_the_api_that_generate_then_uses(cli_env, capsys, monkeypatch):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "soranb.cli", "emulator", "--port", str(port), "--speed", "240"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and server.poll() is None, "the emulator did not start"
            time.sleep(0.1)
        monkeypatch.setenv("SORANB_EMULATOR_URL", f"http://127.0.0.1:{port}/v1")
        code, out, err = run(capsys, "generate", "served over a socket", "--wait", "--json")
        assert code == 0, err
        record = json.loads(out)
        assert record["status"] == "completed" and record["openai_job_id"].startswith("video_")
    finally:
        server.terminate()
        _, log = server.communicate(timeout=10)
    assert f"soranb emulator on http://127.0.0.1:{port}/v1" in log
    assert "POST /v1/videos" in log  # one log line per request


def test_generate_wait_past_its_timeout_exits_3_and_says_how_to_resume(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("SORANB_EMULATOR_SPEED", "1")  # a 4 s clip takes a minute
    code, out, err = run(capsys, "generate", "a slow sunrise", "--wait", "--timeout", "0.5", "--json")
    assert code == 3
    assert json.loads(out)["status"] in ("pending", "processing")
    assert "still open" in err and "soranb wait" in err


def test_generate_wait_waits_through_rate_limits(cli_env, capsys, monkeypatch):
    monkeypatch.setenv("SORANB_EMULATOR_FAULTS", "rate-limit=0.4")
    monkeypatch.setenv("SORANB_EMULATOR_SEED", "4")  # the first two requests (the create, its retry) get 429
    code, out, err = run(capsys, "generate", "a fox in a busy hour", "--wait", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"


def test_an_emptied_database_beside_stored_videos_stops_every_command_and_says_what_to_do(cli_env, capsys):
    data = cli_env / "soranb-data"
    video = data / "media" / "videos" / "0b7c1f0e-5d7a-4c55-9a3e-2f6f5c1d9e01.mp4"
    video.parent.mkdir(parents=True, mode=0o700)
    video.write_bytes(b"a stored video")
    (data / "soranb.db").write_bytes(b"")  # as a failed copy or a full disk at the wrong moment leaves it

    for argv in (["list"], ["doctor"], ["generate", "a new start", "--seconds", "4"]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and "no records" not in out, (argv, out, err)
        assert str(data / "soranb.db") in err and str(data / "media" / "videos") in err and "backup" in err
    assert video.read_bytes() == b"a stored video" and (data / "soranb.db").stat().st_size == 0


def test_generate_that_could_not_send_the_job_exits_4_and_says_the_record_is_kept(cli_env, capsys, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port where nothing listens: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SORANB_EMULATOR_URL", f"http://127.0.0.1:{port}/v1")
    code, out, err = run(capsys, "generate", "a fox in the dark", "--json")
    assert code == EXIT_NOT_SENT, err
    assert json.loads(out)["status"] == "pending"
    assert "not sent" in err and "kept" in err and "soranb wait" in err
    code, out, _ = run(capsys, "list", "--json")
    assert [r["status"] for r in json.loads(out)] == ["pending"]  # nothing lost: `soranb wait` sends it later


def test_a_batch_whose_jobs_could_not_be_sent_exits_4_too(cli_env, capsys, monkeypatch):
    import socket

    with socket.socket() as sock:  # a port where nothing listens: connections are refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SORANB_EMULATOR_URL", f"http://127.0.0.1:{port}/v1")
    batch = cli_env / "two.jsonl"
    batch.write_text('{"prompt": "a fox"}\n{"prompt": "a wolf"}\n')
    code, _out, err = run(capsys, "batch", str(batch))
    assert code == EXIT_NOT_SENT, err
    assert "2 of 2" in err and "kept" in err and "soranb wait" in err


PLANTERS = {
    "a world-writable folder": lambda data: os.chmod(data, 0o777),
    "a group-writable folder": lambda data: os.chmod(data, 0o770),
    "another user's folder": lambda data: os.chown(data, 12345, 12345),
    "another user's soranb.db": lambda data: os.chown(data / "soranb.db", 12345, 12345),
    "a world-writable soranb.db": lambda data: os.chmod(data / "soranb.db", 0o666),
}


@pytest.mark.parametrize("planted", PLANTERS)
def test_wait_in_a_folder_with_a_planted_data_folder_sends_nothing_and_says_how_to_fix_it(cli_env, capsys, planted):
    """Someone who can write `soranb-data` (or its soranb.db) where you run `soranb wait` could
    queue pending rows that would be sent, and billed, on your key."""
    if "another user" in planted and (not hasattr(os, "geteuid") or os.geteuid() != 0):
        pytest.skip("giving a file away needs root")
    data = cli_env / "soranb-data"
    record = GenerationRecord(prompt="billed to you", model="sora-2", size="1280x720", seconds=4)

    async def plant() -> None:
        store = LocalStore(data)
        await store.open()
        await store.insert(record)
        await store.close()

    asyncio.run(plant())
    PLANTERS[planted](data)

    code, out, err = run(capsys, "wait", "--json")
    assert code == 2, (out, err)
    assert str(data) in err and "SORANB_DATA_DIR" in err
    assert ("chmod" in err) != ("another user" in err)  # the fix that works: chmod, or a folder of one's own
    with sqlite3.connect(data / "soranb.db") as conn:  # the row was never sent
        row = conn.execute("select status, openai_job_id from video_generations where id = ?", (record.id,))
        assert row.fetchone() == ("pending", None)
