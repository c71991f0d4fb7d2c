"""Whose pending records a soranb service submits on its provider key.

A shared store can hold pending rows that this installation never wrote: in a single-user Supabase
project anyone holding the anon key (which Supabase treats as public) can insert one. Submitting it
would spend the owner's money on a stranger's request, so a service submits only:

- records this installation wrote: the store signs each record it inserts with an HMAC over what
  decides the job (prompt, model, size, seconds, starting image, remix source; and, where present,
  whether it may be re-sent, its characters, the seconds it pays for and what it extends), keyed by
  a secret kept in the data folder (`installation.key`, readable by this user only). A stranger can copy a
  signature but not make one, and a changed row no longer matches its signature;
- or, in per-user mode, records of the signed-in user (the store says so: row-level security keeps
  everyone else's rows out of sight).

A starting image is read only from the store's own keys (`images/<id>.<ext>`), never from a URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .records import BILLED_SECONDS, GenerationRecord

__all__ = ["SIGNATURE", "fingerprint", "installation_secret", "is_signed_by", "sign"]

SIGNATURE = "soranb_sig"  # metadata key of the record's signature
_SECRET_FILE = "installation.key"


def installation_secret(data_dir: Path) -> bytes:
    """This installation's signing secret, made on first use and kept in the data folder (mode 600).

    Made atomically (written aside, then linked into place), so a kernel and a CLI starting together
    agree on one secret instead of one overwriting the other's.
    """
    path = Path(data_dir) / _SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_name(f".{_SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
            with contextlib.suppress(FileExistsError):  # someone else was first: theirs counts
                os.link(aside, path)
        finally:
            aside.unlink(missing_ok=True)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:
        raise ConfigError(
            f"{path} is damaged (not the hex secret soranb wrote); delete it and soranb makes a new one, "
            "after which pending rows this installation wrote before must be generated again"
        ) from None


# Also decide what a record is and costs: whether the poller may send it from its fields at all,
# its characters, the seconds it pays for, and the video it extends or edits. Signed only when
# present, so a plain record's signature is the one the first release made.
_ALSO_SIGNED = ("submit_once", "characters", BILLED_SECONDS)


def fingerprint(secret: bytes, record: GenerationRecord) -> str:
    """An HMAC of what decides the record's job (its signature; the send ledger keeps one too)."""
    what: list[Any] = [
        *(record.id, record.prompt, record.model, record.size, record.seconds),
        *(record.image_key, record.remixed_from),
    ]
    decides = {key: record.metadata[key] for key in _ALSO_SIGNED if key in record.metadata}
    if record.lineage is not None:
        decides["lineage"] = record.lineage
    if decides:
        what.append(decides)
    message = json.dumps(what, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(secret: bytes, record: GenerationRecord) -> GenerationRecord:
    """The record with this installation's signature in its metadata."""
    metadata = {**record.metadata, SIGNATURE: fingerprint(secret, record)}
    return record.evolve(metadata=metadata, updated_at=record.updated_at)


def is_signed_by(secret: bytes, record: GenerationRecord) -> bool:
    """True when this installation wrote the record and what decides its job is unchanged."""
    given = record.metadata.get(SIGNATURE)
    return isinstance(given, str) and hmac.compare_digest(given, fingerprint(secret, record))
