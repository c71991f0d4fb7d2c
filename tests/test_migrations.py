"""The Supabase migrations on a real PostgreSQL: schema, idempotency, and row-level security.

RLS is checked the way PostgREST and Supabase Storage apply it: inside a transaction, as the
JWT's role, with `request.jwt.claims` set, so `auth.uid()` is the signed-in user.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from postgres import (
    HARDENING,
    PostgresServer,
    apply_sql,
    apply_sql_statementwise,
    migration,
    migration_files,
    single_user_migrations,
)

pytestmark = pytest.mark.postgres


@contextmanager
def _db(pg_server: PostgresServer, migrations: Sequence[Path]) -> Iterator[str]:
    name = pg_server.create_database(migrations)
    try:
        yield pg_server.conninfo(name)
    finally:
        pg_server.drop_database(name)


@pytest.fixture
def single_user_db(pg_server: PostgresServer) -> Iterator[str]:
    with _db(pg_server, single_user_migrations()) as conninfo:
        yield conninfo


@pytest.fixture
def hardened_db(pg_server: PostgresServer) -> Iterator[str]:
    with _db(pg_server, migration_files()) as conninfo:
        yield conninfo


def _rows(conninfo: str, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


class As:
    """One request's transaction as a Supabase API role (rolled back at the end)."""

    def __init__(self, conn: psycopg.Connection, role: str, sub: str | None, **extra: object) -> None:
        self.conn = conn
        claims = {"role": role} | ({"sub": sub} if sub else {}) | extra
        conn.execute("select set_config('role', %s, true)", (role,))
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        cur = self.conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        """Rows affected by an update/delete (RLS filters silently, so 0 means refused)."""
        return self.conn.execute(sql, params).rowcount  # type: ignore[arg-type]


@contextmanager
def as_role(conninfo: str, role: str, sub: str | None = None, **extra: object) -> Iterator[As]:
    with psycopg.connect(conninfo) as conn, conn.transaction(force_rollback=True):
        yield As(conn, role, sub, **extra)


def _new_user(conninfo: str) -> str:
    uid = str(uuid.uuid4())
    with psycopg.connect(conninfo) as conn:
        conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, f"{uid}@example.test"))
    return uid


def _insert_as(conninfo: str, role: str, sub: str | None, prompt: str) -> str:
    with psycopg.connect(conninfo) as conn:
        As(conn, role, sub)
        row = conn.execute(
            "insert into public.video_generations (prompt, model, size, seconds) "
            "values (%s, 'sora-2', '1280x720', 4) returning id::text",
            (prompt,),
        ).fetchone()
        assert row is not None
        return str(row[0])


def _put_object(conninfo: str, bucket: str, name: str) -> None:
    with psycopg.connect(conninfo) as conn:
        conn.execute("insert into storage.objects (bucket_id, name) values (%s, %s)", (bucket, name))


# -- schema -------------------------------------------------------------------------------------

EXPECTED_COLUMNS = {
    "id": "uuid",
    "prompt": "text",
    "model": "text",
    "size": "text",
    "seconds": "integer",
    "status": "text",
    "progress": "integer",
    "openai_job_id": "text",
    "video_url": "text",
    "thumbnail_url": "text",
    "image_url": "text",
    "image_filename": "text",
    "error_message": "text",
    "remixed_from": "text",
    "metadata": "jsonb",
    "lease_owner": "text",
    "lease_expires_at": "timestamp with time zone",
    "created_at": "timestamp with time zone",
    "updated_at": "timestamp with time zone",
    "tags": "ARRAY",
    "favourite": "boolean",
    "note": "text",
    "lineage": "text",
}


def _columns(conninfo: str) -> dict[str, str]:
    rows = _rows(
        conninfo,
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'public' and table_name = 'video_generations'",
    )
    return {name: dtype for name, dtype in rows}


def test_single_user_schema_has_every_soranb_column(single_user_db: str) -> None:
    columns = _columns(single_user_db)
    assert columns == EXPECTED_COLUMNS  # no user_id before the hardening


def test_hardened_schema_adds_user_id(hardened_db: str) -> None:
    columns = _columns(hardened_db)
    assert columns == EXPECTED_COLUMNS | {"user_id": "uuid"}
    default = _rows(
        hardened_db,
        "select column_default from information_schema.columns "
        "where table_name = 'video_generations' and column_name = 'user_id'",
    )
    assert default == [("auth.uid()",)]


def test_status_check_allows_exactly_the_six_statuses(single_user_db: str) -> None:
    with psycopg.connect(single_user_db) as conn:
        for status in ("pending", "processing", "completed", "failed", "expired", "cancelled"):
            conn.execute("insert into public.video_generations (prompt, status) values ('p', %s)", (status,))
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("insert into public.video_generations (prompt, status) values ('p', 'queued')")
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute("insert into public.video_generations (prompt, progress) values ('p', 101)")


def test_indexes_on_status_created_at_and_unique_job_id(hardened_db: str) -> None:
    indexes = dict(
        _rows(hardened_db, "select indexname, indexdef from pg_indexes where tablename = 'video_generations'")
    )
    assert "(status)" in indexes["video_generations_status_idx"]
    assert "(created_at DESC)" in indexes["video_generations_created_at_idx"]
    assert "UNIQUE" in indexes["video_generations_openai_job_id_key"]
    with psycopg.connect(hardened_db) as conn:
        conn.execute("insert into public.video_generations (prompt, openai_job_id) values ('a', 'video_1')")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("insert into public.video_generations (prompt, openai_job_id) values ('b', 'video_1')")


def test_trigger_bumps_updated_at(single_user_db: str) -> None:
    with psycopg.connect(single_user_db) as conn:
        row = conn.execute(
            "insert into public.video_generations (prompt, created_at, updated_at) "
            "values ('p', '2000-01-01Z', '2000-01-01Z') returning id"
        ).fetchone()
        assert row is not None
        conn.execute(
            "update public.video_generations set progress = 50, updated_at = '2001-01-01Z' where id = %s",
            (row[0],),
        )
        updated = conn.execute(
            "select created_at, updated_at > '2020-01-01Z' from public.video_generations where id = %s",
            (row[0],),
        ).fetchone()
    assert updated is not None
    assert updated[0].year == 2000  # created_at untouched
    assert updated[1] is True  # the server's clock wins, not the value the client sent


def test_lease_changes_keep_updated_at(single_user_db: str) -> None:
    with psycopg.connect(single_user_db) as conn:
        row = conn.execute(
            "insert into public.video_generations (prompt, updated_at) values ('p', '2000-01-01Z') returning id"
        ).fetchone()
        assert row is not None
        conn.execute(
            "update public.video_generations set lease_owner = 'svc', lease_expires_at = now() where id = %s",
            (row[0],),
        )
        kept = conn.execute("select updated_at from public.video_generations where id = %s", (row[0],)).fetchone()
    assert kept is not None and kept[0].year == 2000


def test_buckets_public_for_single_user_private_when_hardened(single_user_db: str, hardened_db: str) -> None:
    query = "select id, public from storage.buckets order by id"
    assert _rows(single_user_db, query) == [("image_files", True), ("video_files", True)]
    assert _rows(hardened_db, query) == [("image_files", False), ("video_files", False)]


def test_grants_to_api_roles(single_user_db: str, hardened_db: str) -> None:
    def privileges(conninfo: str, role: str) -> set[str]:
        return {
            priv
            for priv in ("SELECT", "INSERT", "UPDATE", "DELETE")
            if _rows(conninfo, "select has_table_privilege(%s, 'public.video_generations', %s)", (role, priv))[0][0]
        }

    every = {"SELECT", "INSERT", "UPDATE", "DELETE"}
    assert privileges(single_user_db, "anon") == every
    assert privileges(single_user_db, "authenticated") == every
    assert privileges(single_user_db, "service_role") == every
    assert privileges(hardened_db, "anon") == set()
    assert privileges(hardened_db, "authenticated") == every
    assert privileges(hardened_db, "service_role") == every


def test_bootstrap_alone_grants_nothing(fresh_db: str) -> None:
    """The grants come from the migrations, not from default privileges of the bootstrap."""
    with psycopg.connect(fresh_db) as conn:
        conn.execute("create table public.unrelated (x int)")
        assert conn.execute("select has_table_privilege('anon', 'public.unrelated', 'SELECT')").fetchone() == (False,)


# -- idempotency ----------------------------------------------------------------------------------


_POLICIES = (
    "select schemaname, tablename, policyname, permissive, cmd, roles::text, qual, with_check from pg_policies "
    "order by 1, 2, 3"
)


def _policies(conninfo: str) -> list[tuple]:
    return _rows(conninfo, _POLICIES)


def _snapshot(conn: psycopg.Connection) -> tuple:
    """Everything the migrations decide: columns, policies, grants, indexes, buckets, triggers."""

    def rows(sql: str) -> list[tuple]:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    return (
        rows(
            "select column_name, data_type, column_default from information_schema.columns "
            "where table_schema = 'public' and table_name = 'video_generations' order by 1"
        ),
        rows(_POLICIES),
        rows(
            "select r, p, has_table_privilege(r, 'public.video_generations', p) "
            "from unnest(array['anon', 'authenticated', 'service_role']) r, "
            "unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p order by 1, 2"
        ),
        rows("select indexname, indexdef from pg_indexes where tablename = 'video_generations' order by 1"),
        rows("select id, public from storage.buckets order by 1"),
        rows(
            "select tgname, tgfoid::regproc::text from pg_trigger "
            "where tgrelid = 'public.video_generations'::regclass and not tgisinternal"
        ),
        rows(
            "select relname, relrowsecurity from pg_class "
            "where oid in ('public.video_generations'::regclass, 'storage.objects'::regclass, "
            "'storage.buckets'::regclass) order by 1"
        ),
    )


def _schema_snapshot(conninfo: str) -> tuple:
    with psycopg.connect(conninfo) as conn:
        return _snapshot(conn)


def test_applying_everything_twice_changes_nothing(pg_server: PostgresServer, hardened_db: str) -> None:
    before = _schema_snapshot(hardened_db)
    for path in migration_files():
        apply_sql(hardened_db, path)
    assert _schema_snapshot(hardened_db) == before


def test_single_user_migrations_twice(single_user_db: str) -> None:
    before = _schema_snapshot(single_user_db)
    for path in single_user_migrations():
        apply_sql(single_user_db, path)
    assert _schema_snapshot(single_user_db) == before


def test_hardening_on_top_of_the_first_four(pg_server: PostgresServer, hardened_db: str) -> None:
    first_four = migration_files()[:4]
    assert [p.name for p in first_four if "soranb" in p.name or HARDENING in p.name] == []
    with _db(pg_server, first_four) as conninfo:
        apply_sql(conninfo, migration(HARDENING))
        # ... and a project that later catches up with the soranb columns
        apply_sql(conninfo, migration("soranb_job_columns"))
        for path in LATER:
            apply_sql(conninfo, path)
        assert _schema_snapshot(conninfo) == _schema_snapshot(hardened_db)


def test_hardening_keeps_existing_rows_and_hides_ownerless_ones(pg_server: PostgresServer) -> None:
    with _db(pg_server, single_user_migrations()) as conninfo:
        old_id = _insert_as(conninfo, "anon", None, "made before the hardening")
        apply_sql(conninfo, migration(HARDENING))
        user = _new_user(conninfo)
        assert _rows(conninfo, "select id::text, user_id from public.video_generations") == [(old_id, None)]
        with as_role(conninfo, "authenticated", user) as a:
            assert a.rows("select id from public.video_generations") == []


# -- row-level security -----------------------------------------------------------------------------


def test_before_hardening_permissive_policies_open_every_row(single_user_db: str) -> None:
    """The baseline the hardening has to close: everyone sees and changes everyone's rows."""
    user_a, user_b = _new_user(single_user_db), _new_user(single_user_db)
    row_b = _insert_as(single_user_db, "authenticated", user_b, "b's video")
    _put_object(single_user_db, "video_files", f"{user_b}/videos/{row_b}.mp4")
    with as_role(single_user_db, "authenticated", user_a) as a:
        assert a.rows("select id::text from public.video_generations") == [(row_b,)]
        assert a.count("update public.video_generations set progress = 9 where id = %s", (row_b,)) == 1
        assert len(a.rows("select name from storage.objects")) == 1
        assert a.count("delete from public.video_generations where id = %s", (row_b,)) == 1
    with as_role(single_user_db, "anon") as anon:
        assert anon.rows("select id::text from public.video_generations") == [(row_b,)]
        assert len(anon.rows("select name from storage.objects")) == 1


@pytest.fixture
def two_users(hardened_db: str) -> tuple[str, str, str, str, str]:
    """(conninfo, user A, user B, A's row, B's row) with one video object each."""
    user_a, user_b = _new_user(hardened_db), _new_user(hardened_db)
    row_a = _insert_as(hardened_db, "authenticated", user_a, "a's video")
    row_b = _insert_as(hardened_db, "authenticated", user_b, "b's video")
    _put_object(hardened_db, "video_files", f"{user_a}/videos/{row_a}.mp4")
    _put_object(hardened_db, "video_files", f"{user_b}/videos/{row_b}.mp4")
    return hardened_db, user_a, user_b, row_a, row_b


def test_insert_takes_user_id_from_the_jwt(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, user_b, row_a, row_b = two_users
    owners = dict(_rows(conninfo, "select id::text, user_id::text from public.video_generations"))
    assert owners == {row_a: user_a, row_b: user_b}


def test_user_reads_only_own_rows(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, _user_b, row_a, row_b = two_users
    with as_role(conninfo, "authenticated", user_a) as a:
        assert a.rows("select id::text from public.video_generations") == [(row_a,)]
        assert a.rows("select id from public.video_generations where id = %s", (row_b,)) == []


def test_user_cannot_update_or_delete_another_users_row(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, _user_b, _row_a, row_b = two_users
    with as_role(conninfo, "authenticated", user_a) as a:
        assert a.count("update public.video_generations set prompt = 'mine now' where id = %s", (row_b,)) == 0
        assert a.count("delete from public.video_generations where id = %s", (row_b,)) == 0
    assert _rows(conninfo, "select prompt from public.video_generations where id = %s", (row_b,)) == [("b's video",)]


def test_user_updates_and_deletes_own_row(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, _user_b, row_a, _row_b = two_users
    with as_role(conninfo, "authenticated", user_a) as a:
        assert a.count("update public.video_generations set progress = 40 where id = %s", (row_a,)) == 1
        assert a.count("delete from public.video_generations where id = %s", (row_a,)) == 1


def test_user_cannot_insert_or_move_rows_to_another_user(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, user_b, row_a, _row_b = two_users
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "authenticated", user_a) as a:
        a.rows("insert into public.video_generations (prompt, user_id) values ('forged', %s)", (user_b,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "authenticated", user_a) as a:
        a.rows("update public.video_generations set user_id = %s where id = %s", (user_b, row_a))


def test_anon_gets_nothing(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo = two_users[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "anon") as anon:
        anon.rows("select id from public.video_generations")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "anon") as anon:
        anon.rows("insert into public.video_generations (prompt) values ('x')")
    with as_role(conninfo, "anon") as anon:
        assert anon.rows("select name from storage.objects") == []


def test_no_permissive_policy_survives_the_hardening(hardened_db: str) -> None:
    policies = _policies(hardened_db)
    for _schema, table, name, permissive, _cmd, roles, qual, check in policies:
        assert roles in ("{authenticated}", "{public}"), name
        if permissive == "RESTRICTIVE":
            continue
        assert roles == "{authenticated}", name  # nothing for anon at all
        if table == "buckets":
            assert qual == "(id = ANY (ARRAY['video_files'::text, 'image_files'::text]))", name
            continue
        assert "auth.uid()" in (qual or check), name
    guards = {(table, name) for _s, table, name, permissive, *_ in policies if permissive == "RESTRICTIVE"}
    assert {table for table, _name in guards} == {"video_generations", "objects", "buckets"}


def test_storage_objects_are_per_user_folders(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, user_b, row_a, _row_b = two_users
    with as_role(conninfo, "authenticated", user_a) as a:
        assert a.rows("select name from storage.objects") == [(f"{user_a}/videos/{row_a}.mp4",)]
        assert a.count("delete from storage.objects where name like %s", (f"{user_b}/%",)) == 0
        assert a.count("update storage.objects set metadata = '{}' where name like %s", (f"{user_b}/%",)) == 0
        a.rows(
            "insert into storage.objects (bucket_id, name) values ('image_files', %s)",
            (f"{user_a}/images/{row_a}.png",),
        )
        assert a.count("delete from storage.objects where name like %s", (f"{user_a}/%",)) == 2
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "authenticated", user_a) as a:
        a.rows(
            "insert into storage.objects (bucket_id, name) values ('video_files', %s)",
            (f"{user_b}/videos/planted.mp4",),
        )
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "authenticated", user_a) as a:
        a.rows("insert into storage.objects (bucket_id, name) values ('video_files', 'videos/top-level.mp4')")
    assert len(_rows(conninfo, "select name from storage.objects")) == 2


# -- real states: every safe order, re-applied files, existing rows, duplicates, dashboard policies ----

# The files up to the hardening, whose every order is checked; files added later (LATER) only add
# columns on top, are checked at every position of the CLI's order, and are applied after each order.
_HARDENING_FILE = migration(HARDENING).name
EARLY = [p for p in single_user_migrations() if "create_video_generations" not in p.name and p.name < _HARDENING_FILE]
LATER = [p for p in migration_files() if p.name > _HARDENING_FILE]


def _apply_in(conn: psycopg.Connection, paths: Sequence[Path]) -> None:
    for path in paths:
        conn.execute(path.read_text(encoding="utf-8"))  # type: ignore[arg-type]


def test_every_order_the_docs_call_safe_ends_in_the_same_state(pg_server: PostgresServer, hardened_db: str) -> None:
    """The table file first, then the other five in any order (120 orders), then the first five again:
    always the state of the CLI's order. Each order runs in one transaction that is rolled back."""
    table = migration("create_video_generations")
    hardened = _schema_snapshot(hardened_db)
    rest = [*EARLY, migration(HARDENING)]
    with _db(pg_server, ()) as conninfo, psycopg.connect(conninfo) as conn:
        orders = 0
        for order in itertools.permutations(rest):
            with conn.transaction(force_rollback=True):
                _apply_in(conn, [table, *order, *LATER])
                assert _snapshot(conn) == hardened, [p.name for p in order]
                _apply_in(conn, [table, *EARLY])  # an old file applied again never re-opens it
                assert _snapshot(conn) == hardened, [p.name for p in order]
            orders += 1
    assert orders == 120


def test_single_user_files_in_any_order_end_single_user(pg_server: PostgresServer, single_user_db: str) -> None:
    table = migration("create_video_generations")
    single = _schema_snapshot(single_user_db)
    with _db(pg_server, ()) as conninfo, psycopg.connect(conninfo) as conn:
        for order in itertools.permutations(EARLY):
            with conn.transaction(force_rollback=True):
                _apply_in(conn, [table, *order, *order, *LATER])
                assert _snapshot(conn) == single, [p.name for p in order]


def test_later_files_apply_anywhere_after_the_table_and_twice(pg_server: PostgresServer, hardened_db: str) -> None:
    """A file added after the hardening, applied first (right after the table), before or after the
    hardening, and again: always the state of the CLI's order."""
    table = migration("create_video_generations")
    hardened = _schema_snapshot(hardened_db)
    with _db(pg_server, ()) as conninfo, psycopg.connect(conninfo) as conn:
        for later in LATER:
            rest = [p for p in LATER if p != later]
            for order in ([later, *EARLY, migration(HARDENING)], [*EARLY, later, migration(HARDENING)]):
                with conn.transaction(force_rollback=True):
                    _apply_in(conn, [table, *order, *rest, later])
                    assert _snapshot(conn) == hardened, [p.name for p in order]


def test_hardening_before_the_table_refuses_and_says_what_to_apply(fresh_db: str) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match=r"20250601120000_create_video_generations\.sql first"):
        apply_sql(fresh_db, migration(HARDENING))


def _users_data(conninfo: str) -> dict[str, str]:
    """A single-user project as people have it: rows from the anon key, the same provider job
    recorded twice (a retried insert), media in both buckets, and policies added in the dashboard."""
    ids = {}
    with psycopg.connect(conninfo) as conn:

        def row(name: str, status: str, job: str | None, video: str | None, created: str) -> None:
            found = conn.execute(
                "insert into public.video_generations (prompt, status, openai_job_id, video_url, created_at) "
                "values (%s, %s, %s, %s, %s) returning id::text",
                (name, status, job, video, created),
            ).fetchone()
            assert found is not None
            ids[name] = found[0]

        row("pending copy", "pending", "video_dup", None, "2025-06-01Z")  # older, but not the finished one
        row("finished", "completed", "video_dup", "videos/x.mp4", "2025-06-02Z")
        row("processing copy", "processing", "video_dup", None, "2025-06-03Z")
        row("twin a", "completed", "video_twin", "videos/a.mp4", "2025-06-04Z")
        row("twin b", "completed", "video_twin", "videos/b.mp4", "2025-06-05Z")
        row("alone", "failed", "video_alone", None, "2025-06-06Z")
        row("not sent", "pending", None, None, "2025-06-07Z")
        conn.execute("insert into storage.objects (bucket_id, name) values ('video_files', 'videos/x.mp4')")
        conn.execute("insert into storage.objects (bucket_id, name) values ('image_files', 'images/y.png')")
        # What people click together in the dashboard: names soranb never used, `true` for everyone.
        conn.execute(
            'create policy "Enable read access for all users" on public.video_generations for select using (true)'
        )
        conn.execute(
            'create policy "Anyone edits" on public.video_generations for update to anon using (true) with check (true)'
        )
        conn.execute(
            "create policy \"Public videos\" on storage.objects for select to anon using (bucket_id = 'video_files')"
        )
        conn.execute('create policy "Give anon users access to all files" on storage.objects for all using (true)')
        conn.execute('create policy "List buckets" on storage.buckets for select to anon using (true)')
    return ids


@pytest.mark.parametrize("how", ["one transaction", "psql -f"])
def test_hardening_a_used_single_user_project(pg_server: PostgresServer, how: str) -> None:
    with _db(pg_server, single_user_migrations()) as conninfo:
        ids = _users_data(conninfo)
        if how == "psql -f":
            done = apply_sql_statementwise(pg_server, conninfo, migration(HARDENING))
            assert "ERROR" not in done.stderr, done.stderr
        else:
            apply_sql(conninfo, migration(HARDENING))

        # Nothing stored is lost; one row per provider job; the finished row keeps the job.
        rows = {
            prompt: (status, job, meta, error)
            for prompt, status, job, meta, error in _rows(
                conninfo,
                "select prompt, status, openai_job_id, metadata, error_message from public.video_generations",
            )
        }
        assert set(rows) == set(ids)
        assert rows["finished"][:2] == ("completed", "video_dup")
        for copy in ("pending copy", "processing copy"):
            status, job, meta, error = rows[copy]
            assert (status, job) == ("failed", None)
            assert meta == {"duplicate_openai_job_id": "video_dup", "duplicate_of": ids["finished"]}
            assert ids["finished"] in error
        assert rows["twin a"][:2] == ("completed", "video_twin")  # both finished: the older keeps it
        assert rows["twin b"][:3] == (
            "completed",
            None,
            {"duplicate_openai_job_id": "video_twin", "duplicate_of": ids["twin a"]},
        )
        assert rows["twin b"][3] is None
        assert rows["alone"][:2] == ("failed", "video_alone") and rows["not sent"][:2] == ("pending", None)
        indexes = dict(
            _rows(conninfo, "select indexname, indexdef from pg_indexes where tablename = 'video_generations'")
        )
        assert "UNIQUE" in indexes["video_generations_openai_job_id_key"]

        # The dashboard's policies on the table and the two buckets are gone; the ones for every bucket
        # of the project stay (other buckets are not soranb's) but open nothing of soranb's.
        names = {name for _s, _t, name, *_ in _policies(conninfo)}
        assert not names & {"Enable read access for all users", "Anyone edits", "Public videos"}
        assert {"Give anon users access to all files", "List buckets"} <= names
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "anon") as anon:
            anon.rows("select id from public.video_generations")
        with as_role(conninfo, "anon") as anon:
            assert anon.rows("select name from storage.objects") == []
            assert anon.rows("select id from storage.buckets") == []
        user = _new_user(conninfo)
        with as_role(conninfo, "authenticated", user) as a:
            assert a.rows("select id from public.video_generations") == []  # ownerless rows stay hidden
            assert a.rows("select name from storage.objects") == []  # a `true` policy opens nothing
        assert _rows(conninfo, "select id, public from storage.buckets order by 1") == [
            ("image_files", False),
            ("video_files", False),
        ]


def test_policies_added_after_the_hardening_open_nothing(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, _user_b, row_a, row_b = two_users
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            'create policy "Everyone reads" on public.video_generations for all using (true) with check (true)'
        )
        conn.execute('create policy "Everyone reads media" on storage.objects for all using (true) with check (true)')
        conn.execute("grant select on public.video_generations to anon")
    with as_role(conninfo, "authenticated", user_a) as a:
        assert a.rows("select id::text from public.video_generations") == [(row_a,)]
        assert a.count("update public.video_generations set prompt = 'x' where id = %s", (row_b,)) == 0
        assert a.rows("select name from storage.objects") == [(f"{user_a}/videos/{row_a}.mp4",)]
    with as_role(conninfo, "anon") as anon:
        assert anon.rows("select id from public.video_generations") == []
        assert anon.rows("select name from storage.objects") == []


def test_old_files_applied_again_keep_a_hardened_project_closed(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, user_a, _user_b, row_a, _row_b = two_users
    for path in single_user_migrations():
        apply_sql(conninfo, path)
    with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "anon") as anon:
        anon.rows("select id from public.video_generations")
    with as_role(conninfo, "anon") as anon:
        assert anon.rows("select name from storage.objects") == []
        assert anon.rows("select id from storage.buckets") == []
    with as_role(conninfo, "authenticated", user_a) as a:
        assert a.rows("select id::text from public.video_generations") == [(row_a,)]
        assert a.rows("select name from storage.objects") == [(f"{user_a}/videos/{row_a}.mp4",)]


def test_a_bucket_created_after_the_hardening_is_private(pg_server: PostgresServer) -> None:
    with _db(pg_server, [migration("create_video_generations"), migration(HARDENING)]) as conninfo:
        apply_sql(conninfo, migration("create_video_files_bucket"))
        apply_sql(conninfo, migration("create_image_files_bucket"))
        assert _rows(conninfo, "select id, public from storage.buckets order by 1") == [
            ("image_files", False),
            ("video_files", False),
        ]
        _put_object(conninfo, "video_files", "videos/top-level.mp4")
        with as_role(conninfo, "anon") as anon:
            assert anon.rows("select name from storage.objects") == []
            assert anon.rows("select id from storage.buckets") == []


def test_an_anonymous_sign_in_gets_nothing(two_users: tuple[str, str, str, str, str]) -> None:
    """Anyone with the anon key can sign in anonymously (when the project allows it): such a session
    has role `authenticated` and the `is_anonymous` claim, and may keep no rows and no media."""
    conninfo = two_users[0]
    guest = _new_user(conninfo)
    with as_role(conninfo, "authenticated", guest, is_anonymous=True) as g:
        assert g.rows("select id from public.video_generations") == []
        assert g.rows("select name from storage.objects") == []
        assert g.rows("select id from storage.buckets") == []
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        as_role(conninfo, "authenticated", guest, is_anonymous=True) as g,
    ):
        g.rows("insert into public.video_generations (prompt) values ('on the owner''s bill')")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        as_role(conninfo, "authenticated", guest, is_anonymous=True) as g,
    ):
        g.rows("insert into storage.objects (bucket_id, name) values ('video_files', %s)", (f"{guest}/videos/x.mp4",))
    with as_role(conninfo, "authenticated", guest, is_anonymous=False) as member:  # a real sign-in of that user
        member.rows("insert into public.video_generations (prompt) values ('mine')")
        assert len(member.rows("select id from public.video_generations")) == 1


# -- tags, favourite and note (20261126090000_tags_favourite_note.sql) ------------------------------

TAGS = "tags_favourite_note"


def test_the_tags_file_at_any_place_after_the_table_ends_in_the_same_state(
    pg_server: PostgresServer, hardened_db: str, single_user_db: str
) -> None:
    """At every position of the CLI's order (before or after the hardening), and applied again."""
    tags = migration(TAGS)
    table = migration("create_video_generations")
    hardened, single = _schema_snapshot(hardened_db), _schema_snapshot(single_user_db)
    others = [p for p in migration_files() if p not in (table, tags)]
    with _db(pg_server, ()) as conninfo, psycopg.connect(conninfo) as conn:
        for where in range(len(others) + 1):
            for files, expected in ((others, hardened), ([p for p in others if HARDENING not in p.name], single)):
                order = [table, *files[:where], tags, *files[where:]]
                with conn.transaction(force_rollback=True):
                    _apply_in(conn, [*order, tags])
                    assert _snapshot(conn) == expected, [p.name for p in order]


def test_the_tags_file_before_the_table_refuses_and_says_what_to_apply(fresh_db: str) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match=r"20250601120000_create_video_generations\.sql first"):
        apply_sql(fresh_db, migration(TAGS))


def test_the_tags_file_keeps_rows_and_opens_nothing(pg_server: PostgresServer) -> None:
    """Applied to a used, hardened project: rows keep everything and read back with the defaults, and a
    user still sees and tags only their own rows."""
    before_tags = [p for p in migration_files() if TAGS not in p.name]
    with _db(pg_server, before_tags) as conninfo:
        user_a, user_b = _new_user(conninfo), _new_user(conninfo)
        row_a = _insert_as(conninfo, "authenticated", user_a, "a's video")
        row_b = _insert_as(conninfo, "authenticated", user_b, "b's video")
        policies = _policies(conninfo)
        apply_sql(conninfo, migration(TAGS))
        assert _policies(conninfo) == policies
        assert _rows(conninfo, "select prompt, tags, favourite, note from public.video_generations order by 1") == [
            ("a's video", [], False, None),
            ("b's video", [], False, None),
        ]
        with as_role(conninfo, "authenticated", user_a) as a:
            assert a.count("update public.video_generations set tags = '{mine}', favourite = true where id = %s",
                           (row_a,)) == 1  # fmt: skip
            assert a.count("update public.video_generations set tags = '{stolen}' where id = %s", (row_b,)) == 0
            assert a.rows("select id::text from public.video_generations where tags @> '{mine}'") == [(row_a,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege), as_role(conninfo, "anon") as anon:
            anon.rows("select tags from public.video_generations")
        assert _rows(conninfo, "select tags from public.video_generations where id = %s", (row_b,)) == [([],)]


def test_lineage_holds_only_its_shape_and_stays_per_user(two_users: tuple[str, str, str, str, str]) -> None:
    conninfo, ada, bob, ada_row, _bob_row = two_users
    with as_role(conninfo, "authenticated", ada) as ada_tx:
        assert (
            ada_tx.count(
                "update public.video_generations set lineage = %s where id = %s", (f"extend:{ada_row}", ada_row)
            )
            == 1
        )
        with pytest.raises(psycopg.errors.CheckViolation):
            ada_tx.count("update public.video_generations set lineage = '<b>x</b>' where id = %s", (ada_row,))
    with as_role(conninfo, "authenticated", bob) as bob_tx:
        assert bob_tx.count("update public.video_generations set lineage = 'edit:x' where id = %s", (ada_row,)) == 0
