"""The Supabase migrations on a real PostgreSQL: schema, idempotency, and row-level security.

RLS is checked the way PostgREST and Supabase Storage apply it: inside a transaction, as the
JWT's role, with `request.jwt.claims` set, so `auth.uid()` is the signed-in user.
"""

from __future__ import annotations

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

    def __init__(self, conn: psycopg.Connection, role: str, sub: str | None) -> None:
        self.conn = conn
        claims = {"role": role} | ({"sub": sub} if sub else {})
        conn.execute("select set_config('role', %s, true)", (role,))
        conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        cur = self.conn.execute(sql, params)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []

    def count(self, sql: str, params: Sequence[object] = ()) -> int:
        """Rows affected by an update/delete (RLS filters silently, so 0 means refused)."""
        return self.conn.execute(sql, params).rowcount  # type: ignore[arg-type]


@contextmanager
def as_role(conninfo: str, role: str, sub: str | None = None) -> Iterator[As]:
    with psycopg.connect(conninfo) as conn, conn.transaction(force_rollback=True):
        yield As(conn, role, sub)


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


def _policies(conninfo: str) -> list[tuple]:
    return _rows(
        conninfo,
        "select schemaname, tablename, policyname, cmd, roles::text, qual, with_check from pg_policies "
        "order by 1, 2, 3",
    )


def _schema_snapshot(conninfo: str) -> tuple:
    return (
        _columns(conninfo),
        _policies(conninfo),
        _rows(conninfo, "select indexname from pg_indexes where tablename = 'video_generations' order by 1"),
        _rows(conninfo, "select id, public from storage.buckets order by 1"),
        _rows(
            conninfo,
            "select tgname, tgfoid::regproc::text from pg_trigger "
            "where tgrelid = 'public.video_generations'::regclass and not tgisinternal",
        ),
    )


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
    for _schema, table, name, _cmd, roles, qual, check in _policies(hardened_db):
        if table == "buckets":
            assert qual in ("(id = 'video_files'::text)", "(id = 'image_files'::text)"), name
            continue
        assert roles == "{authenticated}", name
        assert "auth.uid()" in (qual or check), name


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
