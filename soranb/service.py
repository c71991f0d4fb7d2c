"""VideoService: the one owner of provider and store I/O (interface; implementation landing next).

Contract the views and notebooks build on:

    from soranb.session import get_service, reset_service   # the ONE shared service per kernel
    service.subscribe(callback) -> unsubscribe               # callback(ServiceEvent) on the service thread
    service.describe() -> str                                # "provider: emulator (...) · store: local (...)"
    service.generate(request: GenerationRequest) -> GenerationRecord   # validates, stores pending, creates once
    service.remix(record_id, prompt) -> GenerationRecord
    service.list_records(query=RecordQuery()) -> list[GenerationRecord]
    service.count_records(query=RecordQuery()) -> int
    service.get(record_id) -> GenerationRecord
    service.delete(record_id) -> None
    service.media_url(key) -> str            # store URL (file:// URI for the local store)
    service.media_path(key) -> Path | None   # local file for the local store
    service.poll_once() -> PollReport        # one refresh of every open job, now
    service.check_status(record_id) -> dict  # raw provider metadata (JSON-ready)
    service.wait_all(timeout=None) -> list[GenerationRecord]; await service.wait_all_async(timeout=None)
    service.CHECKS; service.run_check(name, allow_spend=False) -> CheckResult; service.run_checks(...)
    service.log  (soranb.debuglog.DebugLog: entries(), subscribe(cb), clear())
    service.settings, service.store, service.close()

Every method is a plain synchronous call that runs on the service's own
daemon-thread event loop, so the poller advances even while a cell blocks.
Types: soranb.request.GenerationRequest/ImageInput, soranb.events.ServiceEvent,
soranb.checks.CheckResult, soranb.config.Settings.
"""
