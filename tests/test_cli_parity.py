"""`soranb extend`, `edit`, `character` and generate's --character / --image-url / --image-file-id, run
in-process exactly as a user types them."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import av
import test_cli
from PIL import Image

run = test_cli.run


def seconds_of(path: str) -> int:
    with av.open(path) as container:
        assert container.duration is not None
        return round(container.duration / av.time_base)


def test_extend_and_edit_a_completed_record(cli_env, capsys) -> None:
    code, out, err = run(capsys, "generate", "a red fox", "--wait", "--json")
    assert code == 0, err
    source = json.loads(out)
    code, out, err = run(capsys, "extend", source["id"], "it runs away", "--seconds", "8", "--wait", "--json")
    assert code == 0, err
    extended = json.loads(out)
    assert (extended["status"], extended["seconds"], extended["lineage"]) == ("completed", 12, f"extend:{source['id']}")
    assert seconds_of(extended["video_path"]) == 12
    code, out, err = run(capsys, "edit", source["id"], "at night", "--wait", "--json")
    assert code == 0, err
    edited = json.loads(out)
    assert (edited["status"], edited["lineage"]) == ("completed", f"edit:{source['id']}")


def test_extend_refuses_what_it_cannot_do(cli_env, capsys) -> None:
    code, _, err = run(capsys, "extend", "no-such-record", "more", "--seconds", "4")
    assert code == 1 and "no-such-record" in err
    _, out, _ = run(capsys, "generate", "a red fox", "--wait", "--json")
    code, _, err = run(capsys, "extend", json.loads(out)["id"], "more", "--seconds", "7")
    assert code == 2 and "4, 8, 12, 16, 20" in err


def test_character_create_show_and_generate_with_it(cli_env, capsys) -> None:
    _, out, _ = run(capsys, "generate", "a hero", "--wait", "--json")
    video = json.loads(out)["video_path"]
    code, out, err = run(capsys, "character", "create", "Captain Nova", video, "--json")
    assert code == 0, err
    character = json.loads(out)
    assert character["name"] == "Captain Nova"
    code, out, _ = run(capsys, "character", "show", character["id"])
    assert code == 0 and out.strip() == f"{character['id']}  Captain Nova"
    code, out, err = run(capsys, "generate", "Nova waves", "--character", character["id"], "--wait", "--json")
    assert code == 0, err
    assert json.loads(out)["metadata"]["characters"] == [character["id"]]
    code, _, err = run(capsys, "character", "show", "char_" + "0" * 32)
    assert code == 1 and "not found" in err.lower()


def test_generate_with_an_image_url_or_a_file_id(cli_env, capsys, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (10, 200, 10)).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    code, out, err = run(capsys, "generate", "green", "--image-url", url, "--wait", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "completed"
    code, _, err = run(capsys, "generate", "p", "--image-url", "https://example.test/a.png", "--json")
    assert code == 1 and "could not be downloaded" in err  # the provider's refusal; the emulator fetches no URL
    code, _, err = run(capsys, "generate", "p", "--image-file-id", "file-" + "0" * 32, "--json")
    assert code == 1 and "no file" in err
    code, _, err = run(capsys, "generate", "p", "--image-url", "ftp://x/y.png")
    assert code == 2 and "https" in err  # refused before anything is sent
