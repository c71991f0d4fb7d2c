"""Files written whole or not at all.

Every download and every move into the store writes beside its destination first and
renames when it is complete, so a reader (a player, another kernel, the next start) never
sees half a file, and an error leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["write_bytes_whole", "written_whole"]


@contextlib.contextmanager
def written_whole(dest: Path) -> Iterator[Path]:
    """A hidden `.part` path beside `dest` to write; it becomes `dest` (one rename) only if the block
    ends without an error, and is removed otherwise. Its name is unique, so two processes writing the
    same file never write into one partial file."""
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        yield partial
        partial.replace(dest)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink()


def write_bytes_whole(dest: Path, data: bytes) -> None:
    """`dest.write_bytes(data)`, but never seen half written."""
    with written_whole(dest) as partial:
        partial.write_bytes(data)
