"""One hand-off from the service thread to the views: in order, on one thread, no thread per event."""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
import threading

import pytest
from widget_helpers import insert_records, make_records

from soranb.errors import StoreError
from soranb.records import Status
from soranb.widgets import HistoryGrid, Toasts
from soranb.widgets.delivery import Delivery, worker_loop


class ThreadStarts:
    """Counts `threading.Thread.start` calls while installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = threading.Thread.start

        def start(thread: threading.Thread) -> None:
            self.count += 1
            real(thread)

        monkeypatch.setattr(threading.Thread, "start", start)


def test_events_from_many_threads_run_in_order_on_one_thread():
    delivery = Delivery()
    seen: list[tuple[int, str]] = []
    order = threading.Lock()
    handed: list[int] = []

    def hand_over(n: int) -> None:
        for _ in range(50):
            with order:  # the order they were handed over in is the order they must run in
                handed.append(len(handed))
                delivery.call(lambda i: seen.append((i, threading.current_thread().name)), handed[-1])

    threads = [threading.Thread(target=hand_over, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert delivery.flush()
    assert [i for i, _ in seen] == list(range(400))
    assert {name for _, name in seen} == {"soranb-views"}
    delivery.close()


def test_no_thread_is_started_per_event_or_per_toast(monkeypatch):
    worker_loop()  # the one shared worker, started once
    starts = ThreadStarts(monkeypatch)
    delivery = Delivery()
    toasts = Toasts(dismiss_after=0.001, max_shown=3)
    for i in range(100):
        delivery.call(lambda: None)
        toasts.info(f"notice {i}")
    assert delivery.flush()
    toasts._delivery.flush()
    assert starts.count == 0
    toasts.close()


def test_a_handler_that_raises_is_reported_and_later_events_still_arrive():
    errors: list[BaseException] = []
    seen: list[int] = []
    delivery = Delivery(on_error=errors.append)

    def handle(n: int) -> None:
        if n == 1:
            raise KeyError("size")
        seen.append(n)

    for n in range(4):
        delivery.call(handle, n)
    assert delivery.flush()
    assert seen == [0, 2, 3]
    assert [type(e) for e in errors] == [KeyError]


def test_closing_stops_delivery_of_what_is_queued_and_what_comes_later():
    gate = threading.Event()
    seen: list[str] = []
    delivery = Delivery()
    delivery.call(gate.wait, 10)  # the views' thread is busy with this one
    delivery.call(seen.append, "queued")
    timed = delivery.call_later(0.01, seen.append, "timed")
    delivery.close()
    gate.set()
    delivery.call(seen.append, "later")
    marker = threading.Event()
    Delivery().call_later(0.05, marker.set)  # the same worker: the timer above is due first
    assert marker.wait(10)
    assert seen == [] and not timed.cancelled


def test_a_cancelled_timer_never_runs():
    seen: list[str] = []
    delivery = Delivery()
    delivery.call_later(0.01, seen.append, "kept").cancel()
    delivery.call_later(0.02, seen.append, "ran")
    deadline = threading.Event()
    delivery.call_later(0.05, deadline.set)
    assert deadline.wait(10)
    assert seen == ["ran"]


def test_a_running_loop_of_the_caller_is_used_when_given():
    """A view built on the kernel's loop hands events to that loop: they run on its thread, not the worker."""

    async def main() -> list[str]:
        delivery = Delivery(loop=asyncio.get_running_loop())
        names: list[str] = []
        done = asyncio.Event()

        def hand_over() -> None:
            delivery.call(lambda: names.append(threading.current_thread().name))
            delivery.call(done.set)

        threading.Thread(target=hand_over).start()
        await asyncio.wait_for(done.wait(), 10)
        with pytest.raises(RuntimeError, match="wait for itself"):
            delivery.flush()
        return [*names, threading.current_thread().name]

    ran_on = asyncio.run(main())
    assert ran_on == [threading.current_thread().name] * 2


def test_history_events_run_off_the_service_thread_and_a_failure_becomes_a_toast(service, settings, monkeypatch):
    import soranb.widgets.media_urls as media_urls_module

    toasts = Toasts(dismiss_after=None)
    insert_records(settings.data_dir, make_records(1))
    grid = HistoryGrid(service, toasts=toasts)
    real = media_urls_module.media_src
    threads: set[str] = set()

    def media_src(svc, key):
        threads.add(threading.current_thread().name)
        if "broken" in key:
            raise StoreError("the store could not sign that URL")
        return real(svc, key)

    monkeypatch.setattr(media_urls_module, "media_src", media_src)
    broken, fine = make_records(2, prompt="made elsewhere")
    broken = broken.evolve(video_key="videos/broken.mp4")
    service._emit("created", broken)  # as the store watch announces records another process made
    service._emit("created", fine)
    assert grid.flush()
    assert toasts.messages == [("error", "the store could not sign that URL")]
    assert grid.card(fine.id) is not None  # the next event still arrived
    assert threads == {"soranb-views"}
    gate = threading.Event()
    grid._delivery.call(gate.wait, 10)  # the views' thread is busy: the next event waits in the queue
    (late,) = make_records(1, status=Status.FAILED, prompt="after close", error_message="no")
    service._emit("failed", late)  # would be an error toast on an open grid
    grid.close()
    gate.set()
    service._emit("failed", late)  # after close: not even handed over
    assert Delivery().flush()  # the same worker has had its turn past the closed grid's queue
    assert toasts.messages == [("error", "the store could not sign that URL")]


@pytest.mark.timeout(120)
def _kernel(tmp_path):
    """A real kernel on an offline service in a temp data folder, and a `run(code)` that returns its prints."""
    from jupyter_client.manager import start_new_kernel

    env = {
        **os.environ,
        "SORANB_DATA_DIR": str(tmp_path / "data"),
        "SORANB_EMULATOR_SPEED": "20",  # a 4 s clip takes about 0.2 s: long enough to be waited for
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    env.pop("OPENAI_API_KEY", None)
    return start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)


def test_in_a_kernel_views_get_events_on_the_kernels_own_thread(tmp_path, settings):
    manager, client = _kernel(tmp_path)
    out: list[str] = []

    def run(code: str) -> None:
        def hook(msg: dict) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append("ERROR " + msg["content"]["evalue"])

        client.execute_interactive(textwrap.dedent(code), timeout=60, output_hook=hook)

    try:
        run(
            """
            import asyncio, threading
            from soranb.widgets.delivery import Delivery
            delivery = Delivery()
            names = []
            mark = lambda: names.append(threading.current_thread().name)
            sender = threading.Thread(target=lambda: delivery.call(mark))
            sender.start(); sender.join()
            print(delivery.loop is asyncio.get_running_loop(), names)
            """
        )
        run("print(names)")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    # Handed over during the first cell, applied by the kernel's loop once that cell ended.
    assert out[0].split() == ["True", "[]"] and out[1].startswith("['MainThread']"), out


def test_a_cell_awaiting_its_jobs_leaves_the_views_live(tmp_path):
    """`await service.wait_async(ids)` frees the kernel's loop, so the cards have moved by the time it returns."""
    manager, client = _kernel(tmp_path)
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + msg["content"]["evalue"])

    code = """
        from soranb import GenerationRequest, get_service
        from soranb.widgets import HistoryGrid
        service = get_service()
        grid = HistoryGrid(service)
        record = service.generate(GenerationRequest("a red fox running through snow"))
        (done,) = await service.wait_async([record.id], timeout=60)
        print(done.status.value, grid.card(record.id).record.status.value)  # no flush: what the view shows now
        """
    try:
        client.execute_interactive(textwrap.dedent(code), timeout=90, output_hook=hook)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert out and out[-1].split() == ["completed", "completed"], out


def test_only_the_newest_waiting_item_under_a_key_runs_and_in_its_true_place():
    gate = threading.Event()
    seen: list[str] = []
    delivery = Delivery()
    delivery.call(gate.wait, 10)  # the views' thread is busy (a cell that blocks)
    for tick in range(5):
        delivery.call_latest("a", seen.append, f"a{tick}")
        delivery.call_latest("b", seen.append, f"b{tick}")
        if tick == 2:
            delivery.call(seen.append, "done")  # another kind of event is never dropped
    gate.set()
    assert delivery.flush()
    assert seen == ["done", "a4", "b4"]
    assert delivery._waiting == {}  # nothing of what ran is kept (one entry per job would pile up)
    delivery.call_latest("a", seen.append, "a5")  # after the queue ran: the key starts afresh
    assert delivery.flush() and seen[-1] == "a5"


def test_a_job_s_pile_of_progress_events_becomes_one_card_update(service, settings):
    (record,) = insert_records(settings.data_dir, make_records(1, status=Status.PROCESSING))
    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None))
    card = grid.card(record.id)
    updates: list[int] = []
    real = card.update
    card.update = lambda r: updates.append(r.progress) or real(r)  # type: ignore[method-assign]
    gate = threading.Event()
    grid._delivery.call(gate.wait, 10)
    for progress in range(1, 41):
        service._emit("progress", record.evolve(progress=progress))
    service._emit("failed", record.evolve(status=Status.FAILED, error_message="stopped"))
    gate.set()
    assert grid.flush()
    assert updates == [40, 0]  # the newest progress, then the failure (progress 0): not forty updates
    assert grid.card(record.id).record.status == Status.FAILED
    grid.close()


def test_the_diagnostics_log_shows_lines_from_any_thread_on_the_views_thread_in_order(service):
    from soranb.widgets import DiagnosticsPanel

    panel = DiagnosticsPanel(service, toasts=Toasts(dismiss_after=None))
    shown: list[tuple[str, str]] = []
    real = panel._append
    panel._append = lambda entry: shown.append((entry.message, threading.current_thread().name)) or real(entry)  # type: ignore[method-assign]
    order = threading.Lock()
    logged: list[str] = []

    def log(n: int) -> None:
        for i in range(25):
            with order:
                logged.append(f"line {n}-{i}")
                service.log.warning(logged[-1])

    threads = [threading.Thread(target=log, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert panel.flush()
    assert [message for message, _ in shown] == logged
    assert {name for _, name in shown} == {"soranb-views"}
    panel.close()
    service.log.warning("after close")
    assert Delivery().flush() and shown[-1][0] == logged[-1]


def test_searching_as_you_type_starts_no_thread(service, settings, monkeypatch):
    import time

    insert_records(settings.data_dir, make_records(3, prompt="fox") + make_records(2, prompt="owl"))
    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None), search_delay_s=0.05)
    starts = ThreadStarts(monkeypatch)
    for typed in ("o", "ow", "owl"):
        grid.search.value = typed
    deadline = time.monotonic() + 10
    while grid.total != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert grid.total == 2 and starts.count == 0  # the pause is timed on the views' loop, not by a Timer thread
    grid.close()
