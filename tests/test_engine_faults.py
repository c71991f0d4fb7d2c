"""The engine's promise under faults: one bad record never stops the others, a stored video is whole,
leases follow their holder, and every safety path has a test that fails without it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from datetime import timedelta

import av
import httpx2
import pytest
from engine_helpers import FOX, drive, emulator_jobs, wait_at_provider
from netfaults import Tamper, cut_body, json_answer, trickle_body

from soranb.debuglog import DebugLog
from soranb.errors import ProviderAnswerInvalid
from soranb.leases import LEASE_TTL, new_owner_id, tmp_folder_name
from soranb.provider import ProviderJob
from soranb.records import GenerationRecord, Status
from soranb.service import VideoService

ROUNDS = 20  # consecutive races of two waiters over five jobs
HOSTILE = dataclasses.replace(FOX, prompt="a hostile fox")


def is_json_call(request: httpx2.Request, response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/json") and "/content" not in str(
        request.url
    )


def hostile(change):
    """A provider that rewrites the video objects of jobs whose prompt says 'hostile'."""

    def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if not is_json_call(request, response) or response.status_code != 200:
            return None
        data = json.loads(body)
        videos = data["data"] if data.get("object") == "list" else [data]
        for video in videos:
            if "hostile" in (video.get("prompt") or ""):
                change(video)
        return json_answer(request, data)

    return rule


def tampered(make_service, rule, refuse=None, **knobs) -> tuple[VideoService, Tamper]:
    made: list[Tamper] = []

    def wrap(inner: httpx2.AsyncBaseTransport) -> Tamper:
        made.append(Tamper(inner, rule, refuse))
        return made[-1]

    service = make_service(wrap_transport=wrap, **knobs)
    return service, made[0]


def finished(service: VideoService, *records: GenerationRecord) -> list[GenerationRecord]:
    return [service.get(r.id) for r in records]


# -- 1. one bad record never stops the others ----------------------------------------------------
@pytest.mark.parametrize("bad_id", ["..", "", "<img src=x onerror=alert(1)>", "video_1/../../x", 42])
def test_a_hostile_job_id_ends_that_record_and_the_others_finish(make_service, bad_id):
    service, _ = tampered(make_service, hostile(lambda video: video.update(id=bad_id)))
    good = service.generate(FOX)
    bad = service.generate(HOSTILE)  # the create succeeded at the provider, but its answer is unusable
    assert bad.status == Status.FAILED and "invalid job id" in bad.error_message
    assert "dashboard" in bad.error_message  # it may have been billed: the user is told where to look
    drive(service)
    good_now, bad_now = finished(service, good, bad)
    assert good_now.status == Status.COMPLETED and bad_now.status == Status.FAILED
    assert len(emulator_jobs(service)) == 2  # nothing created twice
    assert [r.status for r in service.wait([good.id, bad.id], timeout=5)] == [Status.COMPLETED, Status.FAILED]
    service.delete(bad.id)  # a record with a broken job can still be removed
    assert [r.id for r in service.list_records()] == [good.id]


@pytest.mark.parametrize(
    ("field", "value"),
    [("progress", "50%"), ("progress", 1000), ("progress", -5), ("status", "exploding")],
)
def test_an_invalid_field_from_the_provider_ends_that_record_with_the_reason(make_service, field, value):
    service, _ = tampered(make_service, hostile(lambda video: video.update({field: value})))
    good = service.generate(FOX)
    bad = service.generate(HOSTILE)  # never raises: the job exists, so it is followed, never re-created
    assert bad.status == Status.PROCESSING and bad.openai_job_id
    drive(service)
    good_now, bad_now = finished(service, good, bad)
    assert good_now.status == Status.COMPLETED
    assert bad_now.status == Status.FAILED
    assert field in bad_now.error_message and "invalid" in bad_now.error_message
    assert len(emulator_jobs(service)) == 2


def test_a_job_the_provider_never_finishes_is_ended_so_waiting_always_returns(make_service):
    service, _ = tampered(make_service, hostile(lambda video: video.update(status="in_progress", progress=50)))
    good = service.generate(FOX)
    stuck = service.generate(HOSTILE)
    three_hours_ago = stuck.created_at - timedelta(hours=3)  # past ten times its usual render time, and 2 h
    service._run(service.store.update(stuck.id, {"created_at": three_hours_ago}))
    records = service.wait([good.id, stuck.id], timeout=60)
    assert [r.status for r in records] == [Status.COMPLETED, Status.FAILED]
    assert "has not finished it" in records[1].error_message and stuck.openai_job_id in records[1].error_message


def beside_a_good_job(service: VideoService, planted: GenerationRecord) -> GenerationRecord:
    """Store `planted` as it is, start a good job, poll until nothing is open: the good one must finish.

    Returns `planted` as it ended."""
    service._run(service.store.insert(planted))
    good = service.generate(FOX)
    drive(service)
    assert service.get(good.id).status == Status.COMPLETED
    return service.get(planted.id)


def test_a_stored_record_with_a_broken_job_id_is_ended_and_deletable(service):
    broken = GenerationRecord(prompt="from an older soranb", model="sora-2", size="1280x720", seconds=4)
    ended = beside_a_good_job(service, dataclasses.replace(broken, status=Status.PROCESSING, openai_job_id=".."))
    assert ended.status == Status.FAILED and "not a valid job id" in ended.error_message
    service.delete(broken.id)


def test_a_pending_record_whose_starting_image_is_gone_fails_and_the_others_move(service):
    orphan = GenerationRecord(prompt="with a lost image", model="sora-2", size="1280x720", seconds=4)
    orphan = dataclasses.replace(orphan, image_key=f"images/{orphan.id}.png", image_filename="start.png")
    ended = beside_a_good_job(service, orphan)
    assert ended.status == Status.FAILED and "starting image is gone" in ended.error_message
    assert emulator_jobs(service)[0].prompt == FOX.prompt and len(emulator_jobs(service)) == 1


def test_provider_fields_are_validated_at_the_boundary():
    good = {"id": "video_abc", "object": "video", "status": "queued", "progress": 0, "created_at": 1}
    assert ProviderJob.parse(good).id == "video_abc"
    for change in ({"id": ".."}, {"progress": "50%"}, {"progress": 10**30}, {"created_at": -5}, {"error": "boom"}):
        with pytest.raises(ProviderAnswerInvalid):
            ProviderJob.parse({**good, **change})
    with pytest.raises(ProviderAnswerInvalid):
        ProviderJob.parse(["not", "an", "object"])


# -- 5, 6. a stored video is a whole video ----------------------------------------------------------
@pytest.mark.parametrize("announce", [False, True], ids=["no-content-length", "short-of-content-length"])
def test_a_download_cut_short_is_never_stored_and_is_fetched_again(make_service, announce):
    cuts = [2]

    def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if "variant=video" in str(request.url) and cuts[0] > 0:
            cuts[0] -= 1
            return cut_body(request, body, keep=0.6, announce=announce)
        return None

    service, tamper = tampered(make_service, rule)
    record = service.generate(FOX)
    wait_at_provider(service, record.id)
    service.poll_once()
    assert service.get(record.id).status == Status.PROCESSING  # a half video is not "completed"
    drive(service)
    done = service.get(record.id)
    assert done.status == Status.COMPLETED and tamper.count("variant=video") == 3
    with av.open(str(service.media_path(done.video_key))) as container:
        assert float(container.duration / av.time_base) == pytest.approx(4.0, abs=0.2)
        assert sum(1 for _ in container.decode(video=0)) == 4 * 24
    assert list(service.runner.tmp_dir.iterdir()) == []


def test_a_connection_dropped_mid_download_is_a_provider_error_and_retried(make_service):
    drops = [1]

    class Dropping(httpx2.AsyncByteStream):
        def __init__(self, body: bytes) -> None:
            self.body = body

        async def __aiter__(self):
            yield self.body[: len(self.body) // 2]
            raise httpx2.ReadError("[Errno 104] Connection reset by peer")

    def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if "variant=video" in str(request.url) and drops[0]:
            drops[0] -= 1
            return httpx2.Response(200, headers={"content-length": str(len(body))}, stream=Dropping(body))
        return None

    service, _ = tampered(make_service, rule)
    record = service.generate(FOX)
    drive(service)
    assert service.get(record.id).status == Status.COMPLETED
    messages = [e.message for e in service.log.entries()]
    assert any("broke mid-answer" in m for m in messages)
    assert not any("unexpected" in m for m in messages)


# -- 9. deleting a record while its video downloads ---------------------------------------------------
def slow_videos(seconds: float):
    """A network on which every video download takes `seconds`."""

    def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if "variant=video" in str(request.url):
            return trickle_body(request, body, seconds=seconds)
        return None

    return rule


def step_until_sent(service: VideoService, tamper: Tamper, request_text: str) -> threading.Thread:
    """A poll step on its own thread, returned once it has sent a request containing `request_text`."""
    stepping = threading.Thread(target=service.poll_once)
    stepping.start()
    deadline = time.monotonic() + 30
    while tamper.count(request_text) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return stepping


def start_downloading(service: VideoService, tamper: Tamper, record: GenerationRecord) -> threading.Thread:
    """A poll step on its own thread, returned once the record's video download has begun."""
    wait_at_provider(service, record.id)
    return step_until_sent(service, tamper, "variant=video")


def test_deleting_a_record_while_its_video_downloads_leaves_no_file(make_service, settings):
    service, tamper = tampered(make_service, slow_videos(1.0))
    record = service.generate(FOX)
    stepping = start_downloading(service, tamper, record)
    service.delete(record.id)
    stepping.join(30)
    media = settings.data_dir / "media"
    assert [p for p in media.rglob("*") if p.is_file()] == []


# -- 2. leases that follow their holder -------------------------------------------------------------------
def held_videos(release: threading.Event):
    """A network on which every video download is answered only once `release` is set."""

    async def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if "variant=video" in str(request.url):
            await asyncio.to_thread(release.wait, 60)
        return None

    return rule


def test_a_download_that_outlives_its_lease_period_is_fetched_once(make_service):
    """The download is held open until the other service has tried after the lease period ended: only the
    heartbeat keeps it out. A period of seconds, renewed every third of it, is not lost to a late timer."""
    ttl = timedelta(seconds=3)
    release = threading.Event()
    a, tamper_a = tampered(make_service, held_videos(release))
    b, tamper_b = tampered(make_service, lambda *_: None)
    for service in (a, b):
        service.runner.lease_ttl = ttl
    record = a.generate(FOX)
    holder = start_downloading(a, tamper_a, record)
    try:
        outlived = time.monotonic() + ttl.total_seconds() + 0.5  # the lease a took before its download ended
        tries_after = 0
        while tries_after < 2:  # the other service keeps trying, twice after the lease period at least
            assert time.monotonic() < outlived + 30
            late = time.monotonic() > outlived
            b.poll_once()
            tries_after += late
            time.sleep(0.1)
    finally:
        release.set()
    holder.join(30)
    assert a.get(record.id).status == Status.COMPLETED
    assert tamper_a.count("variant=video") + tamper_b.count("variant=video") == 1


def test_two_services_on_one_store_finish_every_job_and_fetch_each_video_once(make_service):
    """Five jobs over the cap of four, two pollers racing to finish them, twenty rounds in a row."""
    a, tamper_a = tampered(make_service, lambda *_: None)
    b, tamper_b = tampered(make_service, lambda *_: None)
    for round_ in range(ROUNDS):
        fetched_before = tamper_a.count("variant=video") + tamper_b.count("variant=video")
        records = [a.generate(dataclasses.replace(FOX, prompt=f"fox {i} of round {round_}")) for i in range(5)]
        ids = [r.id for r in records]
        results: dict[str, list[GenerationRecord]] = {}

        def wait(name: str, service: VideoService, results=results, ids=ids) -> None:
            results[name] = service.wait(ids, timeout=60)

        threads = [threading.Thread(target=wait, args=item) for item in (("a", a), ("b", b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        assert [r.status for r in results["a"]] == [Status.COMPLETED] * 5, f"round {round_}"
        assert [r.status for r in results["b"]] == [Status.COMPLETED] * 5, f"round {round_}"
        fetched = tamper_a.count("variant=video") + tamper_b.count("variant=video") - fetched_before
        assert fetched == 5, f"round {round_}: {fetched} video downloads for 5 jobs"


def test_temp_folders_of_processes_that_are_gone_are_swept_and_live_ones_kept(settings, make_service):
    import socket
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    tmp = settings.data_dir / "tmp"
    dead = tmp / tmp_folder_name(f"{socket.gethostname()}:{child.pid}:deadbeef")
    dead.mkdir(parents=True)
    (dead / "tmpabc.mp4.part").write_bytes(b"half a video")
    service = make_service(from_settings=True)
    service.runner.tmp_path(".mp4")  # this live service's own folder
    fresh = make_service(from_settings=True)
    assert not dead.exists()
    assert service.runner.tmp_dir.exists() and fresh.runner.tmp_dir != service.runner.tmp_dir


# -- 3. transient failures are waited through ----------------------------------------------------------------
def test_a_rate_limited_create_waits_honouring_retry_after_and_creates_once(make_service):
    refusals = [2]

    def refuse(request: httpx2.Request):
        if request.method == "POST" and request.url.path == "/v1/videos" and refusals[0]:
            refusals[0] -= 1
            return json_answer(request, {"error": {"message": "slow down"}}, 429, {"retry-after": "1.5"})
        return None

    service, tamper = tampered(make_service, lambda *_: None, refuse)
    record = service.generate(FOX)
    assert record.status == Status.PENDING and "rate limited" in record.metadata["waiting_reason"]
    report = service.poll_once()
    assert report.retry_after_s == pytest.approx(1.5) and report.next_delay_s >= 1.5
    (done,) = service.wait([record.id], timeout=60)
    assert done.status == Status.COMPLETED and len(emulator_jobs(service)) == 1
    assert tamper.count("POST /v1/videos?") == 3


def test_the_background_poller_sleeps_as_long_as_retry_after_asks(make_service):
    def refuse(request: httpx2.Request):
        if request.method == "GET" and request.url.path == "/v1/videos":
            return json_answer(request, {"error": {"message": "slow down"}}, 429, {"retry-after": "7"})
        return None

    service, _ = tampered(make_service, lambda *_: None, refuse)
    service.generate(FOX)
    service.start()
    deadline = time.monotonic() + 30
    while service.last_poll_delay_s is None or service.last_poll_delay_s < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert service.last_poll_delay_s >= 7.0


def test_a_thumbnail_refused_with_429_is_retried_not_dropped(make_service):
    refusals = [1]

    def refuse(request: httpx2.Request):
        if "variant=thumbnail" in str(request.url) and refusals[0]:
            refusals[0] -= 1
            return json_answer(request, {"error": {"message": "slow down"}}, 429, {"retry-after": "0.2"})
        return None

    service, tamper = tampered(make_service, lambda *_: None, refuse)
    record = service.generate(FOX)
    drive(service)
    done = service.get(record.id)
    assert done.thumbnail_key and service.media_path(done.thumbnail_key).read_bytes()[8:12] == b"WEBP"
    assert tamper.count("variant=thumbnail") == 2


# -- 10. the safety paths of a create ---------------------------------------------------------------------------
def test_a_lost_create_is_found_on_a_later_attempt_never_created_again(make_service):
    """The answer is lost and the immediate look-up fails too: the next step looks again (by
    `create_attempted_at`) and links the job instead of sending a second create."""
    state = {"lost": 1, "list_down": 1}

    async def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if request.method == "POST" and request.url.path == "/v1/videos" and state["lost"]:
            state["lost"] -= 1
            raise httpx2.ReadError("[Errno 104] Connection reset by peer")  # after the job was made
        if request.method == "GET" and request.url.path == "/v1/videos" and state["list_down"]:
            state["list_down"] -= 1
            return json_answer(request, {"error": {"message": "down"}}, 503)
        return None

    service, tamper = tampered(make_service, rule)
    record = service.generate(FOX)
    assert record.status == Status.PENDING and "create_attempted_at" in service.get(record.id).metadata
    drive(service)
    assert service.get(record.id).status == Status.COMPLETED
    assert len(emulator_jobs(service)) == 1 and tamper.count("POST /v1/videos?") == 1


def test_a_lost_create_never_links_a_job_that_another_record_already_has(make_service):
    """The second, identical create never reaches the provider: the look-up finds only the first
    record's job, which must not be taken for the lost one."""
    state = {"posts": 0}

    def refuse(request: httpx2.Request):
        if request.method == "POST" and request.url.path == "/v1/videos":
            state["posts"] += 1
            if state["posts"] == 2:
                raise httpx2.ReadError("[Errno 104] Connection reset by peer")
        return None

    service, _ = tampered(make_service, lambda *_: None, refuse)
    first = service.generate(FOX)
    second = service.generate(FOX)  # same prompt, model, size and seconds
    assert first.openai_job_id != second.openai_job_id
    assert {j.id for j in emulator_jobs(service)} == {first.openai_job_id, second.openai_job_id}


def test_two_services_submitting_one_pending_record_create_one_job(make_service):
    async def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if request.method == "POST":
            await asyncio.sleep(0.5)  # both services are inside their submit at once
        return None

    a, _ = tampered(make_service, rule)
    b, _ = tampered(make_service, rule)
    pending = GenerationRecord(prompt=FOX.prompt, model=FOX.model, size=FOX.size, seconds=FOX.seconds)
    a._run(a.store.insert(pending))
    barrier = threading.Barrier(2)

    def submit(service: VideoService) -> None:
        barrier.wait()
        service.poll_once()

    threads = [threading.Thread(target=submit, args=(s,)) for s in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(emulator_jobs(a)) == 1
    assert a.get(pending.id).openai_job_id == emulator_jobs(a)[0].id


def test_a_finished_record_is_not_downloaded_again_by_a_service_that_read_it_earlier(make_service):
    a, tamper_a = tampered(make_service, lambda *_: None)
    b, tamper_b = tampered(make_service, lambda *_: None)
    record = a.generate(FOX)
    stale = a.get(record.id)  # what b read before a finished it
    drive(a)
    job = ProviderJob.parse(a.check_status(record.id))
    assert b._run(b.runner._finish(stale, job)) is None
    assert tamper_a.count("variant=video") == 1 and tamper_b.count("variant=video") == 0


def test_keys_of_any_shape_are_redacted_from_the_log_and_errors(make_service):
    gateway_key = "gw_live_Zx81Qp0aa9"  # no `sk-` prefix, no JWT shape

    def rule(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if request.method == "POST":
            message = f"Incorrect API key provided: {gateway_key}"
            return json_answer(request, {"error": {"message": message, "code": "invalid_api_key"}}, 401)
        return None

    service, _ = tampered(make_service, rule, api_key=gateway_key)
    with pytest.raises(Exception) as caught:
        service.generate(FOX)
    assert gateway_key not in str(caught.value)
    shown = [e.format() for e in service.log.entries()] + [r.error_message or "" for r in service.list_records()]
    assert all(gateway_key not in line for line in shown)
    assert any("[redacted]" in line for line in shown)
    assert DebugLog([gateway_key]).add("INFO", f"key={gateway_key}").message == "key=[redacted]"


# -- 4. waiting wakes on events --------------------------------------------------------------------------
def test_waiting_for_a_job_reads_the_store_only_to_start_with(make_service):
    service = make_service(speed=24.0)  # a 4 s clip takes about 2.5 s: forty 100 ms ticks
    record = service.generate(FOX)
    (done,) = service.wait([record.id], timeout=60)
    assert done.status == Status.COMPLETED
    reads = [e for e in service.log.entries() if e.message.startswith(f"store get {record.id}")]
    assert len(reads) <= 2


def test_a_record_changed_or_deleted_by_another_service_is_announced(make_service):
    a, _ = tampered(make_service, lambda *_: None)
    b, _ = tampered(make_service, lambda *_: None)
    seen: list[tuple[str, str]] = []
    a.subscribe(lambda event: seen.append((event.kind, event.record.id)) if event.record else None)
    a._run(a.watch_once())  # the first look only takes stock
    record = b.generate(FOX)
    a._run(a.watch_once())
    assert ("created", record.id) in seen
    drive(b)
    a._run(a.watch_once())
    assert ("updated", record.id) in seen
    b.delete(record.id)
    a._run(a.watch_once())
    assert ("deleted", record.id) in seen
    own = a.generate(dataclasses.replace(FOX, prompt="made here"))
    before = len(seen)
    a._run(a.watch_once())
    assert ("created", own.id) not in seen[before:]  # a service's own changes are not announced twice


# -- 2. a killed process never holds a job hostage --------------------------------------------------------
_KILLED_WAITER = """
import sys, pathlib
sys.path.insert(0, {tests!r})
from netfaults import Tamper, trickle_body
from soranb.config import Settings
from soranb.debuglog import DebugLog
from soranb.emulator import EmulatorConfig
from soranb.provider import VideoProvider
from soranb.request import GenerationRequest
from soranb.service import VideoService

marker = pathlib.Path({marker!r})
settings = Settings.from_env()

def rule(request, response, body):
    if "variant=video" in str(request.url):
        marker.write_text("downloading")
        return trickle_body(request, body, seconds=600)  # far longer than this process will live

config = EmulatorConfig.from_env(speed=settings.emulator_speed, state_dir=settings.data_dir / "emulator")
provider = VideoProvider.in_process(config, DebugLog(), wrap_transport=lambda inner: Tamper(inner, rule))
service = VideoService(settings, provider=provider, autostart=False)
record = service.generate(GenerationRequest("a red fox running through snow", "sora-2", "1280x720", 4))
print(record.id, flush=True)
while True:
    service.poll_once()
"""


def test_a_waiter_killed_mid_download_is_taken_over_by_the_next_soranb_wait(settings, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from soranb.leases import LEASE_TTL

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SUPABASE_", "SORANB_"))},
        "SORANB_DATA_DIR": str(settings.data_dir),
        "SORANB_EMULATOR_SPEED": "240",
    }
    marker = tmp_path / "downloading"
    script = _KILLED_WAITER.format(tests=str(Path(__file__).parent), marker=str(marker))
    first = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        record_id = first.stdout.readline().strip()
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    leftovers = [p for p in (settings.data_dir / "tmp").rglob("*") if p.is_file()]
    assert leftovers  # the killed process left its half download behind

    # the next process takes the lease at once, well within one lease period: a lease that merely
    # expired would hold the job for 20 to 30 s more (a heartbeat renews it every 10 s)
    within = LEASE_TTL.total_seconds() / 2
    finished = subprocess.run(
        [sys.executable, "-m", "soranb.cli", "wait", "--json", "--timeout", str(within)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    (record,) = json.loads(finished.stdout)
    assert record["id"] == record_id and record["status"] == "completed"
    with av.open(record["video_path"]) as container:
        assert float(container.duration / av.time_base) == pytest.approx(4.0, abs=0.2)
    assert [p for p in (settings.data_dir / "tmp").rglob("*") if p.is_file()] == []


# -- 11. progress moves between polls ---------------------------------------------------------------------
def test_progress_bars_move_between_polls_from_the_schedules_estimate(make_service):
    service, tamper = tampered(make_service, lambda *_: None, speed=6.0)  # a 4 s clip takes 10 s
    estimates: list[tuple[int, float]] = []
    record = service.generate(FOX)
    service.subscribe(
        lambda event: (
            estimates.append((event.record.progress, event.record.metadata["eta_s"]))
            if event.kind == "progress" and event.record and "eta_s" in event.record.metadata
            else None
        )
    )
    service.start()
    deadline = time.monotonic() + 30
    while len({p for p, _ in estimates}) < 3:
        assert time.monotonic() < deadline, estimates
        time.sleep(0.1)
    progresses = [p for p, _ in estimates]
    assert progresses == sorted(progresses) and all(0 <= p < 100 for p in progresses)
    assert estimates[-1][1] < estimates[0][1]  # the time left shrinks
    assert tamper.count("GET /v1/videos?") <= 2  # the bar moved without asking the provider each time
    assert service.get(record.id).progress <= progresses[-1]  # the store keeps what the provider said


def test_the_poller_and_a_direct_submit_in_one_service_never_create_twice(make_service):
    """A lease is re-entrant for its owner, so one service's poller and a direct call are kept apart."""

    async def slow_create(request: httpx2.Request, response: httpx2.Response, body: bytes):
        if request.method == "POST":
            await asyncio.sleep(0.5)
        return None

    service, tamper = tampered(make_service, slow_create)
    pending = GenerationRecord(prompt=FOX.prompt, model=FOX.model, size=FOX.size, seconds=FOX.seconds)
    service._run(service.store.insert(pending))
    poller = step_until_sent(service, tamper, "POST /v1/videos?")
    returned = service._run(service.runner.submit(pending, FOX, raise_errors=True))  # while the poller creates
    poller.join(30)
    assert returned.id == pending.id and len(emulator_jobs(service)) == 1
    assert tamper.count("POST /v1/videos?") == 1


def test_an_extension_left_pending_by_a_stopped_process_is_never_sent_as_a_plain_video(service):
    """The store holds only prompt, model, size and seconds: re-sent from those, an extension would be a
    different (billed) video. It ends failed, saying to start it again."""
    left = GenerationRecord(prompt="the fox runs on", model="sora-2", size="1280x720", seconds=8)
    source_id = "11111111-1111-4111-8111-111111111111"
    left = dataclasses.replace(left, lineage=f"extend:{source_id}", metadata={"submit_once": True})
    ended = beside_a_good_job(service, left)
    assert ended.status == Status.FAILED and "start it again" in ended.error_message
    assert [job.prompt for job in emulator_jobs(service)] == [FOX.prompt]


def test_an_extension_another_process_is_sending_is_left_to_it(service):
    """Its creator holds the lease while it sends: a poller elsewhere must not end it (nor send it)."""
    sending = GenerationRecord(prompt="the fox runs on", model="sora-2", size="1280x720", seconds=8)
    source_id = "11111111-1111-4111-8111-111111111111"
    sending = dataclasses.replace(sending, lineage=f"extend:{source_id}", metadata={"submit_once": True})
    service._run(service.store.insert(sending))
    assert service._run(service.store.claim(sending.id, new_owner_id(), LEASE_TTL))  # the other process
    service.poll_once()
    assert service.get(sending.id).status == Status.PENDING
    assert emulator_jobs(service) == []
