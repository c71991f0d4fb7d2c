"""Notebook hygiene: committed clean, and an executed notebook stays small, shareable and secret-free."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
CURATED = ("generate.ipynb", "diagnostics.ipynb")
# Looks like a key, so every redaction rule applies to it; it is never sent anywhere (emulator only).
FAKE_KEY = "sk-proj-soranbNotebookSentinel0123456789abcdefXYZ"
BATCH_PROMPTS = (
    "A paper boat drifting across a rain puddle",
    "Time-lapse of clouds rolling over a mountain ridge",
    "A red fox trotting through fresh snow",
)
LONG_BASE64 = re.compile(r"[A-Za-z0-9+/]{4000,}={0,2}")
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{64,}")
DATA_JPEG = re.compile(r"data:image/jpeg;base64,[A-Za-z0-9+/]+=*")


def _code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


CHECKED = "# NBVAL_CHECK_OUTPUT"
# What must never be in a stored expected output: it would differ on the next run or machine.
UNSTABLE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-|video_[0-9a-f]{6}|\d{4}-\d\d-\d\d|\d\d:\d\d|/tmp/|/home/|soranb-data|IPY_MODEL_"
)


def _checked(cell: Any) -> bool:
    return bool(cell.source.startswith(CHECKED))


def _expected(cell: Any) -> list[Any]:
    """What a checked cell must print: kept in its metadata, since cells are committed without outputs."""
    return list(cell.metadata.get("soranb", {}).get("expected_outputs", []))


@pytest.mark.parametrize("name", CURATED)
def test_committed_without_outputs_and_checked_cells_say_what_they_print(name: str) -> None:
    """No cell carries outputs; a checked cell keeps its expected output, which does not depend on time or ids."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in _code_cells(nb):
        assert cell.outputs == [], f"{name}: a cell was saved with outputs"
        assert cell.execution_count is None, f"{name}: a cell was saved with an execution count"
        if not _checked(cell):
            assert not _expected(cell), f"{name}: an expected output on a cell nbval does not check"
            continue
        assert _expected(cell), f"{name}: a checked cell has no expected output"
        for out in _expected(cell):
            assert out["output_type"] in ("stream", "execute_result"), out["output_type"]
            text = "".join(out.get("text", "")) + "".join("".join(v) for v in out.get("data", {}).values())
            assert set(out.get("data", {})) <= {"text/plain", "text/html"}  # no widget view: its id changes
            assert not UNSTABLE.search(text), f"{name}: a checked output depends on time, ids or paths: {text!r}"
    assert "widgets" not in nb.metadata, f"{name}: widget state was saved"
    # Without a kernelspec JupyterLab asks for a kernel instead of starting one.
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", CURATED)
def test_each_notebook_has_output_checked_cells(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert [cell for cell in _code_cells(nb) if _checked(cell)]


def test_every_notebook_in_the_folder_is_curated() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(CURATED)


def _execute(name: str, data_dir: Path) -> tuple[Path, str]:
    """Run a notebook as nbval would (kernel in notebooks/), offline, with a key in the environment."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    env = dict(os.environ)
    env.update(
        {
            "SORANB_DATA_DIR": str(data_dir),
            "SORANB_PROVIDER": "emulator",
            "SORANB_STORE": "local",
            "SORANB_EMULATOR_SPEED": "200",
            "OPENAI_API_KEY": FAKE_KEY,
        }
    )
    client = NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(env=env)
    out = data_dir.parent / f"executed-{name}"
    nbformat.write(nb, out)
    return out, out.read_text()


@pytest.fixture(scope="module")
def executed_generate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return _execute("generate.ipynb", tmp_path_factory.mktemp("generate") / "data")


def test_executed_generate_is_small_and_embeds_no_video(executed_generate: tuple[Path, str]) -> None:
    path, text = executed_generate
    assert path.stat().st_size < 1_000_000
    assert "data:video" not in text
    # Thumbnails are embedded (the report reads offline), each one small; nothing else is.
    thumbs = DATA_JPEG.findall(text)
    assert thumbs and all(len(t) < 16_000 for t in thumbs)
    assert not LONG_BASE64.search(DATA_JPEG.sub("", text))
    for run in BASE64_RUN.findall(text):  # no MP4 box header hidden in any shorter base64 either
        usable = run[: len(run) // 4 * 4]
        assert b"ftyp" not in base64.b64decode(usable + "=" * (-len(usable) % 4), validate=False)


def _report(nb: Any) -> str:
    """The HTML the report cell (cell tag `report`) left in an executed notebook."""
    (cell,) = [cell for cell in _code_cells(nb) if "report" in cell.metadata.get("tags", [])]
    return "".join(out.get("data", {}).get("text/html", "") for out in cell.outputs)


def test_the_checked_cells_output_is_what_a_run_prints(executed_generate: tuple[Path, str]) -> None:
    """The expected outputs nbval compares are the ones a fresh offline run gives."""
    path, _ = executed_generate
    committed = [c for c in _code_cells(nbformat.read(NOTEBOOKS / "generate.ipynb", as_version=4)) if _checked(c)]
    executed = [c for c in _code_cells(nbformat.read(path, as_version=4)) if _checked(c)]
    for expected, ran in zip(committed, executed, strict=True):
        want = [nbformat.from_dict(o) for o in _expected(expected)]
        assert _as_shown(ran.outputs) == _as_shown(want)


def _as_shown(outputs: list[Any]) -> list[Any]:
    """Outputs as a reader sees them: one stream's consecutive chunks are one text.

    A kernel under load may send one `print()` as several stream messages ('...prices' then '\\n');
    what the cell shows is their concatenation, so that is what is compared.
    """
    shown: list[Any] = []
    for out in outputs:
        if out.get("output_type") == "stream":
            if shown and isinstance(shown[-1], tuple) and shown[-1][0] == out.get("name"):
                shown[-1] = (out.get("name"), shown[-1][1] + "".join(out.get("text", "")))
            else:
                shown.append((out.get("name"), "".join(out.get("text", ""))))
        else:
            shown.append(out.get("data"))
    return shown


def test_a_print_split_into_chunks_compares_as_the_text_it_shows() -> None:
    """Under load one line can arrive as two stream messages; the comparison sees one text."""
    split = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in ("3 videos at known prices", "\n")]
    whole = [nbformat.v4.new_output("stream", name="stdout", text="3 videos at known prices\n")]
    assert _as_shown(split) == _as_shown(whole)
    stderr = [nbformat.v4.new_output("stream", name="stderr", text="\n")]
    assert _as_shown(split[:1] + stderr) != _as_shown(whole)


def test_executed_generate_ran_the_batch_and_the_report(executed_generate: tuple[Path, str]) -> None:
    path, _ = executed_generate
    nb = nbformat.read(path, as_version=4)
    outputs = [out for cell in _code_cells(nb) for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    report = _report(nb)
    assert "<b>3</b> generations" in report
    assert report.count("soranb-badge-completed") >= 3
    assert report.count('class="soranb-thumb" src="data:image/jpeg;base64,') >= 6  # read offline
    assert "/soranb/media/" not in report  # nothing in the report needs a server


def test_nbconvert_html_shows_the_history(executed_generate: tuple[Path, str], tmp_path: Path) -> None:
    path, _ = executed_generate
    target = tmp_path / "generate.html"
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", str(path), "--output", str(target)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    html = target.read_text()
    assert '<table class="soranb-history-static"' in html
    assert 'class="soranb-thumb"' in html and "<img" in html
    for prompt in BATCH_PROMPTS:
        assert prompt in html
    assert FAKE_KEY not in html


def test_no_api_key_anywhere_in_executed_notebooks(
    executed_generate: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    _, generate_text = executed_generate
    _, diagnostics_text = _execute("diagnostics.ipynb", tmp_path_factory.mktemp("diagnostics") / "data")
    for text in (generate_text, diagnostics_text):
        assert FAKE_KEY not in text
        assert FAKE_KEY[-16:] not in text  # no tail of it either
    assert "configuration" in diagnostics_text and "soranb-badge-ok" in diagnostics_text


def test_background_log_lines_never_land_in_a_cell(tmp_path: Path) -> None:
    """A warning logged by a background thread (as the poller logs a failed job) stays out of every cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import logging, threading\n"
            "import soranb.widgets\n"
            "logging.getLogger('soranb.runner').error('record 84c2 failed: Your request was blocked')\n"
            "threading.Thread(target=lambda: logging.getLogger('soranb').warning('from the poller thread')).start()"
        ),
        nbformat.v4.new_code_cell("import time\ntime.sleep(0.5)\nprint('next cell')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    streams = [out for cell in nb.cells for out in cell.outputs if out.output_type == "stream"]
    assert [out.text for out in streams if out.name == "stderr"] == []
    assert [out.text for out in streams if out.name == "stdout"] == ["next cell\n"]


def test_papermill_runs_generate_headless_with_parameters(tmp_path: Path) -> None:
    """`papermill notebooks/generate.ipynb out.ipynb -p ...`, offline: the report is of those parameters."""
    out = tmp_path / "out.ipynb"
    prompts = ["A kite over a windy beach", "A tram in the rain <at night>"]
    env = dict(os.environ)
    env.update(
        {
            "SORANB_DATA_DIR": str(tmp_path / "data"),
            "SORANB_PROVIDER": "emulator",
            "SORANB_STORE": "local",
            "SORANB_EMULATOR_SPEED": "200",
        }
    )
    env.pop("OPENAI_API_KEY", None)
    notebook, cwd = str(NOTEBOOKS / "generate.ipynb"), str(NOTEBOOKS)
    parameters = ["-p", "model", "sora-2-pro", "-p", "size", "720x1280", "-p", "seconds", "8"]
    parameters += ["-p", "allow_spend", "True", "-y", json.dumps({"prompts": prompts})]
    done = subprocess.run(
        [sys.executable, "-m", "papermill", notebook, str(out), "--cwd", cwd, *parameters],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "sora-2-pro" in injected[0].source
    printed = "".join(o.get("text", "") for c in _code_cells(nb) for o in c.outputs)
    assert "2 videos, sora-2-pro 720x1280 8 s each: $4.80 at list prices" in printed
    report = _report(nb)
    assert "<b>2</b> generations" in report and report.count("soranb-badge-completed") >= 2
    assert "A kite over a windy beach" in report and "A tram in the rain &lt;at night&gt;" in report
    assert "<at night>" not in report
    assert report.count('class="soranb-thumb" src="data:image/jpeg;base64,') >= 2  # reads offline
    assert "/soranb/media/" not in report
