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

The service is a thin facade: each concept lives in its own module behind it
(`spending` and `budget` for the one spending path, `batch` and `variation`,
`tagging`, `poller`, `progress`, `watch` and `waiting`, `runner` for the jobs).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .background import LoopThread
from .batch import BatchLine, BatchPlan, make_batch, plan_stored
from .budget import Budget, BudgetGuard
from .catalog import DEFAULT_MODEL, DEFAULT_SECONDS, DEFAULT_SIZE, add_models
from .checks import CHECKS, CheckResult
from .config import Settings, make_data_dir
from .debuglog import DebugLog
from .errors import (
    BudgetExceeded,
    ProviderError,
    RecordConflict,
    RequestInvalid,
    SoranbError,
    StoreUnavailable,
)
from .events import EventBus, ServiceEvent
from .images import FitMode
from .leases import new_owner_id, sweep_dead_tmp, tmp_folder_name
from .poller import BackgroundPoller
from .progress import ProgressTicker
from .records import GenerationRecord, Status, clean_note, clean_tags, make_lineage
from .request import GenerationRequest, ImageInput, short_job_id
from .schedule import PollSchedule
from .sends import SendLedger, Verdict
from .spending import derived_request, pending_record, store_image, stored_record
from .store import build_store
from .store.base import RecordQuery, Store
from .store.logged import LoggedStore
from .tagging import mark
from .variation import plan_variations
from .waiting import wait_for
from .watch import StoreWatch

if TYPE_CHECKING:  # the provider and its runner load the SDK and the emulator: built on first use
    from .provider import Character, VideoProvider
    from .runner import JobRunner, PollReport
    from .webhooks import VideoEvent, WebhookReceiver

__all__ = ["VideoService"]

T = TypeVar("T")


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
        add_models(self.settings.models)  # a user's own models join the one catalog every view and check reads
        self.log = provider.log if provider is not None else DebugLog(self.settings.secrets())
        self.owner_id = new_owner_id()
        self._events = EventBus()
        self._thread = LoopThread()
        self._poll_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._closed = False
        self.schedule = PollSchedule(max_interval_s=self.settings.poll_interval_max_s)  # learns the pace itself
        self._webhooks: WebhookReceiver | None = None
        self._webhook_lock = threading.Lock()
        if self.settings.webhook_secret:  # signed events finish jobs; polling is a safety net (soranb.webhooks)
            from .webhooks import EventSchedule

            self.schedule = EventSchedule(max_interval_s=self.settings.poll_interval_max_s)
        self._progress = ProgressTicker(self.schedule, self._events.emit, self.log)
        self._poller = BackgroundPoller(self._poll_step, self.schedule, self.log, self.settings.poll_interval_max_s)
        self._provider = provider
        self._runner: JobRunner | None = None
        self._build_lock = threading.Lock()
        try:
            if provider is None and self.settings.provider in ("openai", "azure"):
                self.settings.validate()  # a missing key is a settings error now, not when a job first needs it
            self.store: Store = LoggedStore(store or build_store(self.settings), self.log)
            with contextlib.suppress(OSError):  # one that cannot be made: the store and the ledger say so, clearly
                make_data_dir(self.settings.data_dir)  # trusted like a .env, whichever store was given
            self._sends = SendLedger(self.settings.data_dir)
            limits = (self.settings.budget_usd, self.settings.session_budget_usd)
            self._guard = BudgetGuard(self.store, *limits, ledger=self._sends)
            self._watch = StoreWatch(self.store, self._emit, self.log)
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
        await self.store.open()
        if not self.store.vouches_for_rows:  # a shared project: the ledger decides what is sent (soranb.sends)
            open_jobs = await self.store.query(RecordQuery.open_jobs())
            try:
                await self._sends.adopt(self.store.describe(), [r for r in open_jobs if r.status == Status.PENDING])
            except StoreUnavailable as exc:  # the history can still be read; nothing is sent until it is fixed
                self.log.warning(str(exc))
        swept = await asyncio.to_thread(sweep_dead_tmp, self.settings.data_dir / "tmp")
        if swept:
            self.log.info(f"removed {swept} temp folder(s) left by stopped soranb processes")
        self.log.info(f"service ready: store: {self.store.describe()}")

    @property
    def provider(self) -> VideoProvider:
        """The provider, built on first use: browsing, listing and deleting history never load the SDK."""
        webhook_url = self._start_webhooks()
        with self._build_lock:
            if self._provider is None:
                from .provider import VideoProvider

                self._provider = VideoProvider.from_settings(self.settings, self.log, webhook_url=webhook_url)
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
                    sends=self._sends,
                    tmp_dir=self.settings.data_dir / "tmp",
                    max_concurrent_jobs=self.settings.max_concurrent_jobs,
                    poll_interval_max_s=self.settings.poll_interval_max_s,
                )
            return self._runner

    def _emit(self, kind: Any, record: GenerationRecord | None = None, message: str = "") -> None:
        if record is not None:  # so the store watch does not announce this service's own changes again
            self._watch.note(kind, record)
            self._progress.track(kind, record)
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
            self._poll_task = loop.create_task(self._poller.forever())
        if self._watch_task is None or self._watch_task.done():
            self._watch_task = loop.create_task(self._watch.forever())
        if self._tick_task is None or self._tick_task.done():
            self._tick_task = loop.create_task(self._progress.forever())

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
            while task is not None and not task.done():  # Python 3.11's wait_for can swallow a cancel that
                task.cancel()  # arrives as its event is set (a webhook's poke): cancel until it ends
                await asyncio.wait({task}, timeout=1)
        if self._webhooks is not None:
            await self._webhooks.stop()
        if self._provider is not None:
            await self._provider.aclose()
        await self.store.close()
        await self._sends.close()

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
        return self._run(self._derive("remix", record_id, prompt))

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
        fields cannot rebuild (see `spending.pending_record`) is sent at once and never waits in the queue.
        """
        prepared = await asyncio.to_thread(request.prepared)  # validates; fits the image
        record = pending_record(request, prepared, remix_of, record_id, metadata, lineage)
        runner = self.runner
        with runner.reserved(record.id):  # this call sends it: a poll step must not take it meanwhile
            async with self._guard.lock:
                if record_id is not None and (existing := await stored_record(self.store, record_id)) is not None:
                    return existing
                (await self._guard.read()).check(record.cost)  # before anything is stored or sent
                if prepared.image is not None:
                    record = await store_image(self.store, runner.tmp_path, record, prepared.image)
                try:
                    record = await self._guard.insert(record, owner=runner.owner_id, ttl=runner.lease_ttl)
                except RecordConflict:
                    if record_id is None or (existing := await stored_record(self.store, record_id)) is None:
                        raise
                    return existing  # another process stored this batch line first
                except BudgetExceeded:  # another process spent the rest meanwhile: nothing of this one is kept
                    if record.image_key is not None:
                        await self.store.delete_media(record.image_key)
                    raise
                await self._sends.stored(record, self._guard.scope)  # only what is in the ledger is ever sent
            self.log.info(f"record {record.id} stored as pending ({record.model} {record.size} {record.seconds}s)")
            self._emit("created", record)
            try:
                processing = await self.store.count(RecordQuery(statuses=frozenset({Status.PROCESSING})))
                if record.metadata.get("submit_once") or processing < self.settings.max_concurrent_jobs:
                    record = await runner.submit(record, prepared, remix_of=remix_of, raise_errors=True)
                else:
                    self.log.info(f"record {record.id} waits for a free slot ({processing} jobs running)")
                    await self.store.release(record.id, runner.owner_id)  # any poller may send it when a slot frees
            except SoranbError as exc:
                await self._withdraw_unsent(record, exc)
                raise
        self._poke()
        return record

    async def _withdraw_unsent(self, record: GenerationRecord, exc: SoranbError) -> None:
        """A call that reports failure must not leave behind a record a poller would send later: one
        never sent is ended here. One whose create went out stays with the poller, which looks its job
        up (or follows the job it got) and never sends it twice."""
        if (await self._sends.judge(record, vouched=True)).verdict != Verdict.FIRST:
            return
        await self._sends.ended(record.id)
        with contextlib.suppress(SoranbError):
            changes = {"status": Status.FAILED, "error_message": f"not sent: {exc}"}
            self._emit("updated", await self.store.update(record.id, changes, expect_status=Status.PENDING))

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

    async def _derive(
        self, kind: Literal["remix", "extend", "edit"], record_id: str, prompt: str, added: int = 0
    ) -> GenerationRecord:
        source = await self.store.get(record_id)
        request = derived_request(source, kind, prompt, added)
        if kind == "remix":
            return await self._spend(request, remix_of=source)
        return await self._spend(request, lineage=make_lineage(kind, source.id))

    # -- polling ---------------------------------------------------------------------------
    def poll_once(self) -> PollReport:
        """One poll step now: submit waiting records, refresh open jobs, store finished videos."""
        return self._run(self.runner.step())

    def _poke(self) -> None:
        self._poller.poke()

    @property
    def last_poll_delay_s(self) -> float | None:
        """How long the background poller last chose to sleep."""
        return self._poller.last_delay_s

    async def _poll_step(self) -> PollReport | None:
        if self._runner is None and not await self.store.count(RecordQuery.open_jobs()):
            return None  # nothing to poll: the provider is not built yet
        return await self.runner.step(only_when_due=True)

    # -- webhooks (soranb.webhooks) ----------------------------------------------------------------
    def _start_webhooks(self) -> str | None:
        """Listen for signed events once a job needs the provider (when a secret is set); the receiver's URL."""
        if not self.settings.webhook_secret:
            return None
        with self._webhook_lock:
            if self._webhooks is None:
                from .webhooks import EventSchedule, WebhookReceiver

                self._webhooks = WebhookReceiver.listen(self.settings, self.log, self._on_webhook)
                if self._webhooks is None:
                    return None
                schedule = self.schedule
                if isinstance(schedule, EventSchedule):
                    schedule.receiving = True

                    def stopped() -> None:
                        schedule.receiving = False
                        with contextlib.suppress(RuntimeError):  # the loop may be closing with the service
                            self._poke()

                    self._webhooks.start(self._thread.loop, stopped)
            return self._webhooks.url

    @property
    def webhook_url(self) -> str | None:
        """Where this service receives signed events (register it at the provider), or None."""
        return self._webhooks.url if self._webhooks is not None else None

    async def _on_webhook(self, event: VideoEvent) -> None:
        from .webhooks import EventSchedule, apply_event

        schedule = self.schedule
        assert isinstance(schedule, EventSchedule)
        try:
            await apply_event(event, store=self.store, runner=self.runner, schedule=schedule, log=self.log)
        except Exception as exc:  # the job is refreshed at once instead: a verified event says it ended
            schedule.refresh_soon(event.job_id)
            shown = short_job_id(event.job_id)
            self.log.warning(f"webhook: job {shown} not finished from its event ({exc}); refreshing it")
        self._poke()  # a slot may be free for a waiting record, or a refresh due

    # -- progress between polls (soranb.progress) ----------------------------------------------------
    def tick_progress(self) -> None:
        """Move running records' progress bars from the poll schedule's estimate, without asking the provider."""
        self._progress.tick()

    # -- changes made elsewhere --------------------------------------------------------------------
    async def watch_once(self) -> None:
        """Tell the views about records another kernel or the CLI created, changed or deleted (see `soranb.watch`)."""
        await self._watch.once()

    # -- waiting -------------------------------------------------------------------------------
    def wait_all(self, timeout: float | None = None) -> list[GenerationRecord]:
        """Block until every open job is finished; returns those records (open ones if time ran out)."""
        return self._run(self._wait_all(timeout))

    def wait(self, record_ids: Iterable[str], timeout: float | None = None) -> list[GenerationRecord]:
        """Block until these records are finished (or time runs out); returns them as they are then."""
        return self._run(self._wait_for(list(record_ids), timeout))

    async def wait_all_async(self, timeout: float | None = None) -> list[GenerationRecord]:
        """`await` version of `wait_all` for a notebook cell (the kernel loop stays free)."""
        return await self._on_own_loop(self._wait_all(timeout))

    async def wait_async(self, record_ids: Iterable[str], timeout: float | None = None) -> list[GenerationRecord]:
        """`await` version of `wait`: while a cell awaits it, the kernel's loop stays free, so the
        views' cards keep moving (a blocking `wait` holds that loop until the cell ends)."""
        return await self._on_own_loop(self._wait_for(list(record_ids), timeout))

    async def _on_own_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._thread.loop)
        return await asyncio.wrap_future(future)

    async def _wait_all(self, timeout: float | None) -> list[GenerationRecord]:
        ids = [r.id for r in await self.store.query(RecordQuery.open_jobs())]
        return await self._wait_for(ids, timeout)

    async def _wait_for(self, ids: Iterable[str], timeout: float | None) -> list[GenerationRecord]:
        await self._start()  # a waiter needs the poller
        return await wait_for(self.store, self.subscribe, ids, timeout, self.log)

    # -- reading and deleting ---------------------------------------------------------------------
    def list_records(self, query: RecordQuery | None = None) -> list[GenerationRecord]:
        return self._run(self.store.query(query or RecordQuery()))

    def count_records(self, query: RecordQuery | None = None) -> int:
        return self._run(self.store.count(query or RecordQuery()))

    def get(self, record_id: str) -> GenerationRecord:
        return self._run(self.store.get(record_id))

    def delete(self, record_id: str) -> str | None:
        """Remove the record and its files here, and the job at the provider when it still exists; says so
        when the provider cannot delete (a gateway) and keeps its copy until it expires."""
        return self._run(self._delete(record_id))

    async def _delete(self, record_id: str) -> str | None:
        record = await self.store.get(record_id)
        kept = None
        if record.openai_job_id:
            try:
                await self.provider.delete(record.openai_job_id)
            except ProviderError as exc:  # gone already, or still running there: ours goes anyway
                self.log.info(f"record {record_id}: provider kept job {short_job_id(record.openai_job_id)} ({exc})")
                if self.provider.capabilities.get("delete") is False:
                    kept = f"{self.provider.label} cannot delete jobs: it keeps its copy until it expires"
        await self.store.delete(record_id)
        self.log.info(f"record {record_id} deleted")
        self._emit("deleted", record)
        return kept

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
        return self._run(self._guard.read(count_always=True))

    # -- batches (soranb.batch) ------------------------------------------------------------------
    def plan_batch(self, requests: Iterable[GenerationRequest | BatchLine], *, batch_key: str) -> BatchPlan:
        """What `generate_many` would do: every line checked, which are made already, what the rest cost."""
        return self._run(plan_stored(self.store, requests, batch_key))

    def generate_many(
        self, requests: Iterable[GenerationRequest | BatchLine], *, batch_key: str
    ) -> list[GenerationRecord]:
        """Make each request once per `batch_key`; returns their records in order.

        Every request is checked, and the whole batch's cost held against the budget, before anything
        is stored or sent. Running the same batch again (after an interruption, or twice) makes only
        the lines not stored yet: each line's identity is its record's id (see `soranb.batch`).
        """
        return self._run(self._generate_many(requests, batch_key))

    async def _generate_many(
        self, requests: Iterable[GenerationRequest | BatchLine], key: str
    ) -> list[GenerationRecord]:
        plan = await plan_stored(self.store, requests, key)
        if plan.to_make:  # the whole batch is held against the budget before its first line
            (await self._guard.read()).check(plan.cost, f"this batch of {len(plan.to_make)} video(s)")
        return await make_batch(plan, self._spend, self.store, self.log)

    # -- tags, favourites and notes ---------------------------------------------------------------
    def tag(self, record_id: str, *tags: str) -> GenerationRecord:
        """Add tags to a record (each kept once; see `records.clean_tags` for what a tag may be)."""
        return self._run(self._marked(mark(self.store, record_id, add=clean_tags(tags))))

    def untag(self, record_id: str, *tags: str) -> GenerationRecord:
        """Remove tags from a record; tags it does not carry are ignored."""
        return self._run(self._marked(mark(self.store, record_id, remove=clean_tags(tags))))

    def set_favourite(self, record_id: str, favourite: bool = True) -> GenerationRecord:
        return self._run(self._marked(mark(self.store, record_id, favourite=favourite)))

    def set_note(self, record_id: str, note: str | None) -> GenerationRecord:
        """Replace the record's note (empty text removes it)."""
        return self._run(self._marked(mark(self.store, record_id, note=clean_note(note), change_note=True)))

    async def _marked(self, change: Awaitable[tuple[GenerationRecord, bool]]) -> GenerationRecord:
        record, changed = await change  # (see soranb.tagging)
        if changed:
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

    # -- re-use (the form's "Use these settings" and recent prompts) -------------------------------------
    def recent_prompts(self, limit: int = 10, *, scan: int = 200) -> list[str]:
        """The last `limit` distinct prompts, newest first, from the newest `scan` records of the store."""
        records = self.list_records(RecordQuery(limit=scan))
        prompts: list[str] = []
        for record in records:
            if record.is_unreadable or record.metadata.get("diagnostic") or record.prompt in prompts:
                continue
            prompts.append(record.prompt)
            if len(prompts) >= limit:
                break
        return prompts

    def starting_image(self, record_id: str) -> ImageInput | None:
        """The starting image a record was made from, read from the store (None when it had none).

        Only the record's own media key is read: nothing in its text becomes a path or a URL.
        """
        return self._run(self._starting_image(record_id))

    async def _starting_image(self, record_id: str) -> ImageInput | None:
        record = await self.store.get(record_id)
        if not record.image_key:
            return None
        tmp_dir = self.settings.data_dir / "tmp" / tmp_folder_name(self.owner_id)  # swept if this process dies
        await asyncio.to_thread(tmp_dir.mkdir, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="image-", dir=tmp_dir) as folder:
            path = await self.store.fetch_media(record.image_key, Path(folder) / "image")
            data = await asyncio.to_thread(path.read_bytes)
        return ImageInput(record.image_filename or "image", data)
