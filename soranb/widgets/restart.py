"""After a kernel restart, the views left in the notebook from the old kernel are only pictures.

ipywidgets keeps showing them, but their models died with the old kernel, so a click does nothing.
The browser says so first: on a restart JupyterLab marks each of those views disconnected, and
soranb's stylesheet (`style.DISCONNECTED`) turns that mark into a sentence on each view, at once.
The kernel cannot reach those old views; what it adds is, at the next run of the set-up cell, a
note that this notebook had another kernel before (also after a restart the browser did not mark).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["restart_note"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def restart_note(data_dir: Path, notebook: str | None = None, pid: int | None = None) -> str:
    """What to tell the person when this notebook's previous kernel has gone; "" otherwise.

    `notebook`: which notebook this kernel serves (Jupyter sets `JPY_SESSION_NAME`; else the folder).
    The current kernel is remembered for the next time.
    """
    notebook = notebook or os.environ.get("JPY_SESSION_NAME") or str(Path.cwd())
    pid = pid or os.getpid()
    folder = Path(data_dir) / "tmp" / "kernels"
    marker = folder / (hashlib.sha256(notebook.encode()).hexdigest()[:16] + ".json")
    note = ""
    try:
        previous = json.loads(marker.read_text()).get("pid")
    except (OSError, ValueError, AttributeError):
        previous = None
    if isinstance(previous, int) and previous != pid and not _alive(previous):
        note = (
            "This notebook's kernel was restarted. The forms, histories and panels still showing from the "
            "previous kernel are disconnected: clicking them does nothing. Run the cells below again "
            "(Run ▸ Run All Cells) to get live ones; no job was lost, they resume from the store."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"pid": pid}))
    except OSError:  # a read-only data folder: the note is a courtesy, never an error
        pass
    return note
