"""VideoService: the one owner of provider and store I/O.

    generate(request)
      1. validate (and fit the starting image)       nothing is sent if this fails
      2. store the image, then the record as pending  nothing is sent before this
      3. create the job exactly once                  (JobRunner.submit)
      4. store the job id, status processing
    background poller (one per service, on the service's own thread)
      repeats JobRunner.step(): submit waiting records, refresh open jobs, store
      finished videos; sleeps as long as the poll schedule says.

Every public method is a plain synchronous call that runs on the service's
daemon-thread event loop, so the poller advances even while a notebook cell
blocks; `wait_all_async` lets a cell `await` instead. Views subscribe to events.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .background import LoopThread
from .batch import BatchLine, BatchPlan, check_lines, line_ids, plan_batch
from .budget import Budget, day_start, spent_on
from .catalog import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE
from .checks import CHECKS, CheckResult
from .config import Settings
from .debuglog import DebugLog
from .errors import (
    ProviderError,
    RateLimited,
    RecordConflict,
    RecordNotFound,
    RequestInvalid,
    SoranbError,
)
from .events import EventBus, ServiceEvent
from .images import FitMode, inspect_image
from .leases import new_owner_id, sweep_dead_tmp
from .records import GenerationRecord, Status, clean_note, clean_tags, make_lineage
from .request import GenerationRequest, ImageInput, SourceVideo
from .schedule import PollSchedule
from .store import build_store
from .store.base import RecordQuery, Store, media_key
from .store.logged import LoggedStore
from .variation import plan_variations

if TYPE_CHECKING:  # the provider and its runner load the SDK and the emulator: built on first use
    from .provider import Character, VideoProvider
    from .runner import JobRunner, PollReport

__all__ = ["VideoService"]

T = TypeVar("T")
WATCH_INTERVAL_S = 5.0  # how often the store is read for changes made by other processes
WATCH_WINDOW = 100  # how many of the newest records the watch compares
WAIT_RECHECK_S = 30.0  # a waiter reads the store again after this long without news
PROGRESS_TICK_S = 1.0  # how often running cards' progress moves between polls


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
        self.owner_id = new_owner_id()
        self._events = EventBus()
        self._thread = LoopThread()
        self._poll_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._running: dict[str, GenerationRecord] = {}  # processing records as last told to the views
        self._ticked: dict[str, tuple[int, int]] = {}  # record id -> (progress, seconds left) last estimated
        self.last_poll_delay_s: float | None = None  # how long the background poller last chose to sleep
        self._wake: asyncio.Event | None = None
        self._seen: dict[str, datetime | None] = {}  # record id -> updated_at this service last told its views
        self._snapshot: dict[str, GenerationRecord] | None = None  # the newest records at the last watch
        self._closed = False
        self.schedule = PollSchedule(max_interval_s=self.settings.poll_interval_max_s)  # learns the pace itself
        self._provider = provider
        self._runner: JobRunner | None = None
        self._build_lock = threading.Lock()
        self._spend_lock = asyncio.Lock()  # the budget check and the insert of one request, together
        self._session_spent = Decimal(0)  # list price of what this service stored (the session budget)
        try:
            if provider is None and self.settings.provider == "openai":
                self.settings.validate()  # a missing key is a settings error now, not when a job first needs it
            self.store: Store = LoggedStore(store or build_store(self.settings), self.log)
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
        self._wake = asyncio.Event()
        await self.store.open()
        swept = await asyncio.to_thread(sweep_dead_tmp, self.settings.data_dir / "tmp")
        if swept:
            self.log.info(f"removed {swept} temp folder(s) left by stopped soranb processes")
        self.log.info(f"service ready: store: {self.store.describe()}")

    @property
    def provider(self) -> VideoProvider:
        """The provider, built on first use: browsing, listing and deleting history never load the SDK."""
        with self._build_lock:
            if self._provider is None:
                from .provider import VideoProvider

                self._provider = VideoProvider.from_settings(self.settings, self.log)
                self.log.info(f"provider ready: {self._provider.label}")
            return self._provider

    @property
    def runner(self) -> JobRunner:
        """Submits, refreshes and stores jobs; built with the provider."""
        provider = self.provider
        with self._build_lock:
            if self._runner is None:
                from .runner import JobRunner

                self._runner = JobRunner(
                    provider=provider,
                    store=self.store,
                    log=self.log,
                    emit=self._emit,
                    schedule=self.schedule,
                    owner_id=self.owner_id,
                    tmp_dir=self.settings.data_dir / "tmp",
                    max_concurrent_jobs=self.settings.max_concurrent_jobs,
                    poll_interval_max_s=self.settings.poll_interval_max_s,
                )
            return self._runner

    def _emit(self, kind: Any, record: GenerationRecord | None = None, message: str = "") -> None:
        if record is not None:  # so the store watch does not announce this service's own changes again
            self._seen[record.id] = None if kind == "deleted" else record.updated_at
            if kind != "deleted" and record.status == Status.PROCESSING and record.openai_job_id:
                self._running[record.id] = record
            else:
                self._running.pop(record.id, None)
                self._ticked.pop(record.id, None)
        self._events.emit(ServiceEvent(kind, record, message))

    def subscribe(self, callback: Callable[[ServiceEvent], None]) -> Callable[[], None]:
        """Call `callback(event)` for every event, on the service thread; returns an unsubscribe function."""
        return self._events.subscribe(callback)

    def describe(self) -> str:
        why = self.settings.sources.get("SORANB_PROVIDER", "set by SORANB_PROVIDER")
        env = self.settings.describe_sources()  # which .env was read (or why not): planted files show
        text = f"provider: {self.provider.label} ({why}) · store: {self.store.describe()}"
        return f"{text} · {env}" if env else text

    @property
    def provider_is_paid(self) -> bool:
        """Whether a job may cost money; the settings answer until the provider is built (browsing never builds it)."""
        provider = self._provider
        return provider.is_paid if provider is not None else self.settings.is_paid_provider

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the background poller; calling it again does nothing."""
        self._run(self._start())

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = loop.create_task(self._poll_forever())
        if self._watch_task is None or self._watch_task.done():
            self._watch_task = loop.create_task(self._watch_forever())
        if self._tick_task is None or self._tick_task.done():
            self._tick_task = loop.create_task(self._tick_forever())

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
        for task in (self._poll_task, self._watch_task, self._tick_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._provider is not None:
            await self._provider.aclose()
        await self.store.close()

    def __enter__(self) -> VideoService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- generating ----------------------------------------------------------------------
    def generate(self, request: GenerationRequest) -> GenerationRecord:
        """Store the request as a record and create its job; returns without waiting for the video."""
        return self._run(self._spend(request))

    def remix(self, record_id: str, prompt: str) -> GenerationRecord:
        """A new video from a completed one with a changed prompt."""
        return self._run(self._remix(record_id, prompt))

    async def _spend(
        self,
        request: GenerationRequest,
        *,
        remix_of: GenerationRecord | None = None,
        record_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        lineage: str | None = None,
    ) -> GenerationRecord:
        """Every path that spends (generate, remix, extend, edit, a batch, a grid, diagnostics) comes here.

        The budget check and the insert happen together, so two requests never both fit the last
        dollar. `record_id` gives the record a fixed id (a batch line's identity): when a record with
        that id is already stored, it is returned and nothing is sent again. A request the store's
        fields cannot rebuild (see `_new_record`) is sent at once and never waits in the queue.
        """
        prepared = await asyncio.to_thread(request.prepared)  # validates; fits the image
        record = self._new_record(request, prepared, remix_of, record_id, metadata, lineage)
        runner = self.runner
        with runner.reserved(record.id):  # this call sends it: a poll step must not take it meanwhile
            async with self._spend_lock:
                if record_id is not None and (existing := await self._existing(record_id)) is not None:
                    return existing
                (await self._budget()).check(record.cost)  # before anything is stored or sent
                if prepared.image is not None:
                    record = await self._store_image(record, prepared.image)
                try:
                    record = await self.store.insert(record)
                except RecordConflict:
                    if record_id is None or (existing := await self._existing(record_id)) is None:
                        raise
                    return existing  # another process stored this batch line first
                self._session_spent += record.cost
            self.log.info(f"record {record.id} stored as pending ({record.model} {record.size} {record.seconds}s)")
            self._emit("created", record)
            processing = await self.store.count(RecordQuery(statuses=frozenset({Status.PROCESSING})))
            if record.metadata.get("submit_once") or processing < self.settings.max_concurrent_jobs:
                record = await runner.submit(record, prepared, remix_of=remix_of, raise_errors=True)
            else:
                self.log.info(f"record {record.id} waits for a free slot ({processing} jobs running)")
        self._poke()
        return record

    @staticmethod
    def _new_record(
        request: GenerationRequest,
        prepared: GenerationRequest,
        remix_of: GenerationRecord | None,
        record_id: str | None,
        metadata: dict[str, Any] | None,
        lineage: str | None,
    ) -> GenerationRecord:
        """The pending record of a request, not stored yet.

        The poller re-sends a pending record from its prompt, model, size and seconds alone, which
        would make a plain video of an extension, an edit or a request with characters or a
        reference object: those are marked `submit_once` (the runner sends them once or ends them).
        """
        metadata = dict(metadata or {})
        if request.image is not None and request.fit and inspect_image(request.image.data).size != request.size:
            metadata["fit"] = request.fit  # shown on the card and in reports beside the starting image
        if prepared.sent_as_json:
            metadata["submit_once"] = True
            if prepared.characters:
                metadata["characters"] = list(prepared.characters)
        record = GenerationRecord(
            prompt=prepared.prompt,
            model=prepared.model,
            size=prepared.size,
            seconds=prepared.seconds,
            lineage=lineage,
            remixed_from=remix_of.id if remix_of is not None else None,
            metadata=metadata,
        )
        return replace(record, id=record_id) if record_id is not None else record

    async def _remix(self, record_id: str, prompt: str) -> GenerationRecord:
        source = await self.store.get(record_id)
        if source.status != Status.COMPLETED or not source.openai_job_id:
            raise RequestInvalid("remix", "only a completed video can be remixed; pick one whose status is completed")
        request = GenerationRequest(prompt=prompt, model=source.model, size=source.size, seconds=source.seconds)
        return await self._spend(request, remix_of=source)

    # -- extend, edit, characters ------------------------------------------------------------
    def extend(self, record_id: str, prompt: str, seconds: int) -> GenerationRecord:
        """A new video: the completed one followed by `seconds` more, as `prompt` says."""
        return self._run(self._derive("extend", record_id, prompt, seconds))

    def edit(self, record_id: str, prompt: str) -> GenerationRecord:
        """A new video: the completed one re-rendered with the change `prompt` describes."""
        return self._run(self._derive("edit", record_id, prompt, 0))

    def create_character(self, name: str, video: Path) -> Character:
        """A character made from a video file; use its id in `GenerationRequest(characters=...)`."""
        if not name.strip():
            raise RequestInvalid("name", "the character's name is empty; give it a name")
        if not Path(video).is_file():
            raise RequestInvalid("video", f"{video} is not a file; give the path of a video")
        return self._run(self.provider.create_character(name.strip(), Path(video)))

    def get_character(self, character_id: str) -> Character:
        return self._run(self.provider.get_character(character_id))

    async def _derive(self, kind: str, record_id: str, prompt: str, added: int) -> GenerationRecord:
        verb = "extended" if kind == "extend" else "edited"
        source = await self.store.get(record_id)
        if source.status != Status.COMPLETED or not source.openai_job_id:
            raise RequestInvalid(kind, f"only a completed video can be {verb}; pick one whose status is completed")
        seconds = source.seconds + added if kind == "extend" else source.seconds
        video = SourceVideo("extend" if kind == "extend" else "edit", source.openai_job_id, added)
        request = GenerationRequest(prompt, source.model, source.size, seconds, source=video)
        return await self._spend(request, lineage=make_lineage(kind, source.id))

    async def _store_image(self, record: GenerationRecord, image: ImageInput) -> GenerationRecord:
        info = inspect_image(image.data)
        key = media_key("images", record.id, info.extension)
        tmp = self.runner.tmp_path(info.extension)
        await asyncio.to_thread(tmp.write_bytes, image.data)
        await self.store.put_media(key, tmp, info.mime)
        return replace(record, image_key=key, image_filename=image.filename)

    # -- polling ---------------------------------------------------------------------------
    def poll_once(self) -> PollReport:
        """One poll step now: submit waiting records, refresh open jobs, store finished videos."""
        return self._run(self.runner.step())

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _poll_forever(self) -> None:
        """Repeat `runner.step()`; a wake-up (a new record) never cuts short a Retry-After."""
        assert self._wake is not None
        while True:
            retry_after = None
            started = time.monotonic()
            try:
                if self._runner is None and not await self.store.count(RecordQuery.open_jobs()):
                    delay = self.settings.poll_interval_max_s  # nothing to poll: the provider is not built yet
                else:
                    report = await self.runner.step(only_when_due=True)
                    delay, retry_after = report.next_delay_s, report.retry_after_s
            except RateLimited as exc:
                retry_after = exc.retry_after
                delay = self.schedule.after_failure(retry_after)
                self.log.warning(f"poller: rate limited; next try in {delay:.1f} s")
            except SoranbError as exc:
                delay = self.schedule.after_failure()
                self.log.warning(f"poller: {exc}; next try in {delay:.1f} s")
            except Exception as exc:  # never let the poller die silently
                delay = self.schedule.after_failure()
                self.log.error(f"poller: unexpected {type(exc).__name__}: {exc}; next try in {delay:.1f} s")
            self.last_poll_delay_s = delay
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            if retry_after:  # woken early: still wait as long as the provider asked
                await asyncio.sleep(max(0.0, min(delay, retry_after) - (time.monotonic() - started)))

    # -- progress between polls ------------------------------------------------------------------
    async def _tick_forever(self) -> None:
        while True:
            try:
                self.tick_progress()
            except Exception as exc:  # a view's trouble never stops the ticks
                self.log.error(f"progress: unexpected {type(exc).__name__}: {exc}")
            await asyncio.sleep(PROGRESS_TICK_S)

    def tick_progress(self) -> None:
        """Move running records' progress bars from the poll schedule's estimate, without asking the provider.

        Emits `progress` events whose record carries the estimated progress (never below what the
        provider said) and `metadata["eta_s"]`; the store keeps only what the provider said.
        Runs on the service's loop (the schedule has no lock).
        """
        for record in list(self._running.values()):
            progress, left = self.schedule.estimate(
                record.openai_job_id or "", model=record.model, size=record.size, seconds=record.seconds
            )
            if left is None:
                continue
            shown = (max(progress, record.progress), round(left))
            if self._ticked.get(record.id) == shown:
                continue
            self._ticked[record.id] = shown
            estimated = replace(record, progress=shown[0], metadata={**record.metadata, "eta_s": left})
            self._events.emit(ServiceEvent("progress", estimated))

    # -- changes made elsewhere --------------------------------------------------------------------
    async def _watch_forever(self) -> None:
        while True:
            try:
                await self.watch_once()
            except SoranbError as exc:
                self.log.debug(f"watch: {exc}")
            except Exception as exc:  # never let the watch die silently
                self.log.error(f"watch: unexpected {type(exc).__name__}: {exc}")
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def watch_once(self) -> None:
        """Tell the views about records another kernel or the CLI created, changed or deleted.

        One read of the newest records, compared with the last one; this service's own changes
        are not announced twice. The first call only takes the snapshot.
        """
        newest = await self.store.query(RecordQuery(limit=WATCH_WINDOW))
        now = {r.id: r for r in newest}
        before, self._snapshot = self._snapshot, now
        if before is None:
            return
        for record_id, record in now.items():
            if record_id in self._seen and self._seen[record_id] == record.updated_at:
                continue
            old = before.get(record_id)
            if old is None:
                self._emit("created", record)
            elif old.updated_at != record.updated_at:
                self._emit("updated", record)
        oldest = min((r.created_at for r in newest), default=None)
        window_full = len(newest) >= WATCH_WINDOW
        for record_id, record in before.items():
            # missing from a full window may only mean newer records pushed it out
            pushed_out = window_full and oldest is not None and record.created_at < oldest
            if record_id in now or pushed_out:
                continue
            if not (record_id in self._seen and self._seen[record_id] is None):
                self._emit("deleted", record)

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
        ids = [r.id for r in await self.store.query(RecordQuery.open_jobs())]
        return await self._wait_for(ids, timeout)

    async def _wait_for(self, ids: Iterable[str], timeout: float | None) -> list[GenerationRecord]:
        """Wake on the service's own events (and the store watch); read the store only as a safety net."""
        await self._start()
        ids = list(ids)
        deadline = None if timeout is None else time.monotonic() + timeout
        latest: dict[str, GenerationRecord] = {}
        changed = asyncio.Event()

        def on_event(event: ServiceEvent) -> None:
            if event.record is None or event.record.id not in ids:
                return
            if event.kind == "deleted":
                latest.pop(event.record.id, None)
            else:
                latest[event.record.id] = event.record
            changed.set()

        unsubscribe = self.subscribe(on_event)
        try:
            while True:
                for record_id in ids:  # what no event has said yet (at first, and after a quiet spell)
                    if record_id not in latest or latest[record_id].is_open:
                        try:
                            latest[record_id] = await self.store.get(record_id)
                        except RecordNotFound:
                            latest.pop(record_id, None)
                while True:
                    records = [latest[i] for i in ids if i in latest]
                    if not any(r.is_open for r in records):
                        return records
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        self.log.warning(f"wait: {sum(r.is_open for r in records)} jobs still open after {timeout} s")
                        return records
                    changed.clear()
                    try:
                        await asyncio.wait_for(changed.wait(), min(WAIT_RECHECK_S, remaining or WAIT_RECHECK_S))
                    except TimeoutError:
                        break
        finally:
            unsubscribe()

    # -- reading and deleting ---------------------------------------------------------------------
    def list_records(self, query: RecordQuery | None = None) -> list[GenerationRecord]:
        return self._run(self.store.query(query or RecordQuery()))

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
        """The local file of a media key when the store keeps files on this machine (else None)."""
        return self.store.local_path(key)

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

    def generate_diagnostic(self, request: GenerationRequest, timeout: float) -> GenerationRecord:
        """Make `request` as a diagnostic record (the history hides it) and wait for it to finish.

        The diagnostics' generation check uses this: it spends through the same guarded path as
        `generate`, and the person's history does not gain its test video.
        """
        record = self._run(self._spend(request, metadata={"diagnostic": True}))
        (finished,) = self.wait([record.id], timeout)
        return finished

    # -- the budget guard (soranb.budget) -------------------------------------------------------
    def budget(self) -> Budget:
        """Spent today and this session, the limits (SORANB_BUDGET_USD, SORANB_SESSION_BUDGET_USD), what is left."""
        return self._run(self._budget(count_always=True))

    async def _budget(self, *, count_always: bool = False) -> Budget:
        limit, session_limit = self.settings.budget_usd, self.settings.session_budget_usd
        spent = Decimal(0)
        if limit is not None or count_always:  # without a daily limit nothing needs reading
            since, page, offset = day_start(), 1000, 0
            while True:
                records = await self.store.query(RecordQuery(since=since, limit=page, offset=offset))
                spent += spent_on(records)
                if len(records) < page:
                    break
                offset += page
        return Budget(spent=spent, limit=limit, session_spent=self._session_spent, session_limit=session_limit)

    async def _existing(self, record_id: str) -> GenerationRecord | None:
        """The record with this id, if stored (a miss is expected here, so it is no warning in the log)."""
        found = await self.store.query(RecordQuery(ids=frozenset({record_id}), limit=1))
        return found[0] if found else None

    # -- batches (soranb.batch) ------------------------------------------------------------------
    def plan_batch(self, requests: Iterable[GenerationRequest | BatchLine], *, batch_key: str) -> BatchPlan:
        """What `generate_many` would do: every line checked, which are made already, what the rest cost."""
        return self._run(self._plan_batch(requests, batch_key))

    def generate_many(
        self, requests: Iterable[GenerationRequest | BatchLine], *, batch_key: str
    ) -> list[GenerationRecord]:
        """Make each request once per `batch_key`; returns their records in order.

        Every request is checked, and the whole batch's cost held against the budget, before anything
        is stored or sent. Running the same batch again (after an interruption, or twice) makes only
        the lines not stored yet: each line's identity is its record's id (see `soranb.batch`).
        """
        return self._run(self._generate_many(requests, batch_key))

    async def _plan_batch(self, requests: Iterable[GenerationRequest | BatchLine], key: str) -> BatchPlan:
        given = list(requests)
        lines = [r if isinstance(r, BatchLine) else BatchLine(n, r) for n, r in enumerate(given, start=1)]
        from_file = all(isinstance(r, BatchLine) for r in given)
        check_lines(lines, f"batch {key!r}", "line" if from_file else "request")
        if not key.strip():
            raise RequestInvalid("batch", "the batch key is empty; name the batch (e.g. the file it came from)")
        scope = str(getattr(self.store, "user_id", None) or "")
        ids = line_ids([line.request for line in lines], key, scope)
        existing: dict[str, GenerationRecord] = {}
        for start in range(0, len(ids), 100):
            chunk = frozenset(ids[start : start + 100])
            for record in await self.store.query(RecordQuery(ids=chunk, limit=len(chunk))):
                existing[record.id] = record
        return plan_batch(lines, key, existing, scope)

    async def _generate_many(
        self, requests: Iterable[GenerationRequest | BatchLine], key: str
    ) -> list[GenerationRecord]:
        plan = await self._plan_batch(requests, key)
        if plan.to_make:
            (await self._budget()).check(plan.cost, f"this batch of {len(plan.to_make)} video(s)")
        made: dict[str, GenerationRecord] = {i.record_id: i.existing for i in plan.done if i.existing is not None}
        for item in plan.to_make:
            metadata = {"batch_key": key, "batch_line": item.line.number}
            try:
                made[item.record_id] = await self._spend(item.line.request, record_id=item.record_id, metadata=metadata)
            except ProviderError as exc:  # that line is stored as failed (or pending, retried): go on
                self.log.warning(f"batch {key!r} line {item.line.number}: {exc}")
                made[item.record_id] = await self.store.get(item.record_id)
        return [made[i.record_id] for i in plan.items]

    # -- tags, favourites and notes ---------------------------------------------------------------
    def tag(self, record_id: str, *tags: str) -> GenerationRecord:
        """Add tags to a record (each kept once; see `records.clean_tags` for what a tag may be)."""
        return self._run(self._annotate(record_id, add=clean_tags(tags)))

    def untag(self, record_id: str, *tags: str) -> GenerationRecord:
        """Remove tags from a record; tags it does not carry are ignored."""
        return self._run(self._annotate(record_id, remove=clean_tags(tags)))

    def set_favourite(self, record_id: str, favourite: bool = True) -> GenerationRecord:
        return self._run(self._annotate(record_id, favourite=favourite))

    def set_note(self, record_id: str, note: str | None) -> GenerationRecord:
        """Replace the record's note (empty text removes it)."""
        return self._run(self._annotate(record_id, note=clean_note(note), change_note=True))

    async def _annotate(
        self,
        record_id: str,
        *,
        add: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
        favourite: bool | None = None,
        note: str | None = None,
        change_note: bool = False,
    ) -> GenerationRecord:
        record = await self.store.get(record_id)
        changes: dict[str, Any] = {}
        if add or remove:
            changes["tags"] = clean_tags([t for t in (*record.tags, *add) if t not in remove])
        if favourite is not None:
            changes["favourite"] = bool(favourite)
        if change_note:
            changes["note"] = note
        if not changes:
            return record
        record = await self.store.update(record_id, changes)
        self._emit("updated", record)
        return record

    # -- variation grids (soranb.variation) ----------------------------------------------------------
    def vary(
        self,
        prompts: Iterable[str] | str,
        *,
        models: Iterable[str] | str = (DEFAULT_MODEL,),
        sizes: Iterable[str] | str = (DEFAULT_SIZE,),
        seconds: Iterable[int] | int = (DEFAULT_SECONDS,),
        variants: Iterable[str] | str = ("",),
        image: ImageInput | None = None,
        fit: FitMode | None = None,
        key: str = "vary",
    ) -> list[GenerationRecord]:
        """Make every combination (see `soranb.variation`); returns the records in matrix order.

        The whole matrix is checked and its cost held against the budget before anything starts. The
        same grid under the same `key` returns the records it made before; another key makes new takes.
        """
        plan = plan_variations(
            prompts, models=models, sizes=sizes, seconds=seconds, variants=variants, image=image, fit=fit, key=key
        )
        return self.generate_many(plan.lines(), batch_key=f"vary:{plan.key}")

    # -- reports ---------------------------------------------------------------------------------------
    def fetch_media(self, key: str, dest: Path) -> Path:
        """Copy a stored media object to `dest` (streaming); `RecordNotFound` when it is gone."""
        return self._run(self.store.fetch_media(key, dest))
