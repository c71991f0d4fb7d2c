"""JobRunner: moves records through their lifecycle against the provider.

One `step()` is what the background poller repeats (tests call it directly):

    pending     submit while slots are free (a lost create answer is looked up first, never re-sent blindly)
    processing  one list call refreshes every open job (retrieve for the rest, or when there is no list)
    finished    stream the video and thumbnail to disk, check the video is whole, store it, mark the record

Two rules keep it trustworthy with several services on one store and a provider that misbehaves:

- Leases follow their holder. A record is claimed (in the same statement that checks its status) for a
  short time and renewed by a heartbeat while its holder works, so a long download keeps it; a holder
  on this machine whose process is gone loses it at once. Two services never submit or download a job
  twice, and a killed one never holds a job hostage.
- One record's trouble is that record's trouble. Every record is advanced in isolation: a transient
  failure (rate limit, outage, cut download, full disk) leaves it open for the next step; an answer that
  breaks the API's shape, or an unexpected error, counts against that record and ends it `failed` with
  the reason after a few in a row. Every other record keeps moving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from .catalog import MODELS
from .debuglog import DebugLog
from .errors import (
    AuthenticationFailed,
    ContentExpired,
    ContentIncomplete,
    JobNotFound,
    ModelRetired,
    ProviderAnswerInvalid,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    RecordConflict,
    RecordNotFound,
    RequestInvalid,
    SoranbError,
    StoreWriteFailed,
)
from .leases import LEASE_TTL, tmp_folder_name
from .media_check import verify_video
from .provider import ProviderJob, Variant, VideoProvider, check_job_id, short_job_id
from .records import GenerationRecord, Status
from .request import GenerationRequest, ImageInput
from .schedule import PollSchedule
from .sends import Permit, SendLedger, Verdict
from .sprites import MAX_FRAMES, Spritesheet, spritesheet_key
from .stills import grid_of, is_image, spritesheet_from_video, thumbnail_from_video
from .store.base import RecordQuery, Store, media_key

__all__ = ["JobRunner", "PollReport"]

T = TypeVar("T")

_MAX_CREATE_ATTEMPTS = 8  # with backoff 1, 2, 4 ... 60 s between them: about two minutes of outage
_STRIKES = 3  # invalid answers or unexpected errors in a row before a record is ended
_MAX_DAMAGED_DOWNLOADS = 4  # a video that arrives cut short this often is ended as damaged
_PARALLEL_DOWNLOADS = 4  # finished jobs stored at once in one poll step
_THUMBNAIL_TRIES = 3
_MIN_JOB_DEADLINE_S = 2 * 3600.0
# Failures that pass: the record stays as it is and the next step tries again.
_TRANSIENT = (ProviderUnreachable, ProviderUnavailable, RateLimited, StoreWriteFailed)
# The provider's final word on a create: the record ends failed with its message.
_REFUSED = (RequestInvalid, ProviderRejected, ModelRetired, AuthenticationFailed)


@dataclass
class PollReport:
    """What one poll step did (the unit tests and benchmarks look at)."""

    open_jobs: int = 0
    status_requests: int = 0
    submitted: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    next_delay_s: float = 0.0
    retry_after_s: float | None = None  # the longest Retry-After the provider asked for in this step


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
        sends: SendLedger,
        tmp_dir: Path,
        max_concurrent_jobs: int,
        poll_interval_max_s: float,
        lease_ttl: timedelta = LEASE_TTL,
    ) -> None:
        self.provider = provider
        self.store = store
        self.log = log
        self._emit = emit
        self.schedule = schedule
        self.owner_id = owner_id
        self.sends = sends  # what this installation stored and sent: the one judge of whether to send
        self.tmp_root = tmp_dir
        # Each process keeps its temp files in its own folder, so a new process can sweep a dead one's.
        self.tmp_dir = tmp_dir / tmp_folder_name(owner_id)
        self.max_concurrent_jobs = max_concurrent_jobs
        self.poll_interval_max_s = poll_interval_max_s
        self.lease_ttl = lease_ttl
        self._create_failures: dict[str, int] = {}
        self._strikes: dict[str, int] = {}
        self._damaged: dict[str, int] = {}
        self._retry_after: float | None = None
        self._at_work: set[str] = set()  # records this service is submitting or downloading right now
        self._reserved: set[str] = set()  # records a direct call is storing and sending: steps leave them be
        self._lock = asyncio.Lock()  # one step at a time, whoever asks (poller, button, test)

    # -- leases ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _leased(self, record_id: str, expect: Status) -> AsyncIterator[bool]:
        """Hold the record's lease while the block runs (yields False when someone else holds it).

        The claim checks the status in the same statement; a heartbeat renews the lease every
        third of its time, so work that outlives one lease period (a slow download) keeps it.
        A lease is re-entrant for its owner (that is how the heartbeat renews it), so within this
        service the poller and a direct call (generate, a button) are kept apart by the ids at work.
        """
        if record_id in self._at_work:
            yield False
            return
        self._at_work.add(record_id)  # before the first await: no other task of this service gets past
        try:
            if not await self.store.claim(record_id, self.owner_id, self.lease_ttl, expect_status=expect):
                yield False
                return

            async def heartbeat() -> None:
                while True:
                    await asyncio.sleep(self.lease_ttl.total_seconds() / 3)
                    try:
                        await self.store.claim(record_id, self.owner_id, self.lease_ttl)
                    except SoranbError as exc:
                        self.log.warning(f"record {record_id}: could not renew its lease ({exc})")

            beat = asyncio.get_running_loop().create_task(heartbeat())
            try:
                yield True
            finally:
                beat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beat
                with contextlib.suppress(SoranbError):
                    await self.store.release(record_id, self.owner_id)
        finally:
            self._at_work.discard(record_id)

    # -- submitting ----------------------------------------------------------------------
    @contextlib.contextmanager
    def reserved(self, record_id: str) -> Iterator[None]:
        """Keep this runner's poll steps off a record while a direct call stores and sends it.

        Without it a step could take a just-stored `submit_once` record for one left behind by a
        stopped process and end it before its own call sends it.
        """
        self._reserved.add(record_id)
        try:
            yield
        finally:
            self._reserved.discard(record_id)

    async def submit(
        self,
        record: GenerationRecord,
        request: GenerationRequest,
        *,
        remix_of: GenerationRecord | None = None,
        raise_errors: bool = False,
    ) -> GenerationRecord:
        """Create the provider job for a pending record, at most once across services.

        With `raise_errors`, a refusal (bad request, rejected, retired model, wrong key) is raised
        after the record is ended; a transient failure never is: the record stays pending and the
        poller tries again, honouring Retry-After. A `submit_once` record (see `_submit_pending`)
        cannot be tried again, so one that gets no usable answer ends failed, under its lease.
        """
        async with self._leased(record.id, Status.PENDING) as held:
            if not held:  # another service is submitting it, or did already
                return await self.store.get(record.id)
            if self.store.may_submit(record):  # its signature (and image) are as this installation wrote them
                permit = await self.sends.begin(record, vouched=self.store.vouches_for_rows)
            else:
                permit = Permit(Verdict.CHANGED)
            if not permit.may_send:
                return await self._not_sent(record, permit)
            try:
                return await self._create(record, request, remix_of, permit.attempted_at)
            except _REFUSED as exc:
                await self.sends.ended(record.id)
                record = await self._fail(record, str(exc), expect=Status.PENDING)
                if raise_errors:
                    raise
                return record
            except ProviderAnswerInvalid as exc:
                if exc.job_id is not None:  # created (and billed): follow it, never create again
                    await self.sends.created(record.id, exc.job_id)
                    self.log.warning(f"record {record.id}: {exc}; following job {short_job_id(exc.job_id)} anyway")
                    job = ProviderJob(id=exc.job_id, status="queued", progress=0, created_at=int(time.time()))
                    return await self._apply_job(record, job, expect=Status.PENDING)
                if exc.refused_id is not None:  # made (and billed) under an id soranb cannot call
                    return await self._refused_job(record, exc.refused_id, exc)
                await self.sends.ended(record.id)
                message = f"{exc}. The job may have been created (and billed): check the provider's dashboard"
                return await self._fail(record, message, expect=Status.PENDING)
            except ProviderError as exc:
                return await self._create_failed(record, exc)

    async def _refused_job(self, record: GenerationRecord, job_id: str, exc: ProviderAnswerInvalid) -> GenerationRecord:
        """A job the provider made under an id soranb refuses: the id stays on the record (so the job
        counts as spent and is never made again) and the record ends saying what to do."""
        await self.sends.created(record.id, job_id)
        message = (
            f"{exc}. The provider made this job ({short_job_id(job_id)}, it may be billed) and its id is kept on "
            "this record, which is never sent again; find the video in the provider's dashboard, or ask the "
            "gateway's operator for ids soranb accepts"
        )
        return await self._fail(record, message, Status.PENDING, job_id=job_id)

    async def _not_sent(self, record: GenerationRecord, permit: Permit) -> GenerationRecord:
        """A pending record the send ledger will not send (under its lease): one whose job was made
        but never noted follows that job; a finished row that came back pending, or one changed since
        it was stored, is ended saying so; a row this installation never stored is left alone."""
        if permit.verdict == Verdict.DONE and permit.job_id and not record.video_key:
            # its job was made but the row never heard (soranb stopped in between, or the row was
            # cleared): follow that job, which costs nothing, so the video paid for is never orphaned
            made = short_job_id(permit.job_id)
            self.log.warning(f"record {record.id} is pending but its job {made} was made: following it")
            job = ProviderJob(id=permit.job_id, status="queued", progress=0, created_at=int(time.time()))
            return await self._apply_job(record, job, expect=Status.PENDING)
        if permit.verdict == Verdict.DONE:
            had = f"its job {short_job_id(permit.job_id)}" if permit.job_id else "its answer from the provider"
            message = (
                f"this record was changed outside soranb: it was made pending again after {had} was made, "
                "and soranb sends a record only once. Nothing was sent; start a new generation to make it again"
            )
        elif permit.verdict == Verdict.CHANGED:
            message = (
                "this record was changed outside soranb after it was stored (its prompt, model, size, seconds "
                "or image are not what was asked), so soranb does not send it; start a new generation instead"
            )
        else:
            return record
        self.log.warning(f"record {record.id}: {message}")
        await self.sends.ended(record.id)
        return await self._fail(record, message, expect=Status.PENDING)

    async def _create(
        self,
        record: GenerationRecord,
        request: GenerationRequest,
        remix_of: GenerationRecord | None,
        attempted: float | None = None,
    ) -> GenerationRecord:
        """Send the record's create, or, when an earlier attempt (the ledger's `attempted`, else the
        row's own note of it) got no answer, first look for the job that attempt may have made."""
        known = {r.openai_job_id for r in await self.store.query(RecordQuery(limit=200)) if r.openai_job_id}
        job: ProviderJob | None = None
        created = False
        noted = record.metadata.get("create_attempted_at")
        attempted = attempted or (float(noted) if isinstance(noted, int | float) else None)
        if attempted:  # an earlier answer was lost: the job may exist already
            job = await self.provider.find_job(request, since=attempted - 5, exclude=known)
        if job is None:
            metadata = {**record.metadata, "create_attempted_at": time.time()}
            record = await self.store.update(record.id, {"metadata": metadata}, expect_status=Status.PENDING)
            if remix_of is not None:
                job = await self.provider.remix(remix_of.openai_job_id or "", request.prompt)
            else:
                job = await self.provider.create(request, known_job_ids=known)
            created = True
        await self.sends.created(record.id, job.id)  # before the store hears of it: never sent again
        self.schedule.observe(job, just_created=created)  # a job just created starts now on its clock
        record = await self._apply_job(record, job, expect=Status.PENDING)
        self._create_failures.pop(record.id, None)
        self.log.info(f"record {record.id} -> job {short_job_id(job.id)} ({job.status})")
        return record

    async def _create_failed(self, record: GenerationRecord, exc: ProviderError) -> GenerationRecord:
        """A create that got no usable answer: the record stays pending (and says why) until it is given up."""
        failures = self._create_failures[record.id] = self._create_failures.get(record.id, 0) + 1
        if isinstance(exc, RateLimited) and exc.retry_after:
            self._retry_after = max(self._retry_after or 0.0, exc.retry_after)
        reason = (
            "the provider is busy (rate limited)"
            if isinstance(exc, RateLimited)
            else f"no answer from the provider ({exc})"
        )
        if record.metadata.get("submit_once"):  # never re-sent from the store's fields: it ends here
            await self.sends.ended(record.id)
            return await self._fail(record, f"it could not be sent ({reason}); try again", Status.PENDING)
        if failures >= _MAX_CREATE_ATTEMPTS:
            await self.sends.ended(record.id)
            return await self._fail(record, f"gave up after {failures} attempts: {exc}", Status.PENDING)
        self.log.warning(f"record {record.id} stays pending and will be retried: {exc}")
        with contextlib.suppress(RecordConflict, RecordNotFound):
            record = await self.store.get(record.id)  # keeps `create_attempted_at`, written since `record` was read
            waiting = f"{reason}; soranb tries again (attempt {failures + 1})"
            metadata = {**record.metadata, "waiting_reason": waiting}
            record = await self.store.update(record.id, {"metadata": metadata}, expect_status=Status.PENDING)
            self._emit("updated", record)
        return record

    async def _submit_pending(self, record: GenerationRecord) -> GenerationRecord:
        if record.metadata.get("submit_once"):  # an extend, edit or reference the store's fields cannot rebuild
            return await self._end_unsendable(record)
        request = GenerationRequest(prompt=record.prompt, model=record.model, size=record.size, seconds=record.seconds)
        remix_of = None
        if record.remixed_from:
            with contextlib.suppress(RecordNotFound):
                remix_of = await self.store.get(record.remixed_from)
        if record.image_key:
            tmp = self.tmp_path(".img")
            try:
                await self.store.fetch_media(record.image_key, tmp)
                data = await asyncio.to_thread(tmp.read_bytes)
            except RecordNotFound:
                message = "its starting image is gone from the store; start a new generation with the image"
                return await self._fail(record, message, expect=Status.PENDING)
            finally:
                tmp.unlink(missing_ok=True)
            request = replace(request, image=ImageInput(record.image_filename or "image", data))
        return await self.submit(record, request, remix_of=remix_of)

    async def _end_unsendable(self, record: GenerationRecord) -> GenerationRecord:
        """End a `submit_once` record that its creator left pending, under its lease: a creator in
        another process that is sending it right now holds the lease, and it is left to that one."""
        async with self._leased(record.id, Status.PENDING) as held:
            if not held:
                return await self.store.get(record.id)
            message = (
                "it was stored but soranb stopped before sending it, and it cannot be sent again from the "
                "history alone (an extend, edit, characters or an image reference): start it again"
            )
            if record.metadata.get("create_attempted_at"):
                message += "; a job may have been made for it: check the provider's dashboard"
            await self.sends.ended(record.id)
            return await self._fail(record, message, expect=Status.PENDING)

    # -- one poll step -----------------------------------------------------------------------
    async def step(self, *, only_when_due: bool = False) -> PollReport:
        """One poll step; `only_when_due` (the background loop) skips the refresh until the schedule wants one,
        so a wake-up for a new record submits it without a list call."""
        async with self._lock:
            self._retry_after = None
            report = PollReport()
            open_records = await self.store.query(RecordQuery.open_jobs())
            report.open_jobs = len(open_records)
            pending = await self._sendable([r for r in open_records if r.status == Status.PENDING])
            running = await self._followable(open_records)
            stuck = 0
            for record in pending[: max(0, self.max_concurrent_jobs - len(running))]:
                updated = await self._isolated(record, self._submit_pending(record))
                if updated is not None and updated.status == Status.PROCESSING:
                    report.submitted.append(updated.id)
                    running.append(updated)
                elif updated is None or updated.status == Status.PENDING:
                    stuck += 1
            etas = self._etas(running) if only_when_due else []
            if running and only_when_due and not self.schedule.due(etas):
                report.next_delay_s = self.schedule.next_delay(etas)
            elif running:
                jobs, problems, report.status_requests, hint = await self._refresh(running)
                slots = asyncio.Semaphore(_PARALLEL_DOWNLOADS)

                async def advance(record: GenerationRecord) -> GenerationRecord | None:
                    job_id = record.openai_job_id or ""
                    if job_id in problems:
                        return await self._isolated(record, _raise(problems[job_id]))
                    async with slots:
                        return await self._isolated(record, self._advance(record, jobs[job_id]))

                outcomes = await asyncio.gather(*(advance(r) for r in running))
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
            report.retry_after_s = self._retry_after
            if stuck or self._retry_after:  # refused, unanswered or throttled: back off before trying again
                report.next_delay_s = max(report.next_delay_s, self.schedule.after_failure(self._retry_after))
            return report

    async def _sendable(self, pending: list[GenerationRecord]) -> list[GenerationRecord]:
        """The pending records this step may try: only those this installation (or this signed-in user)
        made, so a stranger's row never spends. Without a working ledger nothing new is sent, and the
        running jobs are still followed."""
        try:
            return [
                r
                for r in pending
                if r.id not in self._reserved
                and (await self.sends.judge(r, vouched=self.store.vouches_for_rows)).verdict != Verdict.FOREIGN
            ]
        except SoranbError as exc:
            self.log.warning(f"poller: nothing new is sent: {exc}")
            return []

    async def _followable(self, open_records: list[GenerationRecord]) -> list[GenerationRecord]:
        """The processing records worth a refresh; one that can never finish is ended here, saying why."""
        running: list[GenerationRecord] = []
        for record in open_records:
            if record.status != Status.PROCESSING:
                continue
            if not _usable_job_id(record.openai_job_id):  # it can never be followed at the provider
                reason = f"its provider job id {record.openai_job_id!r:.40} is not a valid job id"
                await self._isolated(record, self._fail(record, f"soranb cannot follow this job: {reason}"))
            elif (age := time.time() - record.created_at.timestamp()) > self._deadline_s(record):
                reason = f"the provider has not finished it in {age / 60:.0f} minutes (job {_short(record)})"
                await self._isolated(record, self._fail(record, f"soranb stopped waiting: {reason}"))
            else:
                running.append(record)
        return running

    async def apply_job(self, record: GenerationRecord, job: ProviderJob) -> GenerationRecord | None:
        """Move one record along with a job state learned without a poll (a verified webhook event), in
        isolation as a poll step would; returns the record when its status changed."""
        return await self._isolated(record, self._advance(record, job))

    def _deadline_s(self, record: GenerationRecord) -> float:
        """How long a job may stay open before soranb stops waiting for it (a provider that never
        finishes must not hold `soranb wait` forever): ten times its usual render time, at least two hours."""
        spec = MODELS.get(record.model)
        usual = record.seconds * (spec.render_seconds_per_clip_second if spec else 30.0) * 1.5
        return max(_MIN_JOB_DEADLINE_S, 10 * usual)

    async def _isolated(
        self, record: GenerationRecord, work: Coroutine[Any, Any, GenerationRecord | None]
    ) -> GenerationRecord | None:
        """Run one record's work so that nothing it raises reaches the other records.

        Returns the record when its status changed, else None.
        """
        try:
            outcome = await work
        except (RecordConflict, RecordNotFound):
            return None  # changed or deleted meanwhile (another service, or the user)
        except _TRANSIENT as exc:
            if isinstance(exc, RateLimited) and exc.retry_after:
                self._retry_after = max(self._retry_after or 0.0, exc.retry_after)
            self.log.warning(f"record {record.id}: {exc}; trying again on the next step")
            return None
        except ContentIncomplete as exc:
            damaged = self._damaged[record.id] = self._damaged.get(record.id, 0) + 1
            if damaged < _MAX_DAMAGED_DOWNLOADS:
                self.log.warning(f"record {record.id}: {exc}; soranb downloads it again")
                return None
            return await self._end(record, f"the provider's video arrived damaged {damaged} times: {exc}")
        except Exception as exc:  # an invalid answer, or a bug: it counts against this record only
            strikes = self._strikes[record.id] = self._strikes.get(record.id, 0) + 1
            reason = str(exc) if isinstance(exc, SoranbError) else f"unexpected {type(exc).__name__}: {exc}"
            if strikes < _STRIKES:
                self.log.warning(f"record {record.id}: {reason} ({strikes} of {_STRIKES} before it is ended)")
                return None
            return await self._end(record, f"soranb ended this job after {strikes} failed attempts: {reason}")
        self._strikes.pop(record.id, None)
        return outcome

    async def _end(self, record: GenerationRecord, message: str) -> GenerationRecord | None:
        """End an open record as failed with `message`, whatever state it is in now."""
        self._strikes.pop(record.id, None)
        self._damaged.pop(record.id, None)
        try:
            current = await self.store.get(record.id)
            if not current.is_open:
                return None
            return await self._fail(current, message, expect=current.status)
        except SoranbError as exc:
            self.log.error(f"record {record.id}: could not mark it failed ({exc})")
            return None

    async def _refresh(
        self, running: list[GenerationRecord]
    ) -> tuple[dict[str, ProviderJob], dict[str, ProviderError], int, int | None]:
        """The provider's view of every running job: one list call covers many; retrieve the rest.

        Returns the jobs found, the per-job problems (an invalid entry, a failed retrieve), the
        number of status requests made and the provider's poll hint.
        """
        wanted = {r.openai_job_id for r in running if r.openai_job_id}
        oldest = min(r.created_at for r in running).timestamp() - 60
        found: dict[str, ProviderJob] = {}
        problems: dict[str, ProviderError] = {}
        requests, hint, after = 0, None, None
        # one list call refreshes many jobs; a provider without a list (a gateway) gets a retrieve for each
        for _ in range(5 if self.provider.capabilities.get("list", True) else 0):  # the 500 newest
            try:
                page = await self.provider.list_page(after=after, limit=100, order="desc")
            except (JobNotFound, ModelRetired, ProviderRejected) as exc:
                self.log.warning(f"poller: the provider cannot list jobs ({exc}); asking for each job instead")
                break
            except ProviderAnswerInvalid as exc:
                self.log.warning(f"poller: {exc}; asking for each job instead this time")
                break
            requests += 1
            hint = page.poll_after_ms if page.poll_after_ms is not None else hint
            for job in page.jobs:
                if job.id in wanted:
                    found[job.id] = job
            for job_id, reason in page.invalid.items():
                if job_id in wanted:
                    problems[job_id] = ProviderAnswerInvalid(reason, job_id=job_id)
            if len(found) + len(problems) >= len(wanted) or not page.has_more or not page.jobs:
                break
            if page.jobs[-1].created_at < oldest or page.last_id is None:
                break
            after = page.last_id
        for job_id in wanted - found.keys() - problems.keys():
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
            except ProviderError as exc:
                problems[job_id] = exc
        return found, problems, requests, hint

    async def _advance(self, record: GenerationRecord, job: ProviderJob) -> GenerationRecord | None:
        """Move a record along with its job; returns the record when its status changed."""
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

    # -- storing a finished video ----------------------------------------------------------------
    async def _finish(self, record: GenerationRecord, job: ProviderJob) -> GenerationRecord | None:
        """Stream the video and thumbnail to disk, check the video is whole, store both, mark the record."""
        async with self._leased(record.id, Status.PROCESSING) as held:
            if not held:
                return None  # another service is downloading it, or finished it already
            video_key = media_key("videos", record.id)
            stored: list[str] = []
            try:
                path = self.tmp_path(".mp4")
                try:
                    await self.provider.download(job.id, "video", path)
                    await asyncio.to_thread(verify_video, path, record.seconds)
                    thumbnail_key = await self._store_thumbnail(record, job, path)
                    sprites = await self._store_spritesheet(record, job, path)
                    stored += [key for key in (thumbnail_key, sprites and sprites.key) if key]
                    await self.store.put_media(video_key, path, "video/mp4")
                except ContentExpired as exc:
                    return await self._close(record, Status.EXPIRED, str(exc))
                finally:
                    path.unlink(missing_ok=True)
                stored.append(video_key)
                metadata = {
                    **record.metadata,
                    "provider_status": job.status,
                    "completed_at": job.completed_at,
                    "expires_at": job.expires_at,
                }
                if sprites is not None:
                    metadata["spritesheet"] = sprites.to_metadata()
                metadata.pop("waiting_reason", None)
                changes = {
                    "status": Status.COMPLETED,
                    "progress": 100,
                    "video_key": video_key,
                    "thumbnail_key": thumbnail_key,
                    "metadata": metadata,
                }
                record.evolve(**changes)  # the status machine must allow it
                updated = await self.store.update(record.id, changes, expect_status=Status.PROCESSING)
            except RecordNotFound:
                for key in stored:  # deleted while it downloaded: leave no orphan file behind
                    with contextlib.suppress(SoranbError):
                        await self.store.delete_media(key)
                raise
            self._damaged.pop(record.id, None)
            self.log.info(f"record {record.id} completed: {video_key}")
            self._emit("completed", updated)
            return updated

    async def _store_thumbnail(self, record: GenerationRecord, job: ProviderJob, video: Path) -> str | None:
        """The thumbnail's key once stored: the provider's when it is an image, else one made from `video`."""
        key = media_key("thumbnails", record.id)
        read: Callable[[bytes], str | None] = lambda data: key if is_image(data) else None  # noqa: E731
        if await self._store_still(record, job, "thumbnail", key, "image/webp", read) is not None:
            self.provider.capabilities["variants"] = True
            return key
        self.provider.capabilities["variants"] = False
        return await self._store_made(record, key, "image/webp", thumbnail_from_video, video)

    async def _store_spritesheet(self, record: GenerationRecord, job: ProviderJob, video: Path) -> Spritesheet | None:
        """The spritesheet (for the cards' scrub preview) once stored with its grid (see `soranb.sprites`):
        the provider's when it is one, else one made from `video`; None when neither can be had."""
        key = spritesheet_key(record.id)
        read: Callable[[bytes], Spritesheet | None] = lambda data: Spritesheet.read(data, record)  # noqa: E731
        if (sheet := await self._store_still(record, job, "spritesheet", key, "image/jpeg", read)) is not None:
            return sheet
        if not 0 < record.seconds <= MAX_FRAMES:
            return None
        if await self._store_made(record, key, "image/jpeg", spritesheet_from_video, video, record.seconds) is None:
            return None
        return Spritesheet(key, *grid_of(record.seconds), record.seconds)

    async def _store_made(
        self, record: GenerationRecord, key: str, mime: str, make: Callable[..., bytes], video: Path, *args: Any
    ) -> str | None:
        """Make a still from the downloaded video (the provider had none, or sent something else) and store it."""
        path = self.tmp_path(".img")
        try:
            data = await asyncio.to_thread(make, video, *args)
            await asyncio.to_thread(path.write_bytes, data)
            await self.store.put_media(key, path, mime)
        except (OSError, ValueError, IndexError) as exc:  # PyAV could not read a frame: the card does without
            self.log.warning(f"record {record.id}: could not make {key} from the video ({exc})")
            return None
        finally:
            path.unlink(missing_ok=True)
        self.log.info(f"record {record.id}: {key} made from the video (the provider's was missing or not an image)")
        return key

    async def _store_still(
        self,
        record: GenerationRecord,
        job: ProviderJob,
        variant: Variant,
        key: str,
        mime: str,
        read: Callable[[bytes], T | None],
    ) -> T | None:
        """Fetch one still variant, `read` it (None: not kept) and store it; transient failures are retried
        (honouring Retry-After). A still is a nicety: its trouble never fails the record."""
        for attempt in range(1, _THUMBNAIL_TRIES + 1):
            path = self.tmp_path(".img")
            try:
                await self.provider.download(job.id, variant, path)
                kept = read(await asyncio.to_thread(path.read_bytes))
                if kept is None:
                    self.log.info(f"record {record.id}: {variant} not kept (not the shape expected)")
                    return None
                await self.store.put_media(key, path, mime)
                return kept
            except (*_TRANSIENT, ContentIncomplete) as exc:
                if attempt == _THUMBNAIL_TRIES:
                    self.log.warning(f"record {record.id}: no {variant} after {attempt} tries ({exc})")
                    return None
                wait = getattr(exc, "retry_after", None) or float(2 ** (attempt - 1))
                self.log.info(f"record {record.id}: {variant} not fetched ({exc}); again in {min(wait, 30):.1f} s")
                await asyncio.sleep(min(wait, 30.0))
            except ProviderError as exc:
                self.log.warning(f"record {record.id}: no {variant} ({exc})")
                return None
            finally:
                path.unlink(missing_ok=True)
        return None

    # -- status changes --------------------------------------------------------------------------
    async def _apply_job(self, record: GenerationRecord, job: ProviderJob, *, expect: Status) -> GenerationRecord:
        metadata = {**record.metadata, "provider_status": job.status}
        metadata.pop("waiting_reason", None)
        changes = {"status": Status.PROCESSING, "openai_job_id": job.id, "progress": job.progress, "metadata": metadata}
        record.evolve(**changes)
        updated = await self.store.update(record.id, changes, expect_status=expect)
        self._emit("updated", updated)
        return updated

    async def _fail(
        self, record: GenerationRecord, message: str, expect: Status | None = None, *, job_id: str | None = None
    ) -> GenerationRecord:
        changes: dict[str, Any] = {"status": Status.FAILED, "error_message": message}
        if job_id is not None:  # the provider's job, kept even when soranb cannot follow it
            changes["openai_job_id"] = job_id
        updated = await self.store.update(
            record.id,
            changes,
            expect_status=expect or Status.PROCESSING,
        )
        self._create_failures.pop(record.id, None)
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

    # -- temp files ------------------------------------------------------------------------------
    def tmp_path(self, suffix: str) -> Path:
        """A fresh temp file beside the store's media (so moving it in is a rename), in this process's folder."""
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(suffix=suffix, dir=self.tmp_dir)
        os.close(handle)
        return Path(name)


def _short(record: GenerationRecord) -> str:
    return short_job_id(record.openai_job_id or "")


def _usable_job_id(job_id: str | None) -> bool:
    try:
        check_job_id(job_id)
    except ProviderAnswerInvalid:
        return False
    return True


async def _raise(error: BaseException) -> None:
    raise error
