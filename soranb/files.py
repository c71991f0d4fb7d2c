"""Files written whole or not at all.

Every download and every move into the store writes beside its destination first and
renames when it is complete, so a reader (a player, another kernel, the next start) never
sees half a file, and an error leaves nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["written_whole"]


@contextlib.contextmanager
def written_whole(dest: Path) -> Iterator[Path]:
    """A `.part` path beside `dest` to write; it becomes `dest` (one rename) only if the block ends
    without an error, and is removed otherwise."""
    partial = dest.with_name(dest.name + ".part")
    try:
        yield partial
        partial.replace(dest)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()
