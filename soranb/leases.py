"""Who holds a record, for how long, and how to tell that a holder is gone.

A lease owner is `host:pid:tag`: the machine, the process and a tag for the service
(a process may run several). Leases are short and renewed by their holder's heartbeat;
a holder on this machine whose process no longer runs loses its lease at once, so a
killed kernel or CLI never holds a job hostage.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

__all__ = [
    "LEASE_LONGEST",
    "LEASE_TTL",
    "holder_is_gone",
    "new_owner_id",
    "sweep_dead_tmp",
    "tmp_folder_name",
    "tmp_folder_owner",
]

LEASE_TTL = timedelta(seconds=30)  # renewed every third of it while the holder works
# No soranb service sets a lease further ahead than this: one that ends later was written by someone
# else (a stranger with a shared store's public key) to hold a job hostage, and counts as free.
LEASE_LONGEST = timedelta(hours=1)


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_gone(owner: str | None) -> bool:
    """True when `owner` is a process on this machine that no longer runs."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, under another user
        return False
    return False


def tmp_folder_name(owner: str) -> str:
    """`host:pid:tag` as a folder name that parses back (a host name may hold '-', never ':')."""
    host, pid, tag = owner.split(":", 2)
    return f"{pid}-{tag}-{host}"


def tmp_folder_owner(name: str) -> str | None:
    pid, _, rest = name.partition("-")
    tag, _, host = rest.partition("-")
    return f"{host}:{pid}:{tag}" if pid.isdigit() and tag and host else None


def sweep_dead_tmp(tmp_root: Path) -> int:
    """Remove the temp folders of soranb processes on this machine that are gone (killed mid-download).

    Loose files older than an hour (left by versions before per-process folders) go too.
    """
    removed = 0
    if not tmp_root.is_dir():
        return 0
    for entry in tmp_root.iterdir():
        owner = tmp_folder_owner(entry.name) if entry.is_dir() else None
        stale_file = entry.is_file() and time.time() - entry.stat().st_mtime > 3600
        if (owner and holder_is_gone(owner)) or stale_file:
            with contextlib.suppress(OSError):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
                removed += 1
    return removed
