"""JobRunner: moves records through their lifecycle against the provider.

One `step()` is what the background poller repeats (tests call it directly):

    pending     submit while slots are free (a lost create answer is looked up first, never re-sent blindly)
    processing  one list call refreshes every open job (retrieve for the rest, or when there is no list)
    finished    stream the video and thumbnail into the store under a lease, then mark the record

Every status change goes through the store as a compare-and-set, so two runners on
one store (two kernels, a kernel and the CLI) never submit or download a job twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from .debuglog import DebugLog
from .errors import (
    AuthenticationFailed,
    ContentExpired,
    JobNotFound,
    ModelRetired,
    ProviderError,
    ProviderRejected,
    RecordConflict,
    RecordNotFound,
    RequestInvalid,
    SoranbError,
)
from .provider import ProviderJob, VideoProvider
from .records import GenerationRecord, Status
from .request import GenerationRequest, ImageInput
from .schedule import PollSchedule
from .store.base import RecordQuery, Store, media_key

__all__ = ["JobRunner", "PollReport"]

_LEASE = timedelta(minutes=10)
_MAX_CREATE_ATTEMPTS = 8  # with backoff 1, 2, 4 ... s: about four minutes of outage
_PARALLEL_DOWNLOADS = 4  # finished jobs stored at once in one poll step


@dataclass
class PollReport:
    """What one poll step did (the unit tests and benchmarks look at)."""

    open_jobs: int = 0
    status_requests: int = 0
    submitted: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    next_delay_s: float = 0.0


class JobRunner:
    """The provider-facing half of the service: submit, refresh, store. Runs on the service's loop."""

    def __init__(
        self,
        *,
        provider: VideoProvider,
        store: Store,
        log: DebugLog,
        emit: Callable[..., None],
        schedule: PollSchedule,
        owner_id: str,
        tmp_dir: Path,
        max_concurrent_jobs: int,
        poll_interval_max_s: float,
    ) -> None:
        self.provider = provider
        self.store = store
        self.log = log
        self._emit = emit
        self.schedule = schedule
        self.owner_id = owner_id
        self.tmp_dir = tmp_dir
        self.max_concurrent_jobs = max_concurrent_jobs
        self.poll_interval_max_s = poll_interval_max_s
        self.list_supported = True  # one list call refreshes many jobs; some gateways have no list
        self._create_failures: dict[str, int] = {}
        self._lock = asyncio.Lock()  # one step at a time, whoever asks (poller, button, test)

    async def submit(
        self,
        record: GenerationRecord,
        request: GenerationRequest,
        *,
        remix_of: GenerationRecord | None = None,
        raise_errors: bool = False,
    ) -> GenerationRecord:
        """Create the provider job for a pending record, at most once across services."""
        if not await self.store.claim(record.id, self.owner_id, _LEASE):
            return record  # another service is submitting it
        try:
            known = {r.openai_job_id for r in await self.store.list(RecordQuery(limit=200)) if r.openai_job_id}
            job: ProviderJob | None = None
            created = False
            attempted = record.metadata.get("create_attempted_at")
            if attempted:  # an earlier answer was lost: the job may exist already
                job = await self.provider.find_job(request, since=float(attempted) - 5, exclude=known)
            if job is None:
                metadata = {**record.metadata, "create_attempted_at": time.time()}
                record = await self.store.update(record.id, {"metadata": metadata}, expect_status=Status.PENDING)
                if remix_of is not None:
                    job = await self.provider.remix(remix_of.openai_job_id or "", request.prompt)
                else:
                    job = await self.provider.create(request, known_job_ids=known)
                created = True
            self.schedule.observe(job, just_created=created)  # a job just created starts now on its clock
            record = await self._apply_job(record, job, expect=Status.PENDING)
            self.log.info(f"record {record.id} -> job {job.id} ({job.status})")
            return record
        except (RequestInvalid, ProviderRejected, ModelRetired, AuthenticationFailed) as exc:
            record = await self._fail(record, str(exc), expect=Status.PENDING)
            if raise_errors:
                raise
            return record
        except ProviderError as exc:
            failures = self._create_failures[record.id] = self._create_failures.get(record.id, 0) + 1
            if failures >= _MAX_CREATE_ATTEMPTS:
                record = await self._fail(record, f"gave up after {failures} attempts: {exc}", Status.PENDING)
            else:
                self.log.warning(f"record {record.id} stays pending and will be retried: {exc}")
            if raise_errors:
                raise
            return record
        finally:
            await self.store.release(record.id, self.owner_id)

    async def step(self, *, only_when_due: bool = False) -> PollReport:
        """One poll step; `only_when_due` (the background loop) skips the refresh until the schedule wants one,
        so a wake-up for a new record submits it without a list call."""
        assert self._lock is not None
        async with self._lock:
            report = PollReport()
            open_records = await self.store.list(RecordQuery.open_jobs())
            report.open_jobs = len(open_records)
            pending = [r for r in open_records if r.status == Status.PENDING]
            running = [r for r in open_records if r.status == Status.PROCESSING and r.openai_job_id]
            stuck = 0
            for record in pending[: max(0, self.max_concurrent_jobs - len(running))]:
                updated = await self._submit_pending(record)
                if updated.status == Status.PROCESSING:
                    report.submitted.append(updated.id)
                    running.append(updated)
                elif updated.status == Status.PENDING:
                    stuck += 1
            etas = self._etas(running) if only_when_due else []
            if running and only_when_due and not self.schedule.due(etas):
                report.next_delay_s = self.schedule.next_delay(etas)
            elif running:
                jobs, report.status_requests, hint = await self._refresh(running)
                slots = asyncio.Semaphore(_PARALLEL_DOWNLOADS)

                async def advance(record: GenerationRecord, job: ProviderJob) -> GenerationRecord | None:
                    async with slots:
                        return await self._advance(record, job)

                pairs = [(r, jobs[r.openai_job_id]) for r in running if r.openai_job_id in jobs]
                outcomes = await asyncio.gather(*(advance(r, job) for r, job in pairs))
                for outcome in outcomes:
                    if outcome is not None and outcome.status == Status.COMPLETED:
                        report.completed.append(outcome.id)
                    elif outcome is not None and not outcome.is_open:
                        report.failed.append(outcome.id)
                still_open = [r for r in running if r.id not in report.completed and r.id not in report.failed]
                report.next_delay_s = (
                    self.schedule.next_delay(self._etas(still_open), hint_ms=hint)
                    if still_open
                    else self.schedule.min_interval_s
                )
                if len(still_open) < len(running) and len(pending) > len(report.submitted):
                    report.next_delay_s = self.schedule.min_interval_s  # a slot is free: submit the next soon
            else:
                report.next_delay_s = self.poll_interval_max_s if not pending else 1.0
            if stuck:  # the provider refused or did not answer: back off before the next attempt
                report.next_delay_s = max(report.next_delay_s, self.schedule.after_failure())
            return report

    async def _submit_pending(self, record: GenerationRecord) -> GenerationRecord:
        request = GenerationRequest(prompt=record.prompt, model=record.model, size=record.size, seconds=record.seconds)
        remix_of = None
        if record.remixed_from:
            with contextlib.suppress(RecordNotFound):
                remix_of = await self.store.get(record.remixed_from)
        if record.image_key:
            tmp = await self.store.fetch_media(record.image_key, self.tmp_path(".img"))
            data = await asyncio.to_thread(tmp.read_bytes)
            tmp.unlink(missing_ok=True)
            request = replace(request, image=ImageInput(record.image_filename or "image", data))
        try:
            return await self.submit(record, request, remix_of=remix_of)
        except RecordConflict:
            return await self.store.get(record.id)

    async def _refresh(self, running: list[GenerationRecord]) -> tuple[dict[str, ProviderJob], int, int | None]:
        """The provider's view of every running job: one list call covers many; retrieve the rest."""
        wanted = {r.openai_job_id for r in running if r.openai_job_id}
        oldest = min(r.created_at for r in running).timestamp() - 60
        found: dict[str, ProviderJob] = {}
        requests, hint, after = 0, None, None
        for _ in range(5 if self.list_supported else 0):  # the 500 newest; older ones one by one
            try:
                page = await self.provider.list_page(after=after, limit=100, order="desc")
            except (JobNotFound, ModelRetired, ProviderRejected) as exc:
                self.list_supported = False
                self.log.warning(f"poller: the provider cannot list jobs ({exc}); asking for each job instead")
                break
            requests += 1
            hint = page.poll_after_ms if page.poll_after_ms is not None else hint
            for job in page.jobs:
                if job.id in wanted:
                    found[job.id] = job
            if len(found) == len(wanted) or not page.has_more or not page.jobs:
                break
            if page.jobs[-1].created_at < oldest:
                break
            after = page.last_id
        for job_id in wanted - found.keys():
            requests += 1
            try:
                found[job_id] = await self.provider.retrieve(job_id)
            except JobNotFound:
                found[job_id] = ProviderJob(
                    id=job_id,
                    status="failed",
                    progress=0,
                    created_at=0,
                    error_code="not_found",
                    error_message="the provider no longer knows this job (deleted or expired there)",
                )
        return found, requests, hint

    async def _advance(self, record: GenerationRecord, job: ProviderJob) -> GenerationRecord | None:
        """Move a record along with its job; returns the record when its status changed."""
        try:
            self.schedule.observe(job)  # any status: a completed job teaches the provider's pace
            if job.status in ("queued", "in_progress"):
                if job.progress != record.progress or record.metadata.get("provider_status") != job.status:
                    metadata = {**record.metadata, "provider_status": job.status}
                    updated = await self.store.update(
                        record.id,
                        {"progress": job.progress, "metadata": metadata},
                        expect_status=Status.PROCESSING,
                    )
                    self._emit("progress", updated)
                return None
            self.schedule.forget([job.id])
            if job.status == "completed":
                return await self._finish(record, job)
            if job.status in ("canceled", "cancelled"):
                return await self._close(record, Status.CANCELLED, "the provider cancelled this job")
            if job.status == "expired":
                return await self._close(record, Status.EXPIRED, "the provider's files expired before download")
            message = job.error_message or job.error_code or "the provider reported a failure without a reason"
            if job.error_code and job.error_code not in message:
                message = f"{message} ({job.error_code})"
            return await self._fail(record, message, expect=Status.PROCESSING)
        except (RecordConflict, RecordNotFound):
            return None  # changed or deleted meanwhile (another service, or the user)

    async def _finish(self, record: GenerationRecord, job: ProviderJob) -> GenerationRecord | None:
        """Stream the video and thumbnail into the store, then mark the record completed."""
        if not await self.store.claim(record.id, self.owner_id, _LEASE):
            return None  # another service is downloading it
        try:
            if (await self.store.get(record.id)).status != Status.PROCESSING:
                return None  # another service finished it between our read and our claim
            video_key = media_key("videos", record.id)
            try:
                path = await self.provider.download(job.id, "video", self.tmp_path(".mp4"))
            except ContentExpired as exc:
                return await self._close(record, Status.EXPIRED, str(exc))
            await self.store.put_media(video_key, path, "video/mp4")
            thumbnail_key: str | None = media_key("thumbnails", record.id)
            try:
                thumb = await self.provider.download(job.id, "thumbnail", self.tmp_path(".webp"))
                await self.store.put_media(thumbnail_key or "", thumb, "image/webp")
            except ProviderError as exc:
                self.log.warning(f"record {record.id}: no thumbnail ({exc})")
                thumbnail_key = None
            metadata = {
                **record.metadata,
                "provider_status": job.status,
                "completed_at": job.completed_at,
                "expires_at": job.expires_at,
            }
            changes = {
                "status": Status.COMPLETED,
                "progress": 100,
                "video_key": video_key,
                "thumbnail_key": thumbnail_key,
                "metadata": metadata,
            }
            record.evolve(**changes)  # the status machine must allow it
            updated = await self.store.update(record.id, changes, expect_status=Status.PROCESSING)
            self.log.info(f"record {record.id} completed: {video_key}")
            self._emit("completed", updated)
            return updated
        finally:
            with contextlib.suppress(SoranbError):
                await self.store.release(record.id, self.owner_id)

    async def _apply_job(self, record: GenerationRecord, job: ProviderJob, *, expect: Status) -> GenerationRecord:
        changes = {
            "status": Status.PROCESSING,
            "openai_job_id": job.id,
            "progress": job.progress,
            "metadata": {**record.metadata, "provider_status": job.status},
        }
        record.evolve(**changes)
        updated = await self.store.update(record.id, changes, expect_status=expect)
        self._emit("updated", updated)
        return updated

    async def _fail(self, record: GenerationRecord, message: str, expect: Status) -> GenerationRecord:
        updated = await self.store.update(
            record.id, {"status": Status.FAILED, "error_message": message}, expect_status=expect
        )
        self.log.warning(f"record {record.id} failed: {message}")
        self._emit("failed", updated, message)
        return updated

    async def _close(self, record: GenerationRecord, status: Status, message: str) -> GenerationRecord:
        updated = await self.store.update(
            record.id, {"status": status, "error_message": message}, expect_status=Status.PROCESSING
        )
        self.log.warning(f"record {record.id} {status}: {message}")
        self._emit("failed", updated, message)
        return updated

    def _etas(self, records: list[GenerationRecord]) -> list[float | None]:
        """Seconds until each record's job is worth a refresh, by the poll schedule."""
        return [
            self.schedule.eta_s(r.openai_job_id or "", model=r.model, size=r.size, seconds=r.seconds) for r in records
        ]

    def tmp_path(self, suffix: str) -> Path:
        """A fresh temp file beside the store's media, so moving it into the store is a rename."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(suffix=suffix, dir=self.tmp_dir)
        os.close(handle)
        return Path(name)
