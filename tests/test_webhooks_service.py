"""Webhooks in soranb: signed events finish jobs at once, anything else is refused, and polling still
finishes every job when events cannot arrive (a receiver that cannot listen, events that are lost)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import socket
import time
from collections.abc import Iterator

import httpx2
import pytest
from engine_helpers import FOX, SPEED, wait_at_provider
from netfaults import Tamper

from soranb.config import Settings
from soranb.emulator.webhooks import sign
from soranb.errors import ConfigError
from soranb.media_check import verify_video
from soranb.records import Status
from soranb.service import VideoService
from soranb.webhooks import MAX_BODY_BYTES, WEBHOOK_PATH, EventSchedule

SECRET = "whsec_" + base64.b64encode(b"soranb-webhooks-service-secret!!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"x" * 32).decode()
FAST = (0.05, 0.05, 0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_requests(tamper: Tamper) -> int:
    """List and retrieve calls (not creates, not downloads) that reached the provider."""
    return sum(line.startswith("GET /v1/videos") and "/content" not in line for line in tamper.requests)


def delivery(job_id: str, *, kind: str = "completed", secret: str = SECRET, age_s: int = 0, webhook_id: str = ""):
    """A `video.<kind>` event for `job_id` as the provider sends it: (body, headers)."""
    webhook_id = webhook_id or "evt_" + secrets.token_hex(16)
    body = json.dumps(
        {
            "id": webhook_id,
            "object": "event",
            "created_at": int(time.time()),
            "type": f"video.{kind}",
            "data": {"id": job_id},
        }
    ).encode()
    stamp = int(time.time()) - age_s
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, webhook_id, stamp, body),
    }
    return body, headers


@pytest.fixture
def hooked(settings) -> Settings:
    """The test settings with a webhook secret and a port chosen for the receiver."""
    return settings.with_overrides(webhook_secret=SECRET, webhook_port=free_port())


@pytest.fixture
def counted(make_service, hooked) -> Iterator:
    """`make(**knobs)`: a service with webhooks whose emulator sends its events to the service's receiver
    (or where `webhook_urls` says), and the transport that counts every request soranb makes."""

    def make(*, using: Settings | None = None, **knobs) -> tuple[VideoService, Tamper]:
        chosen = using or hooked
        made: list[Tamper] = []

        def wrap(inner: httpx2.AsyncBaseTransport) -> Tamper:
            made.append(Tamper(inner, lambda *_: None))
            return made[-1]

        knobs.setdefault("webhook_urls", (f"http://127.0.0.1:{chosen.webhook_port}{WEBHOOK_PATH}",))
        knobs.setdefault("webhook_secret", SECRET)
        knobs.setdefault("webhook_retry_delays", FAST)
        service = make_service(using=chosen, wrap_transport=wrap, **knobs)
        assert service.provider is not None  # builds nothing new, but starts the receiver
        return service, made[0]

    return make


def post(service: VideoService, body: bytes, headers: dict[str, str]) -> httpx2.Response:
    assert service.webhook_url is not None
    return httpx2.post(service.webhook_url, content=body, headers=headers, timeout=10)


def trusting(service: VideoService) -> VideoService:
    """Only events finish jobs here: the safety net's first look waits minutes, not seconds, so an event that a
    busy machine delays (the emulator renders, then delivers, on its own threads) is not overtaken by it."""
    assert isinstance(service.schedule, EventSchedule)
    service.schedule.event_grace_s = 300.0
    return service


def settle(service: VideoService) -> None:
    """Wait until every event the receiver accepted so far has been applied. The receiver answers before it
    applies an event and a refused one starts nothing, so what changed by then is all a delivery changes."""
    receiver = service._webhooks
    assert receiver is not None

    async def applied() -> None:
        while receiver._tasks:
            await asyncio.gather(*receiver._tasks, return_exceptions=True)

    service._run(applied(), timeout=30)


def wait_until(check, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# -- events finish jobs ----------------------------------------------------------------------------
def test_a_completed_event_stores_a_verified_video_with_no_status_request(counted):
    service, tamper = counted()
    trusting(service).start()
    record = service.generate(FOX)
    (done,) = service.wait([record.id], timeout=60)
    assert done.status == Status.COMPLETED
    path = service.media_path(done.video_key or "")
    assert path is not None and path.is_file()
    verify_video(path, FOX.seconds)  # whole, and as long as asked
    assert status_requests(tamper) == 0  # the event was trusted for the status: only the downloads
    assert tamper.count("/content?variant=video") == 1


def test_the_in_process_emulator_is_told_the_receiver_url_when_a_secret_is_set(hooked):
    """The default set-up works offline end to end: the emulator soranb starts sends its events to soranb."""
    with VideoService(hooked, autostart=False) as service:
        status = []

        async def count(request: httpx2.Request) -> None:
            if request.method == "GET" and not request.url.path.endswith("/content"):
                status.append(request.url.path)

        service.provider._http.event_hooks["request"].append(count)
        assert service.webhook_url == f"http://127.0.0.1:{hooked.webhook_port}{WEBHOOK_PATH}"
        assert service.provider.emulator.config.webhook_urls == (service.webhook_url,)
        trusting(service).start()
        record = service.generate(FOX)
        (done,) = service.wait([record.id], timeout=60)
        assert done.status == Status.COMPLETED
        assert status == []


def test_a_failed_event_ends_the_record_with_the_providers_reason(counted):
    service, tamper = counted()
    service.start()
    blocked = service.generate(FOX.__class__("moderation-test: a blocked clip", "sora-2", "1280x720", 4))
    (done,) = service.wait([blocked.id], timeout=60)
    assert done.status == Status.FAILED
    assert "moderation" in (done.error_message or "")
    assert tamper.count("/content") == 0


def test_a_slot_freed_by_an_event_lets_a_waiting_record_start_at_once(counted, hooked):
    service, tamper = counted(using=hooked.with_overrides(max_concurrent_jobs=1))
    trusting(service).start()
    first, second = service.generate(FOX), service.generate(FOX)
    done = service.wait([first.id, second.id], timeout=60)
    assert [r.status for r in done] == [Status.COMPLETED, Status.COMPLETED]
    assert status_requests(tamper) == 0


# -- what the receiver refuses -----------------------------------------------------------------------
@pytest.fixture
def running_job(counted) -> tuple[VideoService, Tamper, str]:
    """A service with webhooks and one job still rendering at the provider (no events sent by the emulator)."""
    service, tamper = counted(speed=1.0, webhook_urls=())
    record = service.generate(FOX)
    assert record.status == Status.PROCESSING and record.openai_job_id
    return service, tamper, record.id


def test_a_forged_signature_is_refused_and_changes_nothing(running_job):
    service, tamper, record_id = running_job
    job_id = service.get(record_id).openai_job_id or ""
    before = list(tamper.requests)
    answer = post(service, *delivery(job_id, secret=OTHER_SECRET))
    assert answer.status_code == 401
    unsigned_body, headers = delivery(job_id)
    answer = post(service, unsigned_body.replace(b"completed", b"failed"), headers)  # signed body changed
    assert answer.status_code == 401
    settle(service)
    assert service.get(record_id).status == Status.PROCESSING
    assert tamper.requests == before  # nothing asked of the provider, nothing downloaded


def test_a_stale_timestamp_is_refused_so_an_old_delivery_cannot_be_replayed(running_job):
    service, tamper, record_id = running_job
    job_id = service.get(record_id).openai_job_id or ""
    answer = post(service, *delivery(job_id, age_s=600))
    assert answer.status_code == 401
    assert "too old" in answer.text
    settle(service)
    assert service.get(record_id).status == Status.PROCESSING
    assert tamper.count("/content") == 0


def test_a_malformed_delivery_is_refused_with_400(running_job):
    service, _, record_id = running_job
    body, headers = delivery(service.get(record_id).openai_job_id or "")
    del headers["webhook-signature"]
    assert post(service, body, headers).status_code == 400
    hostile = json.dumps({"id": "evt_1", "type": "video.completed", "created_at": 1, "data": {"id": "../../etc"}})
    stamp = int(time.time())
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(stamp)}
    headers["webhook-signature"] = sign(SECRET, "evt_1", stamp, hostile.encode())
    assert post(service, hostile.encode(), headers).status_code == 400  # signed, but not a job id
    assert service.get(record_id).status == Status.PROCESSING


@pytest.mark.parametrize("announced", [True, False])
def test_an_oversized_body_is_refused_as_it_arrives(running_job, announced):
    service, _, record_id = running_job
    big = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"
    _, headers = delivery(service.get(record_id).openai_job_id or "")
    content = big if announced else iter([big[:50_000], big[50_000:]])  # no Content-Length: chunked
    answer = httpx2.post(service.webhook_url or "", content=content, headers=headers, timeout=10)
    assert answer.status_code == 413
    assert service.get(record_id).status == Status.PROCESSING


def test_a_duplicate_delivery_is_handled_once(counted):
    service, tamper = counted(webhook_urls=())
    record = service.generate(FOX)
    wait_at_provider(service, record.id)  # done there; soranb has not polled
    requests_before = status_requests(tamper)
    body, headers = delivery(service.get(record.id).openai_job_id or "")
    assert post(service, body, headers).status_code == 200
    assert post(service, body, headers).status_code == 200  # the provider's retry: acknowledged, not redone
    wait_until(lambda: service.get(record.id).status == Status.COMPLETED)
    settle(service)
    assert tamper.count("/content?variant=video") == 1
    assert status_requests(tamper) == requests_before
    assert service._webhooks is not None and service._webhooks.events == 1


def test_an_event_for_an_unknown_job_is_ignored_safely(counted):
    service, tamper = counted(webhook_urls=())
    record = service.generate(FOX)
    before = list(tamper.requests)
    answer = post(service, *delivery("video_" + "0" * 48))
    assert answer.status_code == 200
    settle(service)  # the event was applied: it found no record to finish
    assert tamper.requests == before  # nothing fetched for it
    assert service.get(record.id).status == Status.PROCESSING
    assert any("no open record follows" in e.message for e in service.log.entries())


# -- polling still finishes everything ---------------------------------------------------------------
def test_a_receiver_that_cannot_listen_leaves_polling_at_its_normal_pace(counted, hooked):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", hooked.webhook_port))
        taken.listen()
        service, tamper = counted()
        assert service.webhook_url is None
        assert isinstance(service.schedule, EventSchedule) and not service.schedule.events_live
        service.schedule.pace = 1 / SPEED  # a guess as good as the one the lost-event test gets
        service.start()
        record = service.generate(FOX)
        (done,) = service.wait([record.id], timeout=20)
    assert done.status == Status.COMPLETED
    assert status_requests(tamper) >= 1
    assert any("cannot listen" in e.message and "SORANB_WEBHOOK_PORT" in e.message for e in service.log.entries())


def test_lost_events_still_finish_every_job_and_bring_back_the_normal_pace(counted):
    """The emulator's events go nowhere: each job is refreshed once its event is overdue; after two such
    jobs in a row, events are no longer trusted and polling is normal again."""
    service, tamper = counted(webhook_urls=(f"http://127.0.0.1:{free_port()}/nowhere",))
    schedule = service.schedule
    assert isinstance(schedule, EventSchedule)
    schedule.pace, schedule.event_grace_s = 1 / SPEED, 0.5  # the guess and grace a test can wait for
    assert schedule.events_live
    service.start()
    records = [service.generate(FOX) for _ in range(2)]
    done = service.wait([r.id for r in records], timeout=30)
    assert [r.status for r in done] == [Status.COMPLETED, Status.COMPLETED]
    assert status_requests(tamper) >= 1
    assert not schedule.events_live


def test_an_event_that_arrives_restores_trust_after_misses():
    schedule = EventSchedule(receiving=True)
    schedule._missed = 5
    assert not schedule.events_live
    schedule.event_arrived("video_" + "1" * 48, "completed", int(time.time()))
    assert schedule.events_live


# -- the secret stays secret -------------------------------------------------------------------------
def test_the_secret_never_reaches_logs_errors_or_the_store(counted, hooked):
    service, _ = counted()
    service.start()
    record = service.generate(FOX)
    refused = post(service, *delivery(record.openai_job_id or "", secret=OTHER_SECRET))
    service.wait([record.id], timeout=60)
    key_part = SECRET.removeprefix("whsec_")
    texts = [e.message for e in service.log.entries()] + [refused.text, repr(hooked), str(hooked.webhook_secret)]
    assert not any(key_part in text or SECRET in text for text in texts)
    for path in hooked.data_dir.rglob("*"):
        if path.is_file() and "emulator" not in path.parts:
            assert key_part.encode() not in path.read_bytes(), path
    with pytest.raises(ConfigError) as bad:
        Settings.from_env({"SORANB_WEBHOOK_SECRET": "not-a-whsec-value-123"}, dotenv=False)
    assert "not-a-whsec-value-123" not in str(bad.value) and "SORANB_WEBHOOK_SECRET" in str(bad.value)


def test_the_sdks_own_webhook_secret_variable_is_honoured(tmp_path):
    settings = Settings.from_env({"OPENAI_WEBHOOK_SECRET": SECRET, "SORANB_DATA_DIR": str(tmp_path)}, dotenv=False)
    assert settings.webhook_secret is not None and settings.webhook_secret.reveal() == SECRET
    assert SECRET in settings.secrets()  # so the debug log masks it
    assert Settings.from_env({"SORANB_DATA_DIR": str(tmp_path)}, dotenv=False).webhook_secret is None


def test_a_job_whose_event_is_being_applied_is_not_refreshed_meanwhile():
    from soranb.provider import ProviderJob

    clock = [1000.0]
    schedule = EventSchedule(receiving=True, clock=lambda: clock[0])
    job = ProviderJob(
        id="video_" + "2" * 48,
        status="queued",
        progress=0,
        created_at=1000,
        model="sora-2",
        size="1280x720",
        seconds="4",
    )
    schedule.observe(job, just_created=True)
    clock[0] += 30
    schedule.event_arrived(job.id, "completed", 1029)  # the record is still processing while its video downloads
    eta = schedule.eta_s(job.id, model="sora-2", size="1280x720", seconds=4)
    assert eta is not None and eta > 1
    assert not schedule.due([eta])
    schedule.refresh_soon(job.id)  # applying it failed: now it is due
    assert schedule.due([schedule.eta_s(job.id)])


def test_a_completed_event_teaches_the_pace_like_a_video_object_would():
    """With events no video object shows a finished job: the event's time teaches the pace instead, so
    progress bars and the safety net expect the next job when it really ends."""
    from soranb.provider import ProviderJob

    clock = [1000.0]
    schedule = EventSchedule(receiving=True, clock=lambda: clock[0])

    def created(n: int) -> ProviderJob:
        job_id = f"video_{n:048d}"
        return ProviderJob(job_id, "queued", 0, int(clock[0]), model="sora-2", size="1280x720", seconds="4")

    first = created(1)
    schedule.observe(first, just_created=True)
    clock[0] += 31  # the event arrives a second after the provider stamped it
    schedule.event_arrived(first.id, "completed", 1030)
    assert schedule.learned
    second = created(2)
    schedule.observe(second, just_created=True)
    start, likely, latest = schedule.finish_window(second.id) or (0, 0, 0)
    assert 27 <= likely - start <= 33 and latest - start <= 34  # the catalog says 60 s: it learned 30


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_a_receiver_open_to_other_machines_says_so(settings, host, warned):
    from soranb.debuglog import DebugLog
    from soranb.webhooks import WebhookReceiver

    async def handle(event) -> None:
        pass

    log = DebugLog()
    receiver = WebhookReceiver.listen(settings.with_overrides(webhook_secret=SECRET, webhook_host=host), log, handle)
    assert receiver is not None
    receiver._sock.close()
    assert any("other machines can reach it" in e.message for e in log.entries()) is warned


def test_a_download_that_fails_after_an_event_is_taken_up_by_the_poller_at_once(make_service, hooked):
    from netfaults import json_answer

    refused: list[str] = []

    def rule(request, response, body):
        if "/content?variant=video" in str(request.url) and not refused:
            refused.append(str(request.url))
            return json_answer(request, {"error": {"message": "busy", "type": "server_error"}}, status=503)
        return None

    made: list[Tamper] = []

    def wrap(inner):
        made.append(Tamper(inner, rule))
        return made[-1]

    url = f"http://127.0.0.1:{hooked.webhook_port}{WEBHOOK_PATH}"
    service = make_service(
        using=hooked, wrap_transport=wrap, webhook_urls=(url,), webhook_secret=SECRET, webhook_retry_delays=FAST
    )
    service.start()
    record = service.generate(FOX)
    (done,) = service.wait([record.id], timeout=20)  # the safety net alone would wait a minute or more
    assert done.status == Status.COMPLETED
    assert refused and made[0].count("/content?variant=video") == 2


def test_a_body_announced_too_large_is_refused_before_it_is_sent(running_job):
    """A sender that announces megabytes is answered 413 at once: the receiver never waits for (or keeps) them."""
    service, _, _ = running_job
    port = int((service.webhook_url or "").split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {50 * MAX_BODY_BYTES}\r\n\r\n{{".encode()
        )
        answer = sock.recv(200).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413")


def test_close_ends_a_poller_that_swallowed_its_first_cancel(settings):
    """Python 3.11's `asyncio.wait_for` returns instead of raising when a cancel arrives just as its event is
    set, which a webhook's poke at close makes likely: closing must still end the poller."""
    import asyncio
    import contextlib

    service = VideoService(settings, autostart=False)

    async def swallowing() -> None:
        with contextlib.suppress(asyncio.CancelledError):  # as wait_for does when its event was just set
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)

    async def install() -> asyncio.Task[None]:
        service._poll_task = asyncio.get_running_loop().create_task(swallowing())
        await asyncio.sleep(0)
        return service._poll_task

    task = service._run(install())
    service.close()
    assert task.done()
