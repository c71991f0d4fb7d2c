"""The whole service on the Supabase store: generate, store, play, check, delete, as a signed-in user."""

from __future__ import annotations

import asyncio
import time

import pytest
from supabase_double import SupabaseDouble, reset_database

from soranb.records import Status
from soranb.request import GenerationRequest
from soranb.service import VideoService
from soranb.store.base import RecordQuery
from soranb.store.supabase import SupabaseStore

pytestmark = pytest.mark.postgres


def test_a_service_on_supabase_keeps_history_per_user_with_signed_urls(settings, tmp_path, supabase_databases):
    conninfo = supabase_databases["per-user"]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    double.add_user("ada@example.test", "correct horse")
    http = double.http_client()
    store = SupabaseStore(
        double.url, double.anon_key, http_client=http, email="ada@example.test", password="correct horse"
    )
    service = VideoService(settings, store=store, autostart=False)
    try:
        record = service.generate(GenerationRequest("a fox on a private shelf", "sora-2", "1280x720", 4))
        deadline = time.monotonic() + 60
        while service.count_records(RecordQuery.open_jobs()):
            assert time.monotonic() < deadline
            service.poll_once()
            time.sleep(0.05)
        done = service.get(record.id)
        assert done.status == Status.COMPLETED
        url = service.media_url(done.video_key)
        assert url.startswith(double.url) and "/object/sign/" in url  # private bucket: a signed URL
        assert service.media_path(done.video_key) is None  # nothing is played from local files
        assert service.run_check("schema").status == "ok"
        assert service.run_check("store").status == "ok"
        service.delete(record.id)
        assert service.list_records() == []
    finally:
        service.close()
        asyncio.run(http.aclose())


# -- single-user mode cannot be turned against its owner ---------------------------------------------------


class _CountingServer:
    """An HTTP server on 127.0.0.1 that counts the requests it gets (a URL soranb must never fetch)."""

    def __init__(self) -> None:
        import http.server
        import threading

        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"\x89PNG" + b"0" * 1024)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _provider_jobs(service: VideoService) -> list:
    return service.provider.emulator.table.all()


def _poll_until_settled(service: VideoService, record_ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    while any(service.get(rid).is_open for rid in record_ids):
        assert time.monotonic() < deadline, "our own jobs did not finish"
        service.poll_once()
        time.sleep(0.05)


def _owners_service(settings, tmp_path, conninfo):
    """The owner's service on a fresh single-user project: its store signs what it inserts."""
    from soranb.provenance import installation_secret

    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    http = double.http_client()
    store = SupabaseStore(
        double.url, double.anon_key, http_client=http, installation_secret=installation_secret(settings.data_dir)
    )
    return double, http, VideoService(settings, store=store, autostart=False)


def test_rows_a_stranger_adds_with_the_anon_key_are_never_submitted_or_fetched(settings, tmp_path, supabase_databases):
    """Single-user project: the anon key is all a stranger needs to add rows. None of them is sent
    on the owner's provider key, and no URL in them is fetched; the owner's own jobs run as before."""
    from soranb.records import GenerationRecord

    conninfo = supabase_databases["single-user"]
    double, http, service = _owners_service(settings, tmp_path, conninfo)
    server = _CountingServer()
    try:
        own = service.generate(GenerationRequest("the owner's own fox", "sora-2", "1280x720", 4))
        _poll_until_settled(service, [own.id])
        assert service.get(own.id).status == Status.COMPLETED

        async def as_stranger() -> list[GenerationRecord]:
            stranger = SupabaseStore(double.url, double.anon_key, http_client=http)  # only the anon key
            await stranger.open()
            copied = (await stranger.get(own.id)).metadata  # readable: a copied signature is no use
            rows = [
                GenerationRecord(prompt="on the owner's bill", model="sora-2-pro", size="1792x1024", seconds=12),
                GenerationRecord(
                    prompt="fetch this", model="sora-2", size="1280x720", seconds=4, image_key=f"{server.url}/x.png"
                ),
                GenerationRecord(
                    prompt="a copied signature", model="sora-2", size="1280x720", seconds=4, metadata=copied
                ),
            ]
            try:
                return [await stranger.insert(r) for r in rows]
            finally:
                await stranger.close()

        planted = service._run(as_stranger())
        # the owner's own record, tampered with before it was sent: it no longer matches its signature
        mine = service._run(
            service.store.insert(GenerationRecord(prompt="mine, small", model="sora-2", size="1280x720", seconds=4))
        )
        double_sql = "update public.video_generations set model = 'sora-2-pro', size = '1792x1024', seconds = 12 "
        _sql(conninfo, double_sql + "where id = %s", (mine.id,))
        untouched = service.generate(GenerationRequest("mine, untouched", "sora-2", "1280x720", 4))
        _poll_until_settled(service, [untouched.id])

        assert service.get(untouched.id).status == Status.COMPLETED
        assert len(_provider_jobs(service)) == 2  # the owner's two, nothing else was sent or billed
        for record in [*planted, service.get(mine.id)]:
            assert service.get(record.id).status == Status.PENDING
        assert server.hits == []
    finally:
        service.close()
        server.close()
        asyncio.run(http.aclose())


def test_a_signed_row_whose_send_once_mark_a_stranger_strips_is_never_sent(settings, tmp_path, supabase_databases):
    """An extension is stored marked `submit_once`: the poller must never rebuild it from its fields (that
    would bill a plain 12 s video). A stranger with the anon key strips the mark from the owner's signed
    row: the row no longer matches its signature, so it stays pending and nothing is sent."""
    from soranb.records import GenerationRecord

    conninfo = supabase_databases["single-user"]
    _double, http, service = _owners_service(settings, tmp_path, conninfo)
    try:
        marked = GenerationRecord(
            prompt="it runs on", model="sora-2", size="1280x720", seconds=12, metadata={"submit_once": True}
        )
        mine = service._run(service.store.insert(marked))
        stripped = "update public.video_generations set metadata = metadata - 'submit_once' where id = %s"
        _sql(conninfo, stripped, (mine.id,))
        assert "submit_once" not in service.get(mine.id).metadata
        for _ in range(3):
            service.poll_once()
        assert _provider_jobs(service) == []  # nothing sent, nothing billed
        assert service.get(mine.id).status == Status.PENDING
    finally:
        service.close()
        asyncio.run(http.aclose())


def test_per_user_mode_submits_the_signed_in_users_rows_from_any_machine(settings, tmp_path, supabase_databases):
    from soranb.records import GenerationRecord

    conninfo = supabase_databases["per-user"]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    double.add_user("ada@example.test", "correct horse")
    http = double.http_client()
    ada = {"email": "ada@example.test", "password": "correct horse"}
    store = SupabaseStore(double.url, double.anon_key, http_client=http, installation_secret=b"this laptop", **ada)
    service = VideoService(settings, store=store, autostart=False)
    try:

        async def from_another_machine() -> GenerationRecord:
            other = SupabaseStore(double.url, double.anon_key, http_client=http, installation_secret=b"server", **ada)
            await other.open()
            try:
                record = GenerationRecord(prompt="queued on the server", model="sora-2", size="1280x720", seconds=4)
                return await other.insert(record)
            finally:
                await other.close()

        record = service._run(from_another_machine())
        _poll_until_settled(service, [record.id])
        assert service.get(record.id).status == Status.COMPLETED
        assert service.run_check("store").summary.count("warning") == 0
    finally:
        service.close()
        asyncio.run(http.aclose())


def test_doctor_warns_about_a_single_user_project(settings, tmp_path, supabase_databases):
    conninfo = supabase_databases["single-user"]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    http = double.http_client()
    service = VideoService(
        settings, store=SupabaseStore(double.url, double.anon_key, http_client=http), autostart=False
    )
    try:
        result = service.run_check("store")
        assert result.status == "ok"
        assert "warning:" in result.summary and "anon key" in result.summary and "harden_per_user" in result.summary
    finally:
        service.close()
        asyncio.run(http.aclose())


def _sql(conninfo: str, query: str, params: tuple = ()) -> None:
    import psycopg

    with psycopg.connect(conninfo) as conn:
        conn.execute(query, params)  # type: ignore[arg-type]


def test_the_installation_secret_is_made_once_private_and_shared_by_every_process(tmp_path):
    import os
    from concurrent.futures import ThreadPoolExecutor

    from soranb.provenance import installation_secret

    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: installation_secret(tmp_path / "data"), range(16)))
    assert len(made) == 1 and len(made.pop()) == 32
    assert os.stat(tmp_path / "data" / "installation.key").st_mode & 0o077 == 0
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["installation.key"]


def test_machines_on_one_project_never_both_pass_the_budget(tmp_path, supabase_databases, monkeypatch):
    """Four machines (each its own service, store client and data folder) on one project, released
    at once, with a budget that fits one $0.40 video: one is stored, the others are refused and leave
    nothing behind. Adding up the day is slowed to a network round trip, the window a race needs."""
    from decimal import Decimal

    import soranb.budget
    from soranb.config import Settings
    from soranb.errors import BudgetExceeded
    from soranb.provenance import installation_secret

    summed = soranb.budget.spent_on
    monkeypatch.setattr(soranb.budget, "spent_on", lambda records: (time.sleep(0.3), summed(records))[1])
    conninfo = supabase_databases["single-user"]
    for trial in range(2):
        reset_database(conninfo)
        double = SupabaseDouble(conninfo, tmp_path / f"objects{trial}")
        services, clients = [], []
        for n in range(4):
            data_dir = tmp_path / f"trial{trial}-machine{n}"
            env = {"SORANB_DATA_DIR": str(data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "0.50"}
            settings = Settings.from_env(env, dotenv=False)
            clients.append(http := double.http_client())
            secret = installation_secret(settings.data_dir)
            store = SupabaseStore(double.url, double.anon_key, http_client=http, installation_secret=secret)
            services.append(VideoService(settings, store=store, autostart=False))
        try:
            outcomes = _generate_at_once(services)
            refused = [o for o in outcomes if isinstance(o, BudgetExceeded)]
            assert len(refused) >= len(services) - 1, outcomes
            assert all("Nothing was stored or sent" in str(o) for o in refused)
            stored = services[0].list_records(RecordQuery(limit=100))
            assert len(stored) == len(services) - len(refused) <= 1
            assert services[0].budget().spent <= Decimal("0.50")
            jobs = sum(len(_provider_jobs(s)) for s in services)
            assert jobs == len(stored)  # only what was stored was sent
        finally:
            for service in services:
                service.close()
            for http in clients:
                asyncio.run(http.aclose())


def _generate_at_once(services: list[VideoService]) -> list[object]:
    """Each service generates one video, all released by one barrier; what each got (record or error)."""
    import threading

    from soranb.errors import BudgetExceeded

    barrier = threading.Barrier(len(services))
    outcomes: list[object] = [None] * len(services)

    def spend(n: int) -> None:
        barrier.wait(timeout=30)
        try:
            outcomes[n] = services[n].generate(GenerationRequest(f"fox {n}", "sora-2", "1280x720", 4))
        except BudgetExceeded as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=spend, args=(n,)) for n in range(len(services))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


# -- what a stranger can change in a row never turns into a new job ------------------------------------------


def _as_stranger(double, http, act):
    """What `act(store)` gives with a store that holds nothing but the project's anon key."""

    async def run():
        stranger = SupabaseStore(double.url, double.anon_key, http_client=http)
        await stranger.open()
        try:
            return await act(stranger)
        finally:
            await stranger.close()

    return asyncio.run(run())


def _as_stranger_update(double, http, record_id: str, changes: dict) -> None:
    """A PATCH of the owner's row through PostgREST with nothing but the anon key."""
    _as_stranger(double, http, lambda stranger: stranger.update(record_id, changes))


@pytest.mark.parametrize("tamper", ["status only", "status and job id", "status, job id and metadata"])
def test_a_stranger_reopening_a_finished_signed_row_never_makes_the_owner_pay_again(
    settings, tmp_path, supabase_databases, tamper
):
    """Single-user project: a stranger PATCHes the owner's completed, signed row back to pending,
    round after round. No new job is made; the row shows an error naming the job it already had."""
    conninfo = supabase_databases["single-user"]
    double, http, service = _owners_service(settings, tmp_path, conninfo)
    stranger_http = double.http_client()
    try:
        own = service.generate(GenerationRequest("the owner's one video", "sora-2", "1280x720", 4))
        _poll_until_settled(service, [own.id])
        done = service.get(own.id)
        assert done.status == Status.COMPLETED and len(_provider_jobs(service)) == 1
        changes: dict = {"status": "pending"}
        if tamper != "status only":
            changes["openai_job_id"] = None
        if tamper == "status, job id and metadata":
            changes["metadata"] = {k: v for k, v in done.metadata.items() if k != "create_attempted_at"}
        for _ in range(3):  # three rounds, as the attack was tried
            _as_stranger_update(double, stranger_http, own.id, changes)
            for _ in range(3):
                service.poll_once()
        assert len(_provider_jobs(service)) == 1  # nothing sent again, nothing billed again
        shown = service.get(own.id)
        assert shown.status == Status.FAILED
        assert done.openai_job_id in (shown.error_message or "") and "changed outside soranb" in shown.error_message
    finally:
        service.close()
        asyncio.run(http.aclose())
        asyncio.run(stranger_http.aclose())


def test_a_store_built_in_code_as_the_docs_show_never_sends_a_strangers_row(settings, tmp_path, supabase_databases):
    """`SupabaseStore(url, anon_key)` with no installation secret, as docs/supabase.md shows: a stranger's
    pending sora-2-pro 12 s row is never sent; the owner's own request still is."""
    from soranb.records import GenerationRecord

    conninfo = supabase_databases["single-user"]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    http, stranger_http = double.http_client(), double.http_client()
    service = VideoService(
        settings, store=SupabaseStore(double.url, double.anon_key, http_client=http), autostart=False
    )
    try:
        row = GenerationRecord(prompt="on the owner's bill", model="sora-2-pro", size="1792x1024", seconds=12)
        planted = _as_stranger(double, stranger_http, lambda stranger: stranger.insert(row))
        own = service.generate(GenerationRequest("mine", "sora-2", "1280x720", 4))
        _poll_until_settled(service, [own.id])
        for _ in range(3):
            service.poll_once()
        assert [job.prompt for job in _provider_jobs(service)] == ["mine"]
        assert service.get(planted.id).status == Status.PENDING  # left alone, never sent
        summary = service.run_check("store").summary
        assert "anon key" in summary
    finally:
        service.close()
        asyncio.run(http.aclose())
        asyncio.run(stranger_http.aclose())


def test_the_owners_queued_record_a_stranger_changes_is_shown_as_an_error_never_sent(
    settings, tmp_path, supabase_databases
):
    """The owner's second request waits for a free slot; meanwhile a stranger makes it a sora-2-pro 12 s
    video. It no longer matches what the owner stored: it ends failed, saying so, and is never sent."""
    conninfo = supabase_databases["single-user"]
    settings = settings.with_overrides(max_concurrent_jobs=1)
    double, http, service = _owners_service(settings, tmp_path, conninfo)
    stranger_http = double.http_client()
    try:
        first = service.generate(GenerationRequest("first", "sora-2", "1280x720", 4))
        queued = service.generate(GenerationRequest("second, small", "sora-2", "1280x720", 4))
        assert service.get(queued.id).status == Status.PENDING  # waits for the slot
        _as_stranger_update(
            double, stranger_http, queued.id, {"model": "sora-2-pro", "size": "1792x1024", "seconds": 12}
        )
        _poll_until_settled(service, [first.id, queued.id])
        assert [job.prompt for job in _provider_jobs(service)] == ["first"]
        shown = service.get(queued.id)
        assert shown.status == Status.FAILED and "changed outside soranb" in (shown.error_message or "")
    finally:
        service.close()
        asyncio.run(http.aclose())
        asyncio.run(stranger_http.aclose())
