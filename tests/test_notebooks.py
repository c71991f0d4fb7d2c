"""Notebook hygiene: committed clean, and an executed notebook stays small, shareable and secret-free."""

from __future__ import annotations

import base64
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


@pytest.mark.parametrize("name", CURATED)
def test_committed_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in _code_cells(nb):
        assert cell.outputs == [], f"{name}: a cell was saved with outputs"
        assert cell.execution_count is None, f"{name}: a cell was saved with an execution count"
    assert "widgets" not in nb.metadata, f"{name}: widget state was saved"
    # Without a kernelspec JupyterLab asks for a kernel instead of starting one.
    assert nb.metadata["kernelspec"]["name"] == "python3"


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


def test_executed_generate_ran_the_batch_and_the_report(executed_generate: tuple[Path, str]) -> None:
    path, _ = executed_generate
    nb = nbformat.read(path, as_version=4)
    outputs = [out for cell in _code_cells(nb) for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    report = "".join(out.get("data", {}).get("text/html", "") for out in _code_cells(nb)[-1].outputs)
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
