"""VideoService over the in-process emulator and the local store, driven by poll_once()."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time

import av
import httpx2
import pytest
from engine_helpers import FOX, drive, emulator_jobs, png, wait_at_provider
from netfaults import Tamper
from PIL import Image

from soranb.errors import (
    AuthenticationFailed,
    ModelRetired,
    RequestInvalid,
)
from soranb.events import ServiceEvent
from soranb.provider import RETIREMENT_HINT
from soranb.records import GenerationRecord, Status
from soranb.request import ImageInput
from soranb.service import VideoService
from soranb.store.base import RecordQuery


# -- the happy path -----------------------------------------------------------------------
def test_generate_stores_then_creates_then_completes_with_a_playable_video(service):
    events: list[ServiceEvent] = []
    jobs_when_created: list[int] = []

    def on_event(event: ServiceEvent) -> None:
        events.append(event)
        if event.kind == "created":  # the record is stored before anything is sent
            jobs_when_created.append(len(emulator_jobs(service)))

    service.subscribe(on_event)
    record = service.generate(FOX)
    assert jobs_when_created == [0]
    assert record.status == Status.PROCESSING and record.openai_job_id.startswith("video_")

    drive(service)
    done = service.get(record.id)
    assert done.status == Status.COMPLETED and done.progress == 100
    video = service.media_path(done.video_key)
    assert video is not None and video.is_file()
    assert service.media_path(done.thumbnail_key).read_bytes()[8:12] == b"WEBP"
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert float(container.duration / av.time_base) == pytest.approx(4.0, abs=0.2)
    kinds = [e.kind for e in events]
    assert kinds[0] == "created" and kinds[-1] == "completed" and "updated" in kinds


def test_one_list_request_refreshes_many_open_jobs(service):
    for i in range(6):
        service.generate(dataclasses.replace(FOX, prompt=f"scene {i}"))
    report = service.poll_once()
    assert report.open_jobs == 6
    assert report.status_requests == 1


def test_jobs_missing_from_list_fall_back_to_retrieve(make_service):
    service = make_service()
    record = service.generate(FOX)
    service.provider.capabilities["list"] = False  # a gateway without GET /v1/videos
    report = service.poll_once()
    assert report.status_requests == 1  # one retrieve for the one open job
    drive(service)
    assert service.get(record.id).status == Status.COMPLETED


def test_a_provider_without_list_is_detected_and_polled_per_job(make_service):
    def no_list(request: httpx2.Request):  # a gateway that serves jobs one by one but has no list
        if request.method == "GET" and request.url.path == "/v1/videos":
            body = {"error": {"message": "Not found", "type": "invalid_request_error", "code": None}}
            return httpx2.Response(404, json=body, request=request)
        return None

    service = make_service(wrap_transport=lambda inner: Tamper(inner, lambda *_: None, no_list))
    record = service.generate(FOX)
    drive(service)
    assert service.get(record.id).status == Status.COMPLETED
    assert service.provider.capabilities["list"] is False
    assert any("cannot list jobs" in e.message for e in service.log.entries())


def test_concurrency_cap_queues_the_rest_locally(settings, make_service):
    service = make_service(using=dataclasses.replace(settings, max_concurrent_jobs=2), from_settings=True)
    records = [service.generate(dataclasses.replace(FOX, prompt=f"clip {i}")) for i in range(4)]
    assert [r.status for r in records] == [Status.PROCESSING] * 2 + [Status.PENDING] * 2
    peak = 0
    while service.count_records(RecordQuery.open_jobs()):
        service.poll_once()
        peak = max(peak, service.count_records(RecordQuery(statuses=frozenset({Status.PROCESSING}))))
        time.sleep(0.05)
    assert peak <= 2
    assert {service.get(r.id).status for r in records} == {Status.COMPLETED}
    assert len(emulator_jobs(service)) == 4


def test_poller_starts_once_and_finishes_jobs_in_the_background(service):
    service.start()
    task = service._poll_task
    service.start()
    assert service._poll_task is task and service.poller_running
    record = service.generate(FOX)
    (finished,) = service.wait([record.id], timeout=60)
    assert finished.status == Status.COMPLETED


def test_wait_all_returns_every_open_record_finished(service):
    ids = {service.generate(dataclasses.replace(FOX, prompt=f"p{i}")).id for i in range(3)}
    finished = service.wait_all(timeout=60)
    assert {r.id for r in finished} == ids
    assert {r.status for r in finished} == {Status.COMPLETED}


# -- surviving restarts and neighbours ----------------------------------------------------------
def test_a_new_service_resumes_open_jobs_from_the_store(make_service):
    first = make_service(from_settings=True)
    record = first.generate(FOX)
    first.close()

    second = make_service(from_settings=True)
    drive(second)
    assert second.get(record.id).status == Status.COMPLETED
    assert len(emulator_jobs(second)) == 1


def test_two_services_on_one_store_download_each_video_once(make_service):
    a = make_service(from_settings=True)
    b = make_service(from_settings=True)
    record = a.generate(FOX)
    # wait until the emulator says completed, then let both race to store it
    wait_at_provider(a, record.id)
    assert a.get(record.id).status == Status.PROCESSING
    barrier = threading.Barrier(2)

    def race(service: VideoService) -> None:
        barrier.wait()
        for _ in range(3):
            service.poll_once()

    threads = [threading.Thread(target=race, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    downloads = [e.message for s in (a, b) for e in s.log.entries() if "/content?variant=video" in e.message]
    assert a.get(record.id).status == Status.COMPLETED
    assert len(downloads) == 1


# -- faults -------------------------------------------------------------------------------------
def test_a_lost_create_answer_never_makes_a_second_job(make_service):
    service = make_service(faults={"lost-response": 1.0})
    record = service.generate(FOX)
    assert record.status == Status.PROCESSING
    jobs = emulator_jobs(service)
    assert len(jobs) == 1 and record.openai_job_id == jobs[0].id
    assert any("found job" in e.message for e in service.log.entries())


def test_an_unanswered_create_keeps_the_record_and_is_retried_after_checking(make_service):
    service = make_service(faults={"reset": 1.0})
    returned = service.generate(FOX)  # a transient failure is not the user's error: the record waits
    (kept,) = service.list_records()
    assert returned.id == kept.id
    assert kept.status == Status.PENDING and "create_attempted_at" in kept.metadata
    assert "no answer from the provider" in kept.metadata["waiting_reason"]
    assert emulator_jobs(service) == []
    service.provider.emulator.faults.set_faults({})
    drive(service)
    assert service.get(kept.id).status == Status.COMPLETED
    assert len(emulator_jobs(service)) == 1


def test_a_5xx_storm_keeps_the_record_and_the_poller_recovers(make_service):
    service = make_service(faults={"server-error": 1.0})
    service.generate(FOX)
    assert any("answered 5" in e.message for e in service.log.entries())
    (kept,) = service.list_records()
    assert kept.status == Status.PENDING
    report = service.poll_once()  # the poller logs and backs off; it does not give up at once
    assert report.submitted == [] and report.next_delay_s >= 1.0
    assert service.get(kept.id).status == Status.PENDING  # nothing lost while the storm lasts
    assert any("stays pending" in e.message for e in service.log.entries())
    service.provider.emulator.faults.set_faults({})
    drive(service)
    assert service.get(kept.id).status == Status.COMPLETED


def test_rate_limits_surface_with_retry_after_and_back_off(make_service):
    service = make_service()
    service.generate(FOX)
    service.provider.emulator.faults.set_faults({"rate-limit": 1.0})
    from soranb.errors import RateLimited

    with pytest.raises(RateLimited) as caught:
        service.poll_once()
    assert caught.value.retry_after == pytest.approx(1.0)
    assert service.schedule.after_failure(caught.value.retry_after) >= 1.0
    assert service.schedule.after_failure(30.0) == 30.0


def test_a_job_that_expires_before_download_is_marked_expired(make_service):
    service = make_service(expires_after_s=0.001)
    record = service.generate(FOX)
    drive(service)
    expired = service.get(record.id)
    assert expired.status == Status.EXPIRED
    assert "expired" in (expired.error_message or "")
    assert expired.video_key is None


def test_moderation_failure_keeps_the_providers_message(service):
    record = service.generate(dataclasses.replace(FOX, prompt="please moderation-test this"))
    drive(service)
    failed = service.get(record.id)
    assert failed.status == Status.FAILED
    assert "moderation_blocked" in failed.error_message


def test_wrong_key_fails_clearly_and_never_shows_the_key(make_service):
    service = make_service(api_key="sk-right-key-0000000000")
    service.provider._client.api_key = "sk-wrong-key-1234567890"
    service.provider._create_client.api_key = "sk-wrong-key-1234567890"
    with pytest.raises(AuthenticationFailed) as caught:
        service.generate(FOX)
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "sk-wrong-key-1234567890" not in str(caught.value)
    (kept,) = service.list_records()
    assert kept.status == Status.FAILED  # kept in the history, with the reason
    assert all("sk-wrong-key-1234567890" not in e.message for e in service.log.entries())


def test_unreachable_base_url_says_where_and_what_to_check(settings, unused_tcp_port, make_service):
    paid = dataclasses.replace(
        settings.with_overrides(openai_api_key="sk-test-unreachable-000000"),
        openai_base_url=f"http://127.0.0.1:{unused_tcp_port}/v1",
        request_timeout_s=5,
    )
    service = make_service(using=paid, from_settings=True)
    record = service.generate(FOX)  # kept, and it says why it waits
    message = record.metadata["waiting_reason"]
    assert f"127.0.0.1:{unused_tcp_port}" in message and "check the address" in message
    assert "sk-test-unreachable" not in message
    assert service.list_records()[0].status == Status.PENDING


def test_a_retired_model_is_named_plainly(make_service):
    service = make_service(retired_models=frozenset({"sora-2"}))
    with pytest.raises(ModelRetired) as caught:
        service.generate(FOX)
    assert RETIREMENT_HINT in str(caught.value)
    assert "OPENAI_BASE_URL" in str(caught.value)
    assert service.list_records()[0].status == Status.FAILED


def test_a_full_disk_keeps_the_job_open_until_there_is_room(service, small_disk, monkeypatch):
    record = service.generate(FOX)
    wait_at_provider(service, record.id)
    filler = small_disk / "filler"  # leave 32 KB: the video does not fit
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 32 * 1024))
    original = service.runner.tmp_path
    monkeypatch.setattr(service.runner, "tmp_path", lambda suffix: small_disk / f"video{suffix}")
    service.poll_once()  # the full disk is this record's trouble: it stays open, and the log says what to do
    assert any("No space left" in e.message and "SORANB_DATA_DIR" in e.message for e in service.log.entries())
    assert service.get(record.id).status == Status.PROCESSING
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # nothing half-written left behind
    monkeypatch.setattr(service.runner, "tmp_path", original)
    drive(service)
    assert service.get(record.id).status == Status.COMPLETED


# -- input --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (dataclasses.replace(FOX, prompt=""), "prompt"),
        (dataclasses.replace(FOX, prompt="x" * 32_001), "prompt"),
        (dataclasses.replace(FOX, model="sora-3"), "model"),
        (dataclasses.replace(FOX, size="1792x1024"), "size"),
        (dataclasses.replace(FOX, seconds=5), "seconds"),
        (dataclasses.replace(FOX, image=ImageInput("notes.png", b"not an image")), "image"),
        (dataclasses.replace(FOX, image=ImageInput("small.png", png(64, 64))), "image"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_stored_or_sent(service, request_, field):
    with pytest.raises(RequestInvalid) as caught:
        service.generate(request_)
    assert caught.value.field == field
    assert service.list_records() == []
    assert emulator_jobs(service) == []


def test_a_starting_image_is_fitted_stored_and_sent(service):
    request = dataclasses.replace(FOX, image=ImageInput("../../etc/passwd.png", png(640, 640)), fit="pad")
    record = service.generate(request)
    assert record.image_filename == "../../etc/passwd.png"  # kept for display only
    assert record.image_key == f"images/{record.id}.png"
    with Image.open(service.media_path(record.image_key)) as stored:
        assert stored.size == (1280, 720)
    (job,) = emulator_jobs(service)
    assert service.provider.emulator.table.reference_path(job) is not None
    assert record.metadata["fit"] == "pad"  # the card and the report say how the image was made to fit
    from soranb.report import record_meta_html

    assert "(pad)" in record_meta_html(record)


# -- delete and remix ------------------------------------------------------------------------------
def test_delete_removes_record_files_and_provider_job(service):
    record = service.generate(FOX)
    drive(service)
    done = service.get(record.id)
    video = service.media_path(done.video_key)
    deleted: list[GenerationRecord] = []
    service.subscribe(lambda e: deleted.append(e.record) if e.kind == "deleted" else None)
    service.delete(record.id)
    assert not video.exists()
    assert service.list_records() == []
    assert emulator_jobs(service) == []
    assert [r.id for r in deleted] == [record.id]


def test_remix_makes_a_new_record_from_a_completed_one(service):
    source = service.generate(FOX)
    with pytest.raises(RequestInvalid):
        service.remix(source.id, "now at night")  # not completed yet
    drive(service)
    remix = service.remix(source.id, "the same fox at night")
    drive(service)
    done = service.get(remix.id)
    assert done.remixed_from == source.id and done.status == Status.COMPLETED
    job = service.check_status(remix.id)
    assert job["remixed_from_video_id"] == service.get(source.id).openai_job_id


def test_diagnostics_checks_pass_offline(service):
    results = service.run_checks()
    assert [r.name for r in results] == list(service.CHECKS)
    assert all(r.status == "ok" for r in results), results
    assert service.count_records(RecordQuery(statuses=frozenset({Status.COMPLETED}))) == 1


def test_generation_check_asks_before_spending_on_a_paid_provider(make_service):
    service = make_service()
    service.provider.is_paid = True
    result = service.run_check("generation")
    assert result.status == "skipped" and "$0.40" in result.summary and "allow_spend=True" in result.summary
    assert service.list_records() == []


def test_the_debug_log_shows_every_provider_and_store_call_with_status_and_duration(service):
    record = service.generate(FOX)
    drive(service)
    messages = [e.message for e in service.log.entries()]
    assert any(m.startswith("provider POST /v1/videos -> 200 (") and m.endswith(" ms)") for m in messages)
    assert any(m.startswith("provider GET /v1/videos?limit=100&order=desc -> 200") for m in messages)
    assert any(m.startswith(f"store insert {record.id} (") for m in messages)
    assert any(m.startswith(f"store put videos/{record.id}.mp4 (") for m in messages)
    levels = {e.level for e in service.log.entries() if e.message.startswith("store query")}
    assert levels == {"DEBUG"}


def test_whether_a_job_is_paid_is_one_answer_and_needs_no_provider(settings, make_service):
    """The form's cost note and the diagnostics' consent ask the service; browsing never builds the provider."""
    free = make_service(using=settings, from_settings=True)
    paid = make_service(using=settings.with_overrides(openai_api_key="sk-test-paid-0000000000"), from_settings=True)
    assert (free.provider_is_paid, paid.provider_is_paid) == (False, True)
    assert free._provider is None and paid._provider is None  # answered from the settings
    assert free.provider.is_paid is False and free.provider_is_paid is False  # and the built provider agrees
