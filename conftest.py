"""nbval runs these notebooks offline, in a throwaway data folder: never the project's history, never a paid API.

nbval starts each notebook's kernel while setting up the notebook's first cell, and the kernel
inherits this process's environment at that moment. So the settings are put in place around that
set-up only, and the test process itself (and other tests in the same run) keep theirs.

The notebooks are committed without outputs, so a cell marked `# NBVAL_CHECK_OUTPUT` keeps what it
must print in its metadata (`soranb.expected_outputs`); it is put where nbval compares before the
cells run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

NOTEBOOK_ENV = {"SORANB_PROVIDER": "emulator", "SORANB_STORE": "local"}
DEFAULT_SPEED = "200"  # a 4 s clip is ready in a fraction of a second
_data_dirs: dict[Path, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    if item.path.suffix != ".ipynb":
        yield
        return
    data_dir = _data_dirs.get(item.path)
    if data_dir is None:
        data_dir = _data_dirs[item.path] = tempfile.mkdtemp(prefix=f"soranb-nbval-{item.path.stem}-")
    env = {**NOTEBOOK_ENV, "SORANB_DATA_DIR": data_dir}
    env["SORANB_EMULATOR_SPEED"] = os.environ.get("SORANB_EMULATOR_SPEED") or DEFAULT_SPEED
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def pytest_sessionfinish(session: pytest.Session) -> None:
    for data_dir in _data_dirs.values():
        shutil.rmtree(data_dir, ignore_errors=True)
    _data_dirs.clear()


def expected_outputs(cell: Any) -> list[Any] | None:
    """The outputs a checked notebook cell must print, from its metadata; None for other cells."""
    found = cell.get("metadata", {}).get("soranb", {}).get("expected_outputs")
    return None if found is None else [nbformat.from_dict(out) for out in found]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        cell = getattr(item, "cell", None)  # nbval's notebook cell items
        expected = expected_outputs(cell) if cell is not None else None
        if expected is not None:
            cell.outputs = expected
            cell.execution_count = 1  # nbval compares only the cells it believes were run
