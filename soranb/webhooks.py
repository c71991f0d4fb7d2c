"""Webhooks in soranb: signed events finish jobs at once; polling stays only as a safety net.

    provider ──POST video.completed / video.failed──► WebhookReceiver (127.0.0.1, on the service's loop)
      1. a body over MAX_BODY_BYTES is refused (413) as it arrives
      2. the SDK's `webhooks.unwrap` checks the signature and that the timestamp is within 5 minutes
         (else 401; a malformed event 400): nothing unverified is ever acted on or remembered
      3. each `webhook-id` once (a provider repeats an event until it gets a 2xx), answered at once
      4. `apply_event`: the open record of that job (found in the store, whichever service created it)
         is finished: completed -> only the video download (a verified event is trusted for the
         status), failed -> one retrieve for the reason. An event for a job no open record follows
         is ignored, but the job is refreshed at once should a record take it up (a create in flight).
    EventSchedule: while the receiver listens, a running job is refreshed only when its event is
      overdue: its latest expected finish plus a grace. A receiver that cannot listen, or two jobs in a
      row that a refresh found finished without their event, bring back the normal pace.

The event carries only a job id: nothing in it becomes a path, a URL soranb fetches, or HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import math
import socket
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import ProviderAnswerInvalid
from .records import GenerationRecord, Status
from .request import short_job_id
from .schedule import PollSchedule
from .store.base import RecordQuery, Store

if TYPE_CHECKING:
    from .config import Secret, Settings
    from .debuglog import DebugLog
    from .provider import ProviderJob
    from .runner import JobRunner

__all__ = ["MAX_BODY_BYTES", "WEBHOOK_PATH", "EventSchedule", "VideoEvent", "WebhookReceiver", "apply_event"]

WEBHOOK_PATH = "/soranb/webhooks"
MAX_BODY_BYTES = 64 * 1024  # a video event is a few hundred bytes
EVENT_GRACE_S = 5.0  # how long past a job's latest expected finish its event may be late before a refresh
MISSED_LIMIT = 2  # jobs in a row found finished by a refresh, without their event, before polling is normal again
_REMEMBERED = 10_000  # webhook ids (and job ids told) kept to recognise repeats
_KINDS = {"video.completed": "completed", "video.failed": "failed"}


@dataclass(frozen=True)
class VideoEvent:
    """A verified `video.completed` or `video.failed` event, reduced to what soranb uses."""

    webhook_id: str
    kind: str  # "completed" or "failed"
    job_id: str
    created_at: int  # the provider's clock when the job ended


class WebhookRejected(Exception):
    """Why a delivery is refused, and the status that says so (the text never holds the body or secret)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- the safety-net schedule ------------------------------------------------------------------------
@dataclass
class EventSchedule(PollSchedule):
    """The poll schedule while signed events finish jobs: a job is refreshed only when its event is overdue.

    `receiving` says the receiver listens. Until a finished job has taught the pace, a job's event is
    overdue at twice its likeliest duration (plus the grace); once taught, at its latest finish. After
    that refresh a job still open is looked at as the normal schedule says (soon, then less often).
    """

    event_grace_s: float = EVENT_GRACE_S
    receiving: bool = False
    _missed: int = 0
    _told: OrderedDict[str, float] = field(default_factory=OrderedDict)  # job id -> when an event spoke of it
    _urgent: set[str] = field(default_factory=set)  # job ids to refresh at the next step

    @property
    def events_live(self) -> bool:
        """True while events are trusted to finish jobs (the receiver listens and events arrive)."""
        return self.receiving and self._missed < MISSED_LIMIT

    def event_arrived(self, job_id: str, status: str, at: int) -> None:
        """A verified event spoke of this job: events arrive, and a completion teaches the pace."""
        self._missed = 0
        self._told[job_id] = self.clock()
        while len(self._told) > _REMEMBERED:
            self._told.popitem(last=False)
        self.observe_event(job_id, status, at)

    def refresh_soon(self, job_id: str) -> None:
        """Refresh this job at the next step (its event could not be applied, or came before its record)."""
        if len(self._urgent) < _REMEMBERED:
            self._urgent.add(job_id)

    def observe(self, job: ProviderJob, *, just_created: bool = False) -> None:
        followed = self.finish_window(job.id) is not None
        super().observe(job, just_created=just_created)
        if job.is_finished:
            self._urgent.discard(job.id)
            if followed and not just_created and job.id not in self._told:
                self._missed += 1  # a refresh found it finished and no event ever said so

    def eta_s(self, job_id: str, *, model: str = "", size: str = "", seconds: int = 0) -> float | None:
        if job_id in self._urgent:
            return 0.0
        told = self._told.get(job_id)
        if told is not None:  # its event is being applied: look only if that has not ended it in a while
            left = told + self.settled_interval_s - self.clock()
            return left if left > 0 else None
        eta = super().eta_s(job_id, model=model, size=size, seconds=seconds)
        window = self.finish_window(job_id)
        if eta is None or window is None or not self.events_live:
            return eta
        start, likely, latest = window
        usual = max(0.0, likely - start)
        bound = latest if self.learned and math.isfinite(latest) else start + 2 * usual
        overdue_at = bound + max(self.event_grace_s, 0.25 * usual)
        return max(eta, overdue_at - self.clock())

    def due(self, etas: Iterable[float | None]) -> bool:
        if not self.events_live:
            return super().due(etas)
        return any(eta is None or eta <= 0.05 for eta in etas)  # no ceiling: events cover early endings

    def next_delay(self, etas: Iterable[float | None], *, hint_ms: int | None = None) -> float:
        etas = list(etas)
        normal = super().next_delay(etas, hint_ms=hint_ms)
        known = [eta for eta in etas if eta is not None]
        if not self.events_live or not known:
            return normal
        return max(self.min_interval_s, min(known))


# -- applying a verified event ---------------------------------------------------------------------
async def apply_event(
    event: VideoEvent, *, store: Store, runner: JobRunner, schedule: EventSchedule, log: DebugLog
) -> GenerationRecord | None:
    """Finish the open record of the event's job; returns the record when its status changed."""
    from .provider import ProviderJob

    record = await _open_record(store, event.job_id)
    if record is None:
        schedule.event_arrived(event.job_id, event.kind, event.created_at)
        schedule.refresh_soon(event.job_id)  # a record may be about to take it up (its create in flight)
        shown = short_job_id(event.job_id)
        log.info(f"webhook: video.{event.kind} for job {shown}, which no open record follows; ignored")
        return None
    if event.kind == "completed":  # trusted: no status request, only the download
        job = ProviderJob(
            id=event.job_id, status="completed", progress=100, created_at=0, completed_at=event.created_at or None
        )
    else:
        job = await runner.provider.retrieve(event.job_id)  # for the reason
        if not job.is_finished:
            job = ProviderJob(id=event.job_id, status="failed", progress=job.progress, created_at=job.created_at)
    schedule.event_arrived(event.job_id, job.status, event.created_at)
    log.info(f"webhook: record {record.id} (job {short_job_id(event.job_id)}) is {job.status}")
    changed = await runner.apply_job(record, job)
    if changed is None and (await store.get(record.id)).is_open:  # a transient failure (a cut download)
        schedule.refresh_soon(event.job_id)  # the poller takes it up at once, as it would for a failed step
    return changed


async def _open_record(store: Store, job_id: str) -> GenerationRecord | None:
    for record in await store.query(RecordQuery(statuses=frozenset({Status.PROCESSING}), limit=1000)):
        if record.openai_job_id == job_id:
            return record
    return None


def parse_event(body: bytes, headers: Mapping[str, str], secret: str, verifier: Any) -> VideoEvent | None:
    """The verified video event in a delivery; None for another event type. Raises `WebhookRejected`."""
    import openai

    from .provider import check_job_id

    webhook_id = headers.get("webhook-id", "")
    if not webhook_id or len(webhook_id) > 200:
        raise WebhookRejected(400, "missing or overlong webhook-id header")
    try:
        event = verifier.unwrap(body, headers, secret=secret)
    except openai.InvalidWebhookSignatureError as exc:
        raise WebhookRejected(401, f"signature not verified ({exc})") from None
    except ValueError:  # a missing header, a body that is not UTF-8 JSON
        raise WebhookRejected(400, "not a signed JSON event (webhook-* headers and a JSON body)") from None
    kind = _KINDS.get(str(getattr(event, "type", "")))
    if kind is None:
        return None
    data = getattr(event, "data", None)
    job_id = data.get("id") if isinstance(data, Mapping) else getattr(data, "id", None)
    created = getattr(event, "created_at", 0)
    try:
        check_job_id(job_id)
    except ProviderAnswerInvalid:
        raise WebhookRejected(400, "the event's data.id is not a job id") from None
    at = created if isinstance(created, int) and not isinstance(created, bool) and 0 < created < 2**37 else 0
    return VideoEvent(webhook_id=webhook_id, kind=kind, job_id=str(job_id), created_at=at)


# -- the receiver ------------------------------------------------------------------------------------
class _TooLarge(Exception):
    pass


class WebhookReceiver:
    """A small HTTP endpoint on the service's loop (uvicorn + Starlette) that hands verified events on."""

    def __init__(
        self,
        sock: socket.socket,
        secret: Secret,
        log: DebugLog,
        handle: Callable[[VideoEvent], Coroutine[Any, Any, None]],
    ) -> None:
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}{WEBHOOK_PATH}"
        self.events = 0  # verified video events accepted
        self.refused = 0
        self._sock = sock
        self._secret = secret
        self._log = log
        self._handle = handle
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: Any = None
        self._serving: asyncio.Task[None] | None = None
        self._verifier: Any = None

    @classmethod
    def listen(
        cls, settings: Settings, log: DebugLog, handle: Callable[[VideoEvent], Coroutine[Any, Any, None]]
    ) -> WebhookReceiver | None:
        """Bind the receiver's socket now (so its URL is known); None, and a warning, when it cannot."""
        assert settings.webhook_secret is not None
        host, port = settings.webhook_host, settings.webhook_port
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family)
        except OSError as exc:
            log.warning(
                f"webhooks: cannot listen on {host}:{port} ({exc.strerror or exc}); jobs are polled at the "
                "normal pace. Free the port or set SORANB_WEBHOOK_PORT to another one"
            )
            return None
        receiver = cls(sock, settings.webhook_secret, log, handle)
        log.info(f"webhooks: receiving signed events at {receiver.url}")
        if not _is_loopback(host):
            log.warning(
                f"webhooks: the receiver listens on {host}, so other machines can reach it (it acts only on "
                "events signed with your secret); set SORANB_WEBHOOK_HOST=127.0.0.1 to keep it local"
            )
        return receiver

    @property
    def running(self) -> bool:
        return self._serving is not None and not self._serving.done()

    def start(self, loop: asyncio.AbstractEventLoop, on_stop: Callable[[], None]) -> None:
        """Serve on `loop` (from any thread); `on_stop` runs if serving ends on its own."""

        def begin() -> None:
            self._serving = loop.create_task(self._serve(on_stop))

        loop.call_soon_threadsafe(begin)

    async def _serve(self, on_stop: Callable[[], None]) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route(WEBHOOK_PATH, self._endpoint, methods=["POST"])])
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=False, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        try:
            await self._server.serve(sockets=[self._sock])
        except (Exception, SystemExit) as exc:  # uvicorn exits on a failed start-up: never take the loop down
            self._log.error(f"webhooks: the receiver stopped ({type(exc).__name__}); polling at the normal pace")
        finally:
            on_stop()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._serving is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._serving, 5)
        for task in list(self._tasks):
            task.cancel()
        self._sock.close()
        if self._verifier is not None:
            self._verifier.close()

    async def _endpoint(self, request: Any) -> Any:
        from starlette.responses import PlainTextResponse

        try:
            body = await _read_capped(request, MAX_BODY_BYTES)
            headers = {k.lower(): v for k, v in request.headers.items()}
            event = parse_event(body, headers, self._secret.reveal(), self._sdk_webhooks())
        except _TooLarge:
            return self._refuse(WebhookRejected(413, f"event larger than {MAX_BODY_BYTES} bytes"))
        except WebhookRejected as exc:
            return self._refuse(exc)
        if event is None:
            return PlainTextResponse("ignored: not a video event")
        if event.webhook_id in self._seen:
            self._log.info(f"webhook: {event.webhook_id} delivered again; handled once")
            return PlainTextResponse("already handled")
        self._seen[event.webhook_id] = None
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        self.events += 1
        task = asyncio.get_running_loop().create_task(self._handle(event))  # answer now; a download takes longer
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return PlainTextResponse("accepted")

    def _refuse(self, rejected: WebhookRejected) -> Any:
        from starlette.responses import PlainTextResponse

        self.refused += 1
        self._log.warning(f"webhook refused ({rejected.status}): {rejected.reason}")
        return PlainTextResponse(rejected.reason, status_code=rejected.status)

    def _sdk_webhooks(self) -> Any:
        """The official SDK's webhook verifier (its client is never used to send anything)."""
        if self._verifier is None:
            import openai

            self._verifier = openai.OpenAI(api_key="unused-webhook-verifier", base_url="http://127.0.0.1:9/v1")
        return self._verifier.webhooks


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _read_capped(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)
