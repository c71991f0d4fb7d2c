"""Characters and uploaded files: small objects kept as one JSON file each in the state folder.

Ids come from URLs and request bodies, so they are checked against our own shape before they
name a file; a client's file name is stored for display only.
"""

from __future__ import annotations

import io
import json
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soranb.files import write_bytes_whole

__all__ = ["CharacterTable", "FileTable", "probe_video"]

_CHARACTER_ID = re.compile(r"char_[0-9a-f]{32}")
_FILE_ID = re.compile(r"file-[0-9a-f]{32}")


class CharacterTable:
    """Characters made from uploaded videos: `{id}.json` with the API's fields (id, created_at, name)."""

    def __init__(self, folder: Path, clock: Callable[[], float]) -> None:
        self.folder = folder
        self.clock = clock

    def create(self, name: str) -> dict[str, Any]:
        character = {"id": "char_" + secrets.token_hex(16), "created_at": int(self.clock()), "name": name}
        _write_json(self.folder / f"{character['id']}.json", character)
        return character

    def get(self, character_id: str) -> dict[str, Any] | None:
        if not _CHARACTER_ID.fullmatch(character_id):
            return None
        return _read_json(self.folder / f"{character_id}.json")


class FileTable:
    """Uploaded files (as the Files API keeps them): `{id}.json` for the object, `{id}.bin` for the bytes."""

    def __init__(self, folder: Path, clock: Callable[[], float]) -> None:
        self.folder = folder
        self.clock = clock

    def create(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = "file-" + secrets.token_hex(16)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_bytes_whole(self.folder / f"{file_id}.bin", data)
        found = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(self.clock()),
            "filename": filename[:200],
            "purpose": purpose,
            "status": "processed",
        }
        _write_json(self.folder / f"{file_id}.json", found)
        return found

    def get(self, file_id: str) -> dict[str, Any] | None:
        if not _FILE_ID.fullmatch(file_id):
            return None
        return _read_json(self.folder / f"{file_id}.json")

    def read(self, file_id: str) -> bytes | None:
        if self.get(file_id) is None:
            return None
        try:
            return (self.folder / f"{file_id}.bin").read_bytes()
        except FileNotFoundError:
            return None


def probe_video(data: bytes) -> tuple[str, int] | None:
    """("WxH", whole seconds) of a video file with at least one decodable frame, else None."""
    import av  # the render threads import it anyway; not needed to start the app

    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            frame = next(container.decode(video=0), None)
            if frame is None:
                return None
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            else:
                seconds = (container.duration or 0) / 1_000_000
            return f"{frame.width}x{frame.height}", max(1, round(seconds))
    except (av.FFmpegError, ValueError, OSError):
        return None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_whole(path, json.dumps(value).encode())
