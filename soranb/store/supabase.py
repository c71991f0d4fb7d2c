"""The Supabase store: the `video_generations` table plus two storage buckets, via supabase-py (async).

Records are rows; media are objects keyed by the record's store key (`videos/<id>.mp4`), under
`<user id>/` when a user is signed in so per-user storage policies can match the folder.
Every supabase/httpx error is translated in one place, `_translate`, and never carries a key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from postgrest import APIError
from postgrest.types import CountMethod, ReturnMethod
from storage3.exceptions import StorageApiError
from storage3.utils import StorageException
from supabase import AsyncClient, AsyncClientOptions, acreate_client
from supabase_auth.errors import AuthError

from ..debuglog import redact
from ..errors import (
    ConfigError,
    RecordConflict,
    RecordNotFound,
    SoranbError,
    StoreCorrupt,
    StoreError,
    StoreUnavailable,
    StoreWriteFailed,
)
from ..files import written_whole
from ..leases import LEASE_LONGEST, holder_is_gone
from ..provenance import is_signed_by, sign
from ..records import GenerationRecord, Status, utcnow
from .base import RecordQuery, Store, is_media_key, owned_media_keys, status_values

__all__ = ["MIGRATIONS", "SupabaseStore"]

TABLE = "video_generations"

# The migration file (supabase/migrations/) that creates each thing soranb needs.
MIGRATION_TABLE = "20250601120000_create_video_generations.sql"
MIGRATION_VIDEO_BUCKET = "20250601120100_create_video_files_bucket.sql"
MIGRATION_IMAGE_COLUMNS = "20250615090000_add_image_columns.sql"
MIGRATION_IMAGE_BUCKET = "20250615090100_create_image_files_bucket.sql"
MIGRATION_SORANB_COLUMNS = "20260110090000_soranb_job_columns.sql"
MIGRATION_HARDENING = "20260110090100_harden_per_user.sql"
MIGRATION_TAGS = "20261126090000_tags_favourite_note.sql"
MIGRATION_LINEAGE = "20261126090100_add_lineage.sql"
MIGRATIONS = (
    MIGRATION_TABLE,
    MIGRATION_VIDEO_BUCKET,
    MIGRATION_IMAGE_COLUMNS,
    MIGRATION_IMAGE_BUCKET,
    MIGRATION_SORANB_COLUMNS,
    MIGRATION_HARDENING,
    MIGRATION_TAGS,
    MIGRATION_LINEAGE,
)

# record field -> column. The *_url columns hold store keys (their names come from the first schema).
_FIELD_COLUMNS = {
    "id": "id",
    "prompt": "prompt",
    "model": "model",
    "size": "size",
    "seconds": "seconds",
    "status": "status",
    "progress": "progress",
    "openai_job_id": "openai_job_id",
    "video_key": "video_url",
    "thumbnail_key": "thumbnail_url",
    "image_key": "image_url",
    "image_filename": "image_filename",
    "error_message": "error_message",
    "remixed_from": "remixed_from",
    "metadata": "metadata",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "tags": "tags",
    "favourite": "favourite",
    "note": "note",
    "lineage": "lineage",
}
_COLUMN_FIELDS = {column: name for name, column in _FIELD_COLUMNS.items()}
_SELECT = ",".join(_FIELD_COLUMNS.values())

# Every column soranb reads or writes, with the migration that adds it.
EXPECTED_COLUMNS: dict[str, str] = {
    **{c: MIGRATION_TABLE for c in ("id", "prompt", "model", "size", "seconds", "status")},
    **{c: MIGRATION_TABLE for c in ("openai_job_id", "video_url", "error_message", "metadata")},
    **{c: MIGRATION_TABLE for c in ("created_at", "updated_at")},
    "image_url": MIGRATION_IMAGE_COLUMNS,
    "image_filename": MIGRATION_IMAGE_COLUMNS,
    **{
        c: MIGRATION_SORANB_COLUMNS
        for c in ("progress", "thumbnail_url", "remixed_from", "lease_owner", "lease_expires_at")
    },
    **{c: MIGRATION_TAGS for c in ("tags", "favourite", "note")},
    "lineage": MIGRATION_LINEAGE,
}

_NO_ID = "00000000-0000-0000-0000-000000000000"  # an `in` filter that matches nothing
_CHUNK = 1024 * 1024
_MB = 1024 * 1024

# PostgREST / PostgreSQL error codes, by what they mean for soranb.
_SCHEMA_CODES = {"42703", "42P01", "PGRST200", "PGRST204", "PGRST205"}
_AUTH_CODES = {"PGRST300", "PGRST301", "PGRST302", "PGRST303"}
_VALUE_CODES = {"22P02", "23502", "23514", "22001", "22007", "22008"}


@dataclass(frozen=True)
class _SignedUrl:
    url: str
    expires_at: float  # time.monotonic()


class SupabaseStore(Store):
    """History in a Supabase project: one row per generation, media in two buckets.

    `key` is the project's anon (or service role) key. With `email`/`password` or an
    `access_token`, requests run as that user, so per-user row-level security applies.
    """

    name = "supabase"

    def __init__(
        self,
        url: str,
        key: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        email: str | None = None,
        password: str | None = None,
        access_token: str | None = None,
        video_bucket: str = "video_files",
        image_bucket: str = "image_files",
        signed_url_ttl: int = 3600,
        public_buckets: bool | None = None,
        max_upload_mb: float = 50,
        timeout: float = 60.0,
        installation_secret: bytes | None = None,
    ) -> None:
        if not re.match(r"^https?://[^/\s]+", url or ""):
            raise ConfigError(f"SUPABASE_URL must look like https://<project>.supabase.co, got {url!r}")
        if not key:
            raise ConfigError("SUPABASE_KEY is empty: use the project's anon key (or its service role key)")
        if bool(email) != bool(password):
            raise ConfigError("SUPABASE_EMAIL and SUPABASE_PASSWORD go together: set both or neither")
        if signed_url_ttl < 60:
            raise ConfigError(f"signed_url_ttl={signed_url_ttl}: use at least 60 seconds")
        self._url = url.rstrip("/")
        self._host = urlsplit(self._url).netloc
        self._key = key
        self._email = email
        self._password = password
        self._access_token = access_token
        self._given_http = http_client
        self._http: httpx.AsyncClient | None = None
        self._client: AsyncClient | None = None
        self.video_bucket = video_bucket
        self.image_bucket = image_bucket
        self._signed_url_ttl = signed_url_ttl
        self.public_buckets = public_buckets
        self.max_upload_mb = max_upload_mb
        self._timeout = timeout
        self._user_id: str | None = None
        self._signed: dict[tuple[str, str], _SignedUrl] = {}
        self._secret = installation_secret  # signs inserted records (see soranb.provenance)
        self.rows_are_per_user = False  # signed in on a hardened project: row-level security picks the rows

    def describe(self) -> str:
        return f"supabase ({self._host})"

    # -- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Create the client and sign in; finding the buckets public or private is the only probe."""
        if self._client is not None:
            return
        http = self._given_http or httpx.AsyncClient(timeout=httpx.Timeout(self._timeout), follow_redirects=True)
        options = AsyncClientOptions(httpx_client=http, persist_session=False)
        if self._access_token:
            options.headers["Authorization"] = f"Bearer {self._access_token}"
        try:
            async with self._guard("connecting"):
                client = await acreate_client(self._url, self._key, options=options)
                if self._access_token:
                    self._user_id = _jwt_subject(self._access_token)
                elif self._email and self._password:
                    answer = await client.auth.sign_in_with_password({"email": self._email, "password": self._password})
                    if answer.user is None:
                        raise StoreUnavailable(f"signing in to {self.describe()} as {self._email} gave no user")
                    self._user_id = answer.user.id
            self._http, self._client = http, client
            if self.user_id is not None:
                self.rows_are_per_user = await self._has_user_column()
            if self.public_buckets is None:
                self.public_buckets = await self._bucket_is_public(self.video_bucket)
        except BaseException:
            await self._drop_client(http)
            raise

    async def close(self) -> None:
        if self._client is None:
            return
        await self._drop_client(self._http)

    async def _drop_client(self, http: httpx.AsyncClient | None) -> None:
        client, self._client, self._http = self._client, None, None
        if client is not None:
            # A signed-in session refreshes itself on a timer task; stop it with the store.
            timer = getattr(client.auth, "_refresh_token_timer", None)
            if timer is not None:
                timer.cancel()
        if http is not None and http is not self._given_http:
            await http.aclose()
        self._signed.clear()

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise StoreUnavailable(f"{self.describe()} is not open: await store.open() first")
        return self._client

    async def _has_user_column(self) -> bool:
        """Whether the project is per-user (the hardening's `user_id` column is there)."""
        try:
            await self._probe(["user_id"])
            return True
        except APIError as exc:
            if exc.code in _SCHEMA_CODES:
                return False
            raise self._translate(exc, "checking the schema", write=False, missing=None) from exc

    @property
    def user_id(self) -> str | None:
        """The signed-in user (per-user mode), known once the store is open."""
        return self._user_id

    @property
    def signed_url_ttl(self) -> int:
        return self._signed_url_ttl

    # -- whose records this service submits (soranb.provenance) ---------------------------
    @property
    def vouches_for_rows(self) -> bool:
        return self.rows_are_per_user

    def may_submit(self, record: GenerationRecord) -> bool:
        """Only a record this installation signed, or any of the signed-in user's own in per-user mode;
        and never one whose starting image is anything but one of the store's own keys."""
        if record.image_key is not None and not is_media_key(record.image_key):
            return False
        if self.rows_are_per_user:
            return True
        return self._secret is None or is_signed_by(self._secret, record)

    def single_user_warning(self) -> str | None:
        """What `soranb doctor` says when the project's key alone reads and writes every row."""
        if self.user_id is not None or _is_service_key(self._key):
            return None
        return (
            f"{self.describe()} is single-user: anyone who holds its anon key can read, change and add rows "
            "(soranb submits only the jobs this installation created). Keep the key private, or apply "
            f"{MIGRATION_HARDENING} and sign in (SUPABASE_EMAIL/SUPABASE_PASSWORD): see docs/supabase.md"
        )

    # -- records -----------------------------------------------------------------------
    async def insert(self, record: GenerationRecord, *, lease: tuple[str, timedelta] | None = None) -> GenerationRecord:
        if self._secret is not None:
            record = sign(self._secret, record)
        row = _to_columns({name: getattr(record, name) for name in _FIELD_COLUMNS})
        if lease is not None:
            row |= {"lease_owner": lease[0], "lease_expires_at": (utcnow() + lease[1]).isoformat()}
        async with self._guard(f"saving record {record.id}", write=True):
            answer = await self.client.table(TABLE).insert(row).execute()
        return _from_row(answer.data[0]) if answer.data else record

    async def get(self, record_id: str) -> GenerationRecord:
        if not _is_uuid(record_id):
            raise RecordNotFound(f"no record {record_id!r} in {self.describe()}")
        async with self._guard(f"reading record {record_id}"):
            answer = await self.client.table(TABLE).select(_SELECT).eq("id", record_id).limit(1).execute()
        if not answer.data:
            raise RecordNotFound(f"no record {record_id!r} in {self.describe()}")
        return _from_row(answer.data[0])

    async def update(
        self,
        record_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Status | Iterable[Status] | None = None,
    ) -> GenerationRecord:
        values = _to_columns({**changes, "updated_at": utcnow()})  # the server's trigger sets the time
        if not _is_uuid(record_id):
            raise RecordNotFound(f"no record {record_id!r} in {self.describe()}")
        expected = status_values(expect_status)
        query = self.client.table(TABLE).update(values).eq("id", record_id)
        if expected:
            query = query.in_("status", expected)  # compare-and-set in the same request
        async with self._guard(f"updating record {record_id}", write=True):
            answer = await query.select(_SELECT).execute()
        if answer.data:
            return _from_row(answer.data[0])
        current = await self.get(record_id)  # raises RecordNotFound
        raise RecordConflict(
            f"record {record_id} is {current.status}, not {' or '.join(expected)}; it changed meanwhile"
        )

    async def query(self, query: RecordQuery) -> list[GenerationRecord]:
        if query.limit <= 0:
            return []
        request = self._filtered(self.client.table(TABLE).select(_SELECT), query)
        desc = query.newest_first
        request = request.order("created_at", desc=desc).order("id", desc=desc)
        request = request.range(query.offset, query.offset + query.limit - 1)
        async with self._guard("listing records"):
            answer = await request.execute()
        return [_from_row(row) for row in answer.data]

    async def count(self, query: RecordQuery) -> int:
        request = self._filtered(self.client.table(TABLE).select("id", count=CountMethod.exact, head=True), query)
        async with self._guard("counting records"):
            answer = await request.execute()
        return int(answer.count or 0)

    def _filtered(self, request: Any, query: RecordQuery) -> Any:
        if query.statuses:
            request = request.in_("status", sorted(s.value for s in query.statuses))
        if query.model:
            request = request.eq("model", query.model)
        if query.search:
            # A case-insensitive regex of the escaped text: `%`, `_` and `*` (PostgREST's like
            # wildcard) all match themselves.
            request = request.filter("prompt", "imatch", re.escape(query.search))
        if query.since is not None:
            request = request.gte("created_at", query.since.astimezone(UTC).isoformat())
        if query.ids is not None:
            request = request.in_("id", sorted(i for i in query.ids if _is_uuid(i)) or [_NO_ID])
        if query.tags:
            request = request.contains("tags", sorted(query.tags))  # `cs`, each tag quoted as an array element
        if query.favourite is not None:
            request = request.eq("favourite", "true" if query.favourite else "false")
        if query.diagnostic is not None:  # jsonb containment: `metadata.diagnostic` is JSON true
            marked = {"diagnostic": True}
            request = (
                request.contains("metadata", marked) if query.diagnostic else request.not_.contains("metadata", marked)
            )
        return request

    async def delete(self, record_id: str) -> None:
        record = await self.get(record_id)
        # Media first: if that fails the row is still there and a retry finishes the job.
        for key in owned_media_keys(record):
            if is_media_key(key):
                await self.delete_media(key)
        async with self._guard(f"deleting record {record_id}", write=True):
            answer = await (
                self.client.table(TABLE)
                .delete(returning=ReturnMethod.representation)
                .eq("id", record_id)
                .select("id")
                .execute()
            )
        if not answer.data:
            raise RecordNotFound(f"no record {record_id!r} in {self.describe()}")

    # -- leases ---------------------------------------------------------------------------
    async def claim(self, record_id: str, owner: str, ttl: timedelta, *, expect_status: Status | None = None) -> bool:
        """One conditional update that checks the lease and the status together.

        A lease whose holder is a process on this machine that is gone is taken over with a second
        conditional update naming that holder (PostgREST cannot ask this machine about processes).
        The lease clock is this machine's: keep clocks in sync (ttl >> skew).
        """
        if not _is_uuid(record_id):
            return False
        now = utcnow()
        free = (
            f"lease_owner.is.null,lease_owner.eq.{_quote(owner)},lease_expires_at.lt.{_quote(now.isoformat())},"
            f"lease_expires_at.gt.{_quote((now + LEASE_LONGEST).isoformat())}"
        )
        if await self._claim_where(record_id, owner, ttl, expect_status, ("or", free)):
            return True
        async with self._guard(f"reading the lease of {record_id}"):
            answer = await self.client.table(TABLE).select("lease_owner").eq("id", record_id).execute()
        row = answer.data[0] if answer.data else None
        holder = row.get("lease_owner") if isinstance(row, dict) else None
        if isinstance(holder, str) and holder_is_gone(holder):
            return await self._claim_where(record_id, owner, ttl, expect_status, ("eq", holder))
        return False

    async def _claim_where(
        self,
        record_id: str,
        owner: str,
        ttl: timedelta,
        expect_status: Status | None,
        lease_filter: tuple[str, str],
    ) -> bool:
        async with self._guard(f"claiming record {record_id}", write=True):
            request = (
                self.client.table(TABLE)
                .update({"lease_owner": owner, "lease_expires_at": (utcnow() + ttl).isoformat()})
                .eq("id", record_id)
            )
            kind, value = lease_filter
            request = request.or_(value) if kind == "or" else request.eq("lease_owner", value)
            if expect_status is not None:
                request = request.eq("status", Status(expect_status).value)
            answer = await request.select("id").execute()
        return bool(answer.data)

    async def release(self, record_id: str, owner: str) -> None:
        if not _is_uuid(record_id):
            return
        async with self._guard(f"releasing record {record_id}", write=True):
            await (
                self.client.table(TABLE)
                .update({"lease_owner": None, "lease_expires_at": None}, returning=ReturnMethod.minimal)
                .eq("id", record_id)
                .eq("lease_owner", owner)
                .execute()
            )

    # -- media ------------------------------------------------------------------------------
    def object_location(self, key: str) -> tuple[str, str]:
        """(bucket, object path) of a store key; thumbnails share the video bucket."""
        if not is_media_key(key):
            raise ValueError(f"not a soranb media key: {key!r}")
        bucket = self.image_bucket if key.startswith("images/") else self.video_bucket
        return bucket, f"{self.user_id}/{key}" if self.user_id else key

    async def put_media(self, key: str, source: Path, content_type: str) -> None:
        bucket, path = self.object_location(key)
        size = Path(source).stat().st_size
        limit = int(self.max_upload_mb * _MB)
        if size > limit:
            raise StoreWriteFailed(
                f"{key} is {size / _MB:.1f} MB, over the {self.max_upload_mb:g} MB per-file upload limit of "
                f"{self.describe()} (setting max_upload_mb; raise it only if the project's plan and the "
                "bucket's file size limit allow larger files)"
            )
        async with self._guard(f"uploading {key}", write=True):
            with open(source, "rb") as stream:  # streamed from disk by httpx, never read whole
                await self.client.storage.from_(bucket).upload(
                    path, stream, {"content-type": content_type, "upsert": "true"}
                )
        self._signed.pop((bucket, path), None)

    async def media_url(self, key: str) -> str:
        if key.startswith(("https://", "http://")):
            return key  # a row written before soranb kept a full URL
        bucket, path = self.object_location(key)
        if self.public_buckets:
            return await self.client.storage.from_(bucket).get_public_url(path)
        return await self._signed_url(bucket, path, key)

    async def _signed_url(self, bucket: str, path: str, key: str) -> str:
        """A signed URL, reused until it is close to expiring."""
        cached = self._signed.get((bucket, path))
        margin = min(300.0, self.signed_url_ttl / 5)
        if cached is not None and cached.expires_at - time.monotonic() > margin:
            return cached.url
        issued = time.monotonic()
        async with self._guard(f"signing a URL for {key}", missing=f"no media {key!r} in {self.describe()}"):
            answer = await self.client.storage.from_(bucket).create_signed_url(path, self.signed_url_ttl)
        url = answer["signedURL"]
        if not url:
            raise RecordNotFound(f"no media {key!r} in {self.describe()}")
        self._signed[(bucket, path)] = _SignedUrl(url, issued + self.signed_url_ttl)
        return url

    async def fetch_media(self, key: str, dest: Path) -> Path:
        if not is_media_key(key):  # a URL an older app kept is played as it is, never fetched by soranb
            raise RecordNotFound(f"{key!r} is not one of {self.describe()}'s own media keys; soranb fetches no URL")
        limit = int(self.max_upload_mb * _MB)  # nothing soranb stored is larger
        url = await self.media_url(key)
        dest = Path(dest)
        missing = f"no media {key!r} in {self.describe()}"
        http = self._http
        assert http is not None
        async with self._guard(f"downloading {key}", missing=missing), http.stream("GET", url) as answer:
            if answer.status_code in (400, 404):
                raise RecordNotFound(missing)
            answer.raise_for_status()
            with written_whole(dest) as partial, open(partial, "wb") as out:
                received = 0
                async for chunk in answer.aiter_bytes(_CHUNK):
                    received += len(chunk)
                    if received > limit:
                        raise StoreCorrupt(
                            f"{key} in {self.describe()} is larger than {self.max_upload_mb:g} MB, more than "
                            "soranb ever stores there; it was not read (replaced by someone else?)"
                        )
                    out.write(chunk)
        return dest

    async def delete_media(self, key: str) -> None:
        bucket, path = self.object_location(key)
        async with self._guard(f"deleting {key}", write=True):
            await self.client.storage.from_(bucket).remove([path])
        self._signed.pop((bucket, path), None)

    # -- diagnostics --------------------------------------------------------------------------
    async def check_schema(self) -> list[str]:
        problems = await self._check_columns()
        if any("refuses signed-out access" in p for p in problems):
            return problems  # a per-user project also hides its buckets from signed-out callers
        for bucket, migration in (
            (self.video_bucket, MIGRATION_VIDEO_BUCKET),
            (self.image_bucket, MIGRATION_IMAGE_BUCKET),
        ):
            if not await self._bucket_exists(bucket):
                problems.append(
                    f"bucket {bucket} is missing (or hidden from this key): apply supabase/migrations/{migration}"
                )
        return problems

    async def _check_columns(self) -> list[str]:
        try:
            await self._probe(EXPECTED_COLUMNS)
            return []
        except APIError as exc:
            first = exc
        if first.code in ("42P01", "PGRST205"):
            return [f"table {TABLE} is missing: apply supabase/migrations/{MIGRATION_TABLE}"]
        if first.code == "42501" and self.user_id is None:
            return [
                f"{self.describe()} refuses signed-out access to {TABLE} (per-user policies from "
                f"{MIGRATION_HARDENING}): set SUPABASE_EMAIL and SUPABASE_PASSWORD, or SUPABASE_ACCESS_TOKEN"
            ]
        if first.code not in _SCHEMA_CODES:
            raise self._translate(first, "checking the schema", write=False, missing=None) from first

        async def missing(column: str) -> bool:
            try:
                await self._probe([column])
                return False
            except APIError as exc:
                if exc.code in _SCHEMA_CODES:
                    return True
                raise self._translate(exc, "checking the schema", write=False, missing=None) from exc

        columns = list(EXPECTED_COLUMNS)
        flags = await asyncio.gather(*(missing(c) for c in columns))
        return [
            f"column {TABLE}.{column} is missing: apply supabase/migrations/{EXPECTED_COLUMNS[column]}"
            for column, flag in zip(columns, flags, strict=True)
            if flag
        ]

    async def _probe(self, columns: Iterable[str]) -> None:
        try:
            await self.client.table(TABLE).select(",".join(columns)).limit(0).execute()
        except APIError:
            raise
        except Exception as exc:
            raise self._translate(exc, "checking the schema", write=False, missing=None) from exc

    async def _bucket_exists(self, bucket: str) -> bool:
        try:
            async with self._guard(f"looking up bucket {bucket}", missing="bucket"):
                await self.client.storage.get_bucket(bucket)
            return True
        except RecordNotFound:
            return False

    async def _bucket_is_public(self, bucket: str) -> bool:
        """Public buckets get plain URLs; when the bucket cannot be read, signed URLs work either way."""
        try:
            async with self._guard(f"looking up bucket {bucket}", missing="bucket"):
                return bool((await self.client.storage.get_bucket(bucket)).public)
        except RecordNotFound:
            return False

    # -- the one place supabase/httpx errors become soranb errors ---------------------------
    @contextlib.asynccontextmanager
    async def _guard(self, action: str, *, write: bool = False, missing: str | None = None) -> AsyncIterator[None]:
        try:
            yield
        except SoranbError:
            raise
        except (APIError, StorageException, AuthError, httpx.HTTPError, OSError) as exc:
            raise self._translate(exc, action, write=write, missing=missing) from None

    def _translate(self, exc: BaseException, action: str, *, write: bool, missing: str | None) -> StoreError:
        where = self.describe()
        failed: type[StoreError] = StoreWriteFailed if write else StoreUnavailable
        if isinstance(exc, httpx.TimeoutException):
            return StoreUnavailable(f"{action}: {where} did not answer in time")
        if isinstance(exc, httpx.TransportError):
            return StoreUnavailable(f"{action}: cannot reach {where} ({type(exc).__name__})")
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            if status in (400, 404) and missing:
                return RecordNotFound(missing)
            return (StoreUnavailable if status >= 500 else failed)(f"{action}: {where} answered HTTP {status}")
        if isinstance(exc, AuthError):
            who = f" as {self._email}" if self._email else ""
            return StoreUnavailable(f"{action}: signing in to {where}{who} failed: {self._scrub(exc.message)}")
        if isinstance(exc, APIError):
            return self._translate_database(exc, action, failed)
        if isinstance(exc, StorageApiError):
            return self._translate_storage(exc, action, failed, missing)
        if isinstance(exc, StorageException):
            return failed(f"{action}: {where} storage failed ({self._scrub(str(exc))})")
        if isinstance(exc, OSError):
            return StoreWriteFailed(f"{action}: {exc.strerror or exc} ({exc.filename or 'local file'})")
        return failed(f"{action}: {where} failed ({type(exc).__name__})")

    def _translate_database(self, exc: APIError, action: str, failed: type[StoreError]) -> StoreError:
        """A PostgREST (database) error by its Postgres or PostgREST code."""
        where = self.describe()
        code, message = str(exc.code or ""), self._scrub(exc.message or str(exc.code))
        if code == "23505":
            return RecordConflict(f"{action}: {message}")
        if code in _SCHEMA_CODES:
            return StoreCorrupt(
                f"{action}: the schema of {where} lacks something soranb needs ({message}); "
                "run check_schema() (`soranb doctor`) and apply the migrations it names"
            )
        if code in _AUTH_CODES or "JWT" in message:
            return StoreUnavailable(
                f"{action}: {where} rejected the key or session ({message}); check SUPABASE_KEY "
                "and the sign-in settings"
            )
        if code == "42501":
            return failed(
                f"{action}: not allowed by the row-level security of {where} ({message}); a project "
                "with per-user policies needs a signed-in user (SUPABASE_EMAIL/SUPABASE_PASSWORD)"
            )
        if code in _VALUE_CODES:
            return StoreWriteFailed(f"{action}: {where} refused the values ({message})")
        if (code.isdigit() and int(code) >= 500) or code.startswith("PGRST00"):
            return StoreUnavailable(f"{action}: {where} failed ({message})")
        return failed(f"{action}: {where} said {message} ({code})")

    def _translate_storage(
        self, exc: StorageApiError, action: str, failed: type[StoreError], missing: str | None
    ) -> StoreError:
        """A Storage (media bucket) error by its HTTP status and text."""
        where = self.describe()
        status_text, text = str(exc.status), self._scrub(exc.message)
        lowered = text.lower()
        if status_text == "404" or "not found" in lowered:
            if missing:
                return RecordNotFound(missing)
            if "bucket" in lowered:
                return StoreCorrupt(
                    f"{action}: a bucket is missing in {where} ({text}); run check_schema() "
                    "and apply the migrations it names"
                )
            return RecordNotFound(f"{action}: {text}")
        if status_text == "413" or "too large" in lowered or "exceeded the maximum" in lowered:
            return StoreWriteFailed(
                f"{action}: {where} refused the file as too large ({text}); the project's plan or the "
                f"bucket's file size limit is below max_upload_mb={self.max_upload_mb:g}"
            )
        if "jwt" in lowered or status_text == "401":
            return StoreUnavailable(f"{action}: {where} rejected the key or session ({text})")
        if status_text == "403" or "row-level security" in lowered:
            return failed(
                f"{action}: not allowed by the storage policies of {where} ({text}); per-user buckets "
                "need a signed-in user"
            )
        if status_text.isdigit() and int(status_text) >= 500:
            return StoreUnavailable(f"{action}: {where} storage failed ({text})")
        return failed(f"{action}: {where} storage said {text} ({status_text})")

    def _scrub(self, text: str) -> str:
        """Whatever a server echoes, a key or password never reaches a message (soranb's one redactor)."""
        return redact(text, [s for s in (self._key, self._access_token, self._password) if s])


# -- rows ------------------------------------------------------------------------------------


def _to_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for name, value in values.items():
        column = _FIELD_COLUMNS.get(name)
        if column is None:
            raise ValueError(f"unknown record field {name!r}")
        if isinstance(value, Status):
            value = value.value
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif name == "metadata":
            value = dict(value or {})
        elif name == "tags":
            value = list(value or ())
        row[column] = value
    return row


def _from_row(row: Any) -> GenerationRecord:
    """A record from a PostgREST row (a JSON object); columns soranb does not know are ignored.

    A damaged row (an unknown status, a missing column, a media column that is neither a store key
    nor an http(s) URL) becomes a failed record that says why, so one row never stops the history.
    """
    data = {_COLUMN_FIELDS[c]: v for c, v in row.items() if c in _COLUMN_FIELDS} if isinstance(row, dict) else {}
    try:
        missing = [c for c in _FIELD_COLUMNS.values() if c not in row]
        if missing:
            raise ValueError(f"missing column {', '.join(missing)}")
        data["id"] = str(data["id"])
        data["progress"] = int(data.get("progress") or 0)
        if not isinstance(data.get("metadata"), dict):
            raise ValueError("metadata is not a JSON object")
        for name in ("video_key", "thumbnail_key", "image_key"):
            value = data.get(name)
            if value is not None and not (isinstance(value, str) and (is_media_key(value) or _is_http_url(value))):
                raise ValueError(f"{_FIELD_COLUMNS[name]} is neither a store key nor an http(s) URL")
        return GenerationRecord.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        return GenerationRecord.unreadable(data, f"missing {exc}" if isinstance(exc, KeyError) else str(exc))


def _is_http_url(value: str) -> bool:
    """A full URL an older app kept in a media column (played as it is, never fetched by soranb)."""
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def _quote(value: str) -> str:
    """A value inside a PostgREST `or=(...)` list, quoted so `,.:()` in it mean themselves."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _is_service_key(key: str) -> bool:
    """A service role key (it bypasses row-level security, so no policy question arises)."""
    if key.startswith("sb_secret_"):
        return True
    try:
        payload = key.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, TypeError, ValueError):
        return False
    return isinstance(claims, dict) and claims.get("role") == "service_role"


def _jwt_subject(token: str) -> str:
    """The user id (`sub`) of a Supabase access token; the server verifies the signature."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(uuid.UUID(str(claims["sub"])))
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError("SUPABASE_ACCESS_TOKEN is not a user's access token (a JWT with a sub)") from exc
