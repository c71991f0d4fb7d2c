"""VideoService: the one owner of provider and store I/O.

    generate(request)
      1. validate (and fit the starting image)       nothing is sent if this fails
      2. store the image, then the record as pending  nothing is sent before this
      3. create the job exactly once                  (lost answer: find it, never re-POST blindly)
      4. store the job id, status processing
    background poller (one per service, on the service's own thread)
      submit pending records while slots are free, refresh every open job with as
      few requests as possible, stream finished videos into the store under a lease.

Every public method is a plain synchronous call that runs on the service's
daemon-thread event loop, so the poller advances even while a notebook cell
blocks; `wait_all_async` lets a cell `await` instead. Views subscribe to events.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from .checks import CHECKS, CheckResult
from .config import Settings
from .debuglog import DebugLog
from .errors import (
    AuthenticationFailed,
    ContentExpired,
    JobNotFound,
    ModelRetired,
    ProviderError,
    ProviderRejected,
    RateLimited,
    RecordConflict,
    RecordNotFound,
    RequestInvalid,
    SoranbError,
)
from .events import EventBus, ServiceEvent
from .images import inspect_image
from .provider import ProviderJob, VideoProvider
from .records import GenerationRecord, Status
from .request import GenerationRequest, ImageInput
from .schedule import PollSchedule
from .store import build_store
from .store.base import RecordQuery, Store, media_key

__all__ = ["PollReport", "VideoService"]

T = TypeVar("T")
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


class _LoopThread:
    """A daemon thread running the service's event loop (see API_NOTES: a kernel-loop task freezes)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="soranb-service", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a soranb service call was made from a service event callback; call it later")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)


class VideoService:
    """Launch, watch and keep generations; the only object that talks to the provider and the store."""

    CHECKS = CHECKS

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        provider: VideoProvider | None = None,
        store: Store | None = None,
        autostart: bool = True,
    ) -> None:
        self.settings = settings or Settings.from_env()
        self.log = provider.log if provider is not None else DebugLog(self.settings.secrets())
        self.owner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._events = EventBus()
        self._thread = _LoopThread()
        self._poll_task: asyncio.Task[None] | None = None
        self._poll_lock: asyncio.Lock | None = None
        self._wake: asyncio.Event | None = None
        self._closed = False
        self._create_failures: dict[str, int] = {}
        self._list_supported = True  # one list call refreshes many jobs; some gateways have no list
        speed = 1.0 if self.settings.provider != "emulator" else (self.settings.emulator_speed or 6.0)
        self.schedule = PollSchedule(max_interval_s=self.settings.poll_interval_max_s, speed=speed)
        try:
            self.provider = provider or VideoProvider.from_settings(self.settings, self.log)
            self.store = store or build_store(self.settings)
            self._run(self._open())
        except BaseException:
            self._thread.stop()
            raise
        atexit.register(self.close)
        if autostart:
            self.start()

    # -- plumbing ------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._closed:
            coro.close()
            raise SoranbError("this soranb service is closed; call soranb.session.get_service() for a new one")
        return self._thread.run(coro, timeout)

    async def _open(self) -> None:
        self._poll_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        await self.store.open()
        self.log.info(f"service ready: {self.describe()}")

    def _emit(self, kind: Any, record: GenerationRecord | None = None, message: str = "") -> None:
        self._events.emit(ServiceEvent(kind, record, message))

    def subscribe(self, callback: Callable[[ServiceEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every event, on the service thread; returns an unsubscribe function."""
        return self._events.subscribe(callback)

    def describe(self) -> str:
        why = self.settings.sources.get("SORANB_PROVIDER", "set by SORANB_PROVIDER")
        return f"provider: {self.provider.label} ({why}) · store: {self.store.describe()}"

    @property
    def provider_is_paid(self) -> bool:
        return self.provider.is_paid

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the background poller; calling it again does nothing."""
        self._run(self._start())

    async def _start(self) -> None:
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = asyncio.get_running_loop().create_task(self._poll_forever())

    @property
    def poller_running(self) -> bool:
        return self._poll_task is not None and not self._poll_task.done()

    def close(self) -> None:
        """Stop polling and release the provider and the store (open jobs resume next time)."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            self._thread.run(self._aclose(), timeout=15)
        self._closed = True
        self._thread.stop()
        atexit.unregister(self.close)

    async def _aclose(self) -> None:
        if self._poll_task is not None:
            self._poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll_task
        await self.provider.aclose()
        await self.store.close()

    def __enter__(self) -> VideoService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generating ----------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GenerationRecord:
        """Store the request as a record and create its job; returns without waiting for the video."""
        return self._run(self._generate(request))

    def remix(self, record_id: str, prompt: str) -> GenerationRecord:
        """A new video from a completed one with a changed prompt."""
        return self._run(self._remix(record_id, prompt))

    async def _generate(
        self, request: GenerationRequest, *, remix_of: GenerationRecord | None = None
    ) -> GenerationRecord:
        prepared = await asyncio.to_thread(request.prepared)  # validates; fits the image
        record = GenerationRecord(
            prompt=prepared.prompt, model=prepared.model, size=prepared.size, seconds=prepared.seconds
        )
        if remix_of is not None:
            record = replace(record, remixed_from=remix_of.id)
        if prepared.image is not None:
            record = await self._store_image(record, prepared.image)
        record = await self.store.insert(record)
        self.log.info(f"record {record.id} stored as pending ({record.model} {record.size} {record.seconds}s)")
        self._emit("created", record)
        processing = await self.store.count(RecordQuery(statuses=frozenset({Status.PROCESSING})))
        if processing < self.settings.max_concurrent_jobs:
            record = await self._submit(record, prepared, remix_of=remix_of, raise_errors=True)
        else:
            self.log.info(f"record {record.id} waits for a free slot ({processing} jobs running)")
        self._poke()
        return record

    async def _remix(self, record_id: str, prompt: str) -> GenerationRecord:
        source = await self.store.get(record_id)
        if source.status != Status.COMPLETED or not source.openai_job_id:
            raise RequestInvalid("remix", "only a completed video can be remixed; pick one whose status is completed")
        request = GenerationRequest(prompt=prompt, model=source.model, size=source.size, seconds=source.seconds)
        return await self._generate(request, remix_of=source)

    async def _store_image(self, record: GenerationRecord, image: ImageInput) -> GenerationRecord:
        info = inspect_image(image.data)
        key = media_key("images", record.id, info.extension)
        tmp = self._tmp_path(info.extension)
        await asyncio.to_thread(tmp.write_bytes, image.data)
        await self.store.put_media(key, tmp, info.mime)
        return replace(record, image_key=key, image_filename=image.filename)

    async def _submit(
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
            record = await self._apply_job(record, job, expect=Status.PENDING)
            self.schedule.observe(job.id, job.progress)
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

    # -- polling ---------------------------------------------------------------------------
    def poll_once(self) -> PollReport:
        """One poll step now: submit waiting records, refresh open jobs, store finished videos."""
        return self._run(self._poll_step())

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _poll_forever(self) -> None:
        assert self._wake is not None
        while True:
            try:
                report = await self._poll_step()
                delay = report.next_delay_s
            except RateLimited as exc:
                delay = self.schedule.after_failure(exc.retry_after)
                self.log.warning(f"poller: rate limited; next try in {delay:.1f} s")
            except SoranbError as exc:
                delay = self.schedule.after_failure()
                self.log.warning(f"poller: {exc}; next try in {delay:.1f} s")
            except Exception as exc:  # never let the poller die silently
                delay = self.schedule.after_failure()
                self.log.error(f"poller: unexpected {type(exc).__name__}: {exc}; next try in {delay:.1f} s")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _poll_step(self) -> PollReport:
        assert self._poll_lock is not None
        async with self._poll_lock:
            report = PollReport()
            open_records = await self.store.list(RecordQuery.open_jobs())
            report.open_jobs = len(open_records)
            pending = [r for r in open_records if r.status == Status.PENDING]
            running = [r for r in open_records if r.status == Status.PROCESSING and r.openai_job_id]
            stuck = 0
            for record in pending[: max(0, self.settings.max_concurrent_jobs - len(running))]:
                updated = await self._submit_pending(record)
                if updated.status == Status.PROCESSING:
                    report.submitted.append(updated.id)
                    running.append(updated)
                elif updated.status == Status.PENDING:
                    stuck += 1
            if running:
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
                etas = [
                    self.schedule.eta_s(r.openai_job_id or "", model=r.model, size=r.size, seconds=r.seconds)
                    for r in still_open
                ]
                report.next_delay_s = (
                    self.schedule.next_delay(etas, hint_ms=hint) if still_open else self.schedule.min_interval_s
                )
            else:
                report.next_delay_s = self.settings.poll_interval_max_s if not pending else 1.0
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
            tmp = await self.store.fetch_media(record.image_key, self._tmp_path(".img"))
            data = await asyncio.to_thread(tmp.read_bytes)
            tmp.unlink(missing_ok=True)
            request = replace(request, image=ImageInput(record.image_filename or "image", data))
        try:
            return await self._submit(record, request, remix_of=remix_of)
        except RecordConflict:
            return await self.store.get(record.id)

    async def _refresh(self, running: list[GenerationRecord]) -> tuple[dict[str, ProviderJob], int, int | None]:
        """The provider's view of every running job: one list call covers many; retrieve the rest."""
        wanted = {r.openai_job_id for r in running if r.openai_job_id}
        oldest = min(r.created_at for r in running).timestamp() - 60
        found: dict[str, ProviderJob] = {}
        requests, hint, after = 0, None, None
        for _ in range(5 if self._list_supported else 0):  # the 500 newest; older ones one by one
            try:
                page = await self.provider.list_page(after=after, limit=100, order="desc")
            except (JobNotFound, ModelRetired, ProviderRejected) as exc:
                self._list_supported = False
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
            if job.status in ("queued", "in_progress"):
                self.schedule.observe(job.id, job.progress)
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
                path = await self.provider.download(job.id, "video", self._tmp_path(".mp4"))
            except ContentExpired as exc:
                return await self._close(record, Status.EXPIRED, str(exc))
            await self.store.put_media(video_key, path, "video/mp4")
            thumbnail_key: str | None = media_key("thumbnails", record.id)
            try:
                thumb = await self.provider.download(job.id, "thumbnail", self._tmp_path(".webp"))
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

    def _tmp_path(self, suffix: str) -> Path:
        folder = self.settings.data_dir / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(suffix=suffix, dir=folder)
        os.close(handle)
        return Path(name)

    # -- waiting -------------------------------------------------------------------------------
    def wait_all(self, timeout: float | None = None) -> list[GenerationRecord]:
        """Block until every open job is finished; returns those records (open ones if time ran out)."""
        return self._run(self._wait_all(timeout))

    def wait(self, record_ids: Iterable[str], timeout: float | None = None) -> list[GenerationRecord]:
        """Block until these records are finished (or time runs out); returns them as they are then."""
        return self._run(self._wait_for(list(record_ids), timeout))

    async def wait_all_async(self, timeout: float | None = None) -> list[GenerationRecord]:
        """`await` version of `wait_all` for a notebook cell (the kernel loop stays free)."""
        future = asyncio.run_coroutine_threadsafe(self._wait_all(timeout), self._thread.loop)
        return await asyncio.wrap_future(future)

    async def _wait_all(self, timeout: float | None) -> list[GenerationRecord]:
        ids = [r.id for r in await self.store.list(RecordQuery.open_jobs())]
        return await self._wait_for(ids, timeout)

    async def _wait_for(self, ids: Iterable[str], timeout: float | None) -> list[GenerationRecord]:
        await self._start()
        ids = list(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            records = []
            for record_id in ids:
                with contextlib.suppress(RecordNotFound):
                    records.append(await self.store.get(record_id))
            if not any(r.is_open for r in records):
                return records
            if deadline is not None and time.monotonic() >= deadline:
                self.log.warning(f"wait: {sum(r.is_open for r in records)} jobs still open after {timeout} s")
                return records
            await asyncio.sleep(0.1)

    # -- reading and deleting ---------------------------------------------------------------------
    def list_records(self, query: RecordQuery | None = None) -> list[GenerationRecord]:
        return self._run(self.store.list(query or RecordQuery()))

    def count_records(self, query: RecordQuery | None = None) -> int:
        return self._run(self.store.count(query or RecordQuery()))

    def get(self, record_id: str) -> GenerationRecord:
        return self._run(self.store.get(record_id))

    def delete(self, record_id: str) -> None:
        """Remove the record and its files here, and the job at the provider when it still exists."""
        self._run(self._delete(record_id))

    async def _delete(self, record_id: str) -> None:
        record = await self.store.get(record_id)
        if record.openai_job_id:
            try:
                await self.provider.delete(record.openai_job_id)
            except ProviderError as exc:  # gone already, or still running there: ours goes anyway
                self.log.info(f"record {record_id}: provider kept job {record.openai_job_id} ({exc})")
        await self.store.delete(record_id)
        self.log.info(f"record {record_id} deleted")
        self._emit("deleted", record)

    def media_url(self, key: str) -> str:
        return self._run(self.store.media_url(key))

    def media_path(self, key: str) -> Path | None:
        """The local file of a media key when the store keeps files on this machine."""
        resolver = getattr(self.store, "media_path", None)
        return resolver(key) if resolver else None

    def check_status(self, record_id: str) -> dict[str, Any]:
        """The provider's raw metadata for the record's job (for the diagnostics view)."""
        return self._run(self._check_status(record_id))

    async def _check_status(self, record_id: str) -> dict[str, Any]:
        record = await self.store.get(record_id)
        if not record.openai_job_id:
            return {"record": record.id, "status": record.status.value, "note": "no provider job yet"}
        job = await self.provider.retrieve(record.openai_job_id)
        return dict(job.raw)

    # -- diagnostics -------------------------------------------------------------------------------
    def run_check(self, name: str, *, allow_spend: bool = False) -> CheckResult:
        """Run one diagnostics check (see CHECKS); never raises for a failing check."""
        from .diagnostics import run_check

        return self._run(run_check(self, name, allow_spend=allow_spend))

    def run_checks(self, *, allow_spend: bool = False) -> list[CheckResult]:
        return [self.run_check(name, allow_spend=allow_spend) for name in self.CHECKS]

    async def _generate_and_wait(self, request: GenerationRequest, timeout: float) -> GenerationRecord:
        record = await self._generate(request)
        (finished,) = await self._wait_for([record.id], timeout)
        return finished
