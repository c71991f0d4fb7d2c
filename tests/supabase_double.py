"""A small test double of Supabase's HTTP API, backed by a real PostgreSQL.

It answers the subset that supabase-py (postgrest, storage3, supabase_auth) sends for soranb's
store: PostgREST reads and writes on `public` tables, storage objects and buckets, signed and
public URLs, and password sign-in. Each request runs in one transaction as the JWT's role with
`request.jwt.claims` set, exactly as PostgREST and Supabase Storage do, so the migrations'
row-level security is what decides. Object bytes live in a folder; their rows in
`storage.objects`.

This is deliberately not a full PostgREST: no embedding, no RPC, no upsert.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import psycopg
import pytest
from postgres import PostgresServer, migration_files, single_user_migrations
from psycopg import sql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

JWT_SECRET = "soranb-test-double-secret-at-least-32-bytes!"
ROLES = ("anon", "authenticated", "service_role")
MB = 1024 * 1024

_CMP = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_PATTERN = {"like": "like", "ilike": "ilike", "match": "~", "imatch": "~*"}
_RESERVED = {"select", "order", "limit", "offset", "or", "and", "columns", "on_conflict"}


class _Fail(Exception):
    """An error answer, in PostgREST's or Storage's shape."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.status = status
        self.body = body


def _rest_error(status: int, code: str, message: str, details: str | None = None) -> _Fail:
    return _Fail(status, {"code": code, "message": message, "details": details, "hint": None})


def _storage_error(status: int, error: str, message: str) -> _Fail:
    # Supabase Storage answers 400 with the real status inside the body.
    return _Fail(400, {"statusCode": str(status), "error": error, "message": message})


def make_token(role: str, sub: str | None = None, *, ttl: int = 3600, **extra: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"role": role, "iss": "supabase-double", "iat": now, "exp": now + ttl, **extra}
    if sub:
        claims |= {"sub": sub, "aud": "authenticated"}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


class SupabaseDouble:
    """The app plus the bits a test needs: keys, users, an httpx client wired to it."""

    url = "http://supabase.test"

    def __init__(self, conninfo: str, objects_dir: Path, *, max_file_size: int = 50 * MB) -> None:
        self.conninfo = conninfo
        self.objects_dir = Path(objects_dir)
        self.objects_dir.mkdir(parents=True, exist_ok=True)
        self.max_file_size = max_file_size
        self.anon_key = make_token("anon", ttl=10 * 365 * 86400)
        self.service_key = make_token("service_role", ttl=10 * 365 * 86400)
        self.requests: list[str] = []  # "METHOD /path?query", for assertions on round trips
        self._users: dict[str, tuple[str, str]] = {}  # email -> (password, id)
        self._refresh: dict[str, str] = {}  # refresh token -> user id
        self.app = Starlette(
            routes=[
                Route("/auth/v1/token", self.auth_token, methods=["POST"]),
                Route("/auth/v1/logout", self.auth_logout, methods=["POST"]),
                Route("/rest/v1/{table}", self.rest, methods=["GET", "HEAD", "POST", "PATCH", "DELETE"]),
                Route("/storage/v1/bucket", self.list_buckets, methods=["GET"]),
                Route("/storage/v1/bucket/{bucket}", self.get_bucket, methods=["GET"]),
                Route("/storage/v1/object/list/{bucket}", self.list_objects, methods=["POST"]),
                Route("/storage/v1/object/sign/{bucket}/{name:path}", self.sign, methods=["POST"]),
                Route("/storage/v1/object/sign/{bucket}/{name:path}", self.signed_get, methods=["GET"]),
                Route("/storage/v1/object/public/{bucket}/{name:path}", self.public_get, methods=["GET"]),
                Route("/storage/v1/object/authenticated/{bucket}/{name:path}", self.object_get, methods=["GET"]),
                Route("/storage/v1/object/{bucket}", self.remove_objects, methods=["DELETE"]),
                Route("/storage/v1/object/{bucket}/{name:path}", self.upload, methods=["POST", "PUT"]),
                Route("/storage/v1/object/{bucket}/{name:path}", self.object_get, methods=["GET"]),
            ]
        )

    # -- for tests ----------------------------------------------------------------------
    def http_client(self) -> httpx.AsyncClient:
        """An httpx client that reaches this app in-process (no socket)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), timeout=30)

    def add_user(self, email: str, password: str) -> str:
        uid = str(uuid.uuid4())
        with psycopg.connect(self.conninfo) as conn:
            conn.execute("insert into auth.users (id, email) values (%s, %s)", (uid, email))
        self._users[email] = (password, uid)
        return uid

    def user_token(self, user_id: str, *, ttl: int = 3600) -> str:
        return make_token("authenticated", user_id, ttl=ttl)

    # -- plumbing -----------------------------------------------------------------------
    async def _handle(self, request: Request, work: Any) -> Response:
        self.requests.append(f"{request.method} {request.url.path}?{request.url.query}")
        try:
            return await work()
        except _Fail as fail:
            return JSONResponse(fail.body, status_code=fail.status)

    def _claims(self, request: Request, *, storage: bool = False) -> dict[str, Any]:
        def decode(token: str) -> dict[str, Any]:
            try:
                claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], options={"verify_aud": False})
            except jwt.PyJWTError as exc:
                if storage:
                    raise _storage_error(400, "InvalidJWT", str(exc)) from None
                raise _rest_error(401, "PGRST301", f"JWT invalid: {exc}") from None
            if claims.get("role") not in ROLES:
                raise _rest_error(401, "PGRST301", "JWT role not allowed")
            return dict(claims)

        decode(request.headers.get("apikey", ""))  # the gateway wants a valid project key
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else request.headers.get("apikey", "")
        return decode(token)

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        conn = await psycopg.AsyncConnection.connect(self.conninfo)
        try:
            async with conn.transaction():
                yield conn
        finally:
            await conn.close()

    @staticmethod
    async def _become(conn: psycopg.AsyncConnection[Any], claims: dict[str, Any]) -> None:
        await conn.execute(
            "select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
            (claims["role"], json.dumps(claims)),
        )

    # -- auth ---------------------------------------------------------------------------
    async def auth_token(self, request: Request) -> Response:
        async def work() -> Response:
            body = await request.json()
            grant = request.query_params.get("grant_type")
            if grant == "password":
                known = self._users.get(body.get("email", ""))
                if known is None or not secrets.compare_digest(known[0], str(body.get("password", ""))):
                    return JSONResponse(
                        {
                            "code": "invalid_credentials",
                            "error_code": "invalid_credentials",
                            "msg": "Invalid login credentials",
                        },
                        status_code=400,
                    )
                email, uid = body["email"], known[1]
            elif grant == "refresh_token" and body.get("refresh_token") in self._refresh:
                uid = self._refresh.pop(body["refresh_token"])
                email = next(e for e, (_p, u) in self._users.items() if u == uid)
            else:
                return JSONResponse({"code": "bad_request", "msg": "unsupported grant"}, status_code=400)
            refresh = secrets.token_urlsafe(16)
            self._refresh[refresh] = uid
            now = int(time.time())
            return JSONResponse(
                {
                    "access_token": self.user_token(uid),
                    "token_type": "bearer",
                    "expires_in": 3600,
                    "expires_at": now + 3600,
                    "refresh_token": refresh,
                    "user": {
                        "id": uid,
                        "aud": "authenticated",
                        "role": "authenticated",
                        "email": email,
                        "app_metadata": {"provider": "email"},
                        "user_metadata": {},
                        "created_at": datetime.now(UTC).isoformat(),
                    },
                }
            )

        return await self._handle(request, work)

    async def auth_logout(self, request: Request) -> Response:
        return Response(status_code=204)

    # -- PostgREST ------------------------------------------------------------------------
    async def rest(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request)
            table = request.path_params["table"]
            prefer = _prefer(request.headers.getlist("prefer"))
            async with self._transaction() as conn:
                types = await _column_types(conn, table)
                await self._become(conn, claims)
                try:
                    return await _rest_call(conn, request, table, types, prefer)
                except psycopg.Error as exc:
                    raise _pg_error(exc, claims["role"]) from None

        return await self._handle(request, work)

    # -- storage ---------------------------------------------------------------------------
    def _object_file(self, bucket: str, name: str) -> Path:
        return self.objects_dir / hashlib.sha256(f"{bucket}\0{name}".encode()).hexdigest()

    async def list_buckets(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            async with self._transaction() as conn:
                await self._become(conn, claims)
                return JSONResponse(await _buckets(conn, None))

        return await self._handle(request, work)

    async def get_bucket(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            async with self._transaction() as conn:
                await self._become(conn, claims)
                found = await _buckets(conn, request.path_params["bucket"])
            if not found:
                raise _storage_error(404, "Bucket not found", "Bucket not found")
            return JSONResponse(found[0])

        return await self._handle(request, work)

    async def upload(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            bucket, name = request.path_params["bucket"], request.path_params["name"]
            upsert = request.headers.get("x-upsert", "false").lower() == "true"
            async with request.form(max_files=1, max_fields=10) as form:
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise _storage_error(400, "InvalidRequest", "no file in the form")
                size = upload.size if upload.size is not None else len(await upload.read())
                content_type = upload.content_type or "application/octet-stream"
                async with self._transaction() as conn:
                    row = await (
                        await conn.execute("select file_size_limit from storage.buckets where id = %s", (bucket,))
                    ).fetchone()
                    if row is None:
                        raise _storage_error(404, "Bucket not found", "Bucket not found")
                    limit = min(self.max_file_size, row[0] or self.max_file_size)
                    if size > limit:
                        raise _storage_error(413, "Payload too large", "The object exceeded the maximum allowed size")
                    await self._become(conn, claims)
                    metadata = json.dumps({"size": size, "mimetype": content_type})
                    owner = claims.get("sub")
                    try:
                        if request.method == "PUT":
                            cur = await conn.execute(
                                "update storage.objects set metadata = %s, updated_at = now() "
                                "where bucket_id = %s and name = %s returning id",
                                (metadata, bucket, name),
                            )
                        elif upsert:
                            cur = await conn.execute(
                                "insert into storage.objects (bucket_id, name, owner, owner_id, metadata) "
                                "values (%s, %s, %s, %s, %s) on conflict (bucket_id, name) do update "
                                "set metadata = excluded.metadata, updated_at = now() returning id",
                                (bucket, name, owner, owner, metadata),
                            )
                        else:
                            cur = await conn.execute(
                                "insert into storage.objects (bucket_id, name, owner, owner_id, metadata) "
                                "values (%s, %s, %s, %s, %s) returning id",
                                (bucket, name, owner, owner, metadata),
                            )
                    except psycopg.errors.UniqueViolation:
                        raise _storage_error(409, "Duplicate", "The resource already exists") from None
                    except psycopg.errors.InsufficientPrivilege:
                        raise _storage_error(
                            403, "Unauthorized", "new row violates row-level security policy"
                        ) from None
                    created = await cur.fetchone()
                    if created is None:
                        raise _storage_error(404, "not_found", "Object not found")
                    await upload.seek(0)
                    partial = self.objects_dir / f"upload-{uuid.uuid4().hex}"
                    with open(partial, "wb") as out:
                        while chunk := await upload.read(MB):
                            out.write(chunk)
                    os.replace(partial, self._object_file(bucket, name))
            return JSONResponse({"Key": f"{bucket}/{name}", "Id": str(created[0])})

        return await self._handle(request, work)

    async def remove_objects(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            bucket = request.path_params["bucket"]
            names = list((await request.json()).get("prefixes") or [])
            async with self._transaction() as conn:
                await self._become(conn, claims)
                cur = await conn.execute(
                    "delete from storage.objects where bucket_id = %s and name = any(%s) "
                    "returning id::text, name, bucket_id",
                    (bucket, names),
                )
                deleted = await cur.fetchall()
            for _id, name, _bucket in deleted:
                with contextlib.suppress(FileNotFoundError):
                    self._object_file(bucket, name).unlink()
            return JSONResponse([{"id": i, "name": n, "bucket_id": b} for i, n, b in deleted])

        return await self._handle(request, work)

    async def list_objects(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            bucket = request.path_params["bucket"]
            body = await request.json()
            prefix = str(body.get("prefix") or "").strip("/")
            start = f"{prefix}/" if prefix else ""
            async with self._transaction() as conn:
                await self._become(conn, claims)
                cur = await conn.execute(
                    "select id::text, name, metadata, created_at::text, updated_at::text from storage.objects "
                    "where bucket_id = %s and left(name, %s) = %s order by name",
                    (bucket, len(start), start),
                )
                rows = await cur.fetchall()
            entries: dict[str, dict[str, Any]] = {}
            for oid, name, metadata, created, updated in rows:
                rest = name[len(start) :]
                head, sep, _tail = rest.partition("/")
                if sep:
                    entries.setdefault(head, {"name": head, "id": None, "metadata": None})
                else:
                    entries[head] = {
                        "name": head,
                        "id": oid,
                        "metadata": metadata,
                        "created_at": created,
                        "updated_at": updated,
                    }
            offset, limit = int(body.get("offset") or 0), int(body.get("limit") or 100)
            return JSONResponse(list(entries.values())[offset : offset + limit])

        return await self._handle(request, work)

    async def sign(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            bucket, name = request.path_params["bucket"], request.path_params["name"]
            expires_in = int((await request.json()).get("expiresIn") or 60)
            async with self._transaction() as conn:
                await self._become(conn, claims)
                cur = await conn.execute(
                    "select 1 from storage.objects where bucket_id = %s and name = %s", (bucket, name)
                )
                if await cur.fetchone() is None:
                    raise _storage_error(404, "not_found", "Object not found")
            token = jwt.encode(
                {"url": f"{bucket}/{name}", "iat": int(time.time()), "exp": int(time.time()) + expires_in},
                JWT_SECRET,
                algorithm="HS256",
            )
            return JSONResponse({"signedURL": f"/object/sign/{bucket}/{quote(name)}?token={token}"})

        return await self._handle(request, work)

    async def signed_get(self, request: Request) -> Response:
        async def work() -> Response:
            bucket, name = request.path_params["bucket"], request.path_params["name"]
            try:
                claims = jwt.decode(request.query_params.get("token", ""), JWT_SECRET, algorithms=["HS256"])
            except jwt.PyJWTError as exc:
                raise _storage_error(400, "InvalidSignature", f"invalid signature: {exc}") from None
            if claims.get("url") != f"{bucket}/{name}":
                raise _storage_error(400, "InvalidSignature", "the token is for another object")
            return await self._serve(bucket, name)

        return await self._handle(request, work)

    async def public_get(self, request: Request) -> Response:
        async def work() -> Response:
            bucket, name = request.path_params["bucket"], request.path_params["name"]
            async with self._transaction() as conn:
                row = await (
                    await conn.execute("select public from storage.buckets where id = %s", (bucket,))
                ).fetchone()
            if row is None or not row[0]:
                raise _storage_error(404, "not_found", "Object not found")
            return await self._serve(bucket, name)

        return await self._handle(request, work)

    async def object_get(self, request: Request) -> Response:
        async def work() -> Response:
            claims = self._claims(request, storage=True)
            bucket, name = request.path_params["bucket"], request.path_params["name"]
            async with self._transaction() as conn:
                await self._become(conn, claims)
                cur = await conn.execute(
                    "select 1 from storage.objects where bucket_id = %s and name = %s", (bucket, name)
                )
                if await cur.fetchone() is None:
                    raise _storage_error(404, "not_found", "Object not found")
            return await self._serve(bucket, name)

        return await self._handle(request, work)

    async def _serve(self, bucket: str, name: str) -> Response:
        async with self._transaction() as conn:
            row = await (
                await conn.execute(
                    "select metadata ->> 'mimetype' from storage.objects where bucket_id = %s and name = %s",
                    (bucket, name),
                )
            ).fetchone()
        path = self._object_file(bucket, name)
        if row is None or not path.is_file():
            raise _storage_error(404, "not_found", "Object not found")
        return FileResponse(path, media_type=row[0] or "application/octet-stream")


# -- PostgREST subset ------------------------------------------------------------------------------


def _prefer(values: list[str]) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            key, _, val = item.strip().partition("=")
            if key:
                prefs[key] = val
    return prefs


async def _column_types(conn: psycopg.AsyncConnection[Any], table: str) -> dict[str, str]:
    cur = await conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a "
        "where a.attrelid = to_regclass(format('public.%%I', %s::text)) and a.attnum > 0 and not a.attisdropped",
        (table,),
    )
    types = {name: typ for name, typ in await cur.fetchall()}
    if not types:
        raise _rest_error(404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache")
    return types


def _pg_error(exc: psycopg.Error, role: str) -> _Fail:
    state = exc.sqlstate or ""
    diag = exc.diag
    status = {
        "23505": 409,
        "23503": 409,
        "42501": 401 if role == "anon" else 403,
        "42P01": 404,
    }.get(state, 400 if state[:2] in ("22", "23", "42", "P0") else 500)
    return _rest_error(status, state, diag.message_primary or str(exc), diag.message_detail)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and char == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


class _Query:
    """Filters and shaping of one PostgREST request, compiled to SQL with typed parameters."""

    def __init__(self, table: str, types: dict[str, str]) -> None:
        self.table = table
        self.types = types
        self.params: list[Any] = []

    def column(self, name: str) -> sql.Composable:
        if name not in self.types:
            raise _rest_error(400, "42703", f"column {self.table}.{name} does not exist")
        return sql.Identifier(name)

    def typed(self, name: str, value: Any) -> sql.Composable:
        self.params.append(value)
        return sql.SQL("%s::{}").format(sql.SQL(self.types[name]))

    def condition(self, name: str, expr: str, *, in_tree: bool) -> sql.Composable:
        negate = expr.startswith("not.")
        if negate:
            expr = expr[4:]
        op, _, raw = expr.partition(".")
        column = self.column(name)
        value = _unquote(raw) if in_tree else raw
        if op in _CMP:
            cond = sql.SQL("{} {} {}").format(column, sql.SQL(_CMP[op]), self.typed(name, value))
        elif op in _PATTERN:
            if op in ("like", "ilike"):
                value = value.replace("*", "%")
            self.params.append(value)
            cond = sql.SQL("{}::text {} %s").format(column, sql.SQL(_PATTERN[op]))
        elif op == "in":
            if not (raw.startswith("(") and raw.endswith(")")):
                raise _rest_error(400, "PGRST100", f"bad in list {raw!r}")
            items = [_unquote(v) for v in _split_top(raw[1:-1])] if raw[1:-1] else []
            self.params.append(items)
            cond = sql.SQL("{} = any(%s::{}[])").format(column, sql.SQL(self.types[name]))
        elif op == "cs":  # contains: an array literal like {a,"b c"} (what postgrest-py sends for a list)
            self.params.append(value)
            cond = sql.SQL("{} @> %s::{}").format(column, sql.SQL(self.types[name]))
        elif op == "is" and value.lower() in ("null", "true", "false", "unknown"):
            cond = sql.SQL("{} is {}").format(column, sql.SQL(value.lower()))
        else:
            raise _rest_error(400, "PGRST100", f"operator {op!r} is not supported by the double")
        return sql.SQL("not ({})").format(cond) if negate else cond

    def tree(self, kind: str, body: str) -> sql.Composable:
        """`or=(a.eq.1,and(b.gt.2,c.is.null))` and friends."""
        if not (body.startswith("(") and body.endswith(")")):
            raise _rest_error(400, "PGRST100", f"bad logic tree {body!r}")
        parts: list[sql.Composable] = []
        for item in _split_top(body[1:-1]):
            negate = item.startswith("not.")
            inner = item[4:] if negate else item
            match = re.match(r"^(and|or)(\(.*\))$", inner, re.S)
            if match:
                part = self.tree(match.group(1), match.group(2))
            else:
                name, _, expr = inner.partition(".")
                part = self.condition(name, expr, in_tree=True)
            parts.append(sql.SQL("not ({})").format(part) if negate else part)
        joined = sql.SQL(f" {kind} ").join(parts)
        return sql.SQL("({})").format(joined)

    def where(self, request: Request) -> sql.Composable:
        conds: list[sql.Composable] = []
        for key, value in request.query_params.multi_items():
            if key in ("or", "and", "not.or", "not.and"):
                kind = key.removeprefix("not.")
                tree = self.tree(kind, value)
                conds.append(sql.SQL("not {}").format(tree) if key.startswith("not.") else tree)
            elif key not in _RESERVED:
                conds.append(self.condition(key, value, in_tree=False))
        return sql.SQL(" where ") + sql.SQL(" and ").join(conds) if conds else sql.SQL("")

    def select_list(self, request: Request) -> sql.Composable:
        raw = request.query_params.get("select") or "*"
        names = [n.strip() for n in raw.split(",") if n.strip()]
        if names == ["*"]:
            return sql.SQL("*")
        return sql.SQL(", ").join(self.column(n) for n in names)

    def order(self, request: Request) -> sql.Composable:
        raw = request.query_params.get("order")
        if not raw:
            return sql.SQL("")
        terms = []
        for term in raw.split(","):
            name, *mods = term.split(".")
            parts = [self.column(name)]
            for mod in mods:
                if mod not in ("asc", "desc", "nullsfirst", "nullslast"):
                    raise _rest_error(400, "PGRST100", f"bad order {term!r}")
                parts.append(sql.SQL({"nullsfirst": "nulls first", "nullslast": "nulls last"}.get(mod, mod)))
            terms.append(sql.SQL(" ").join(parts))
        return sql.SQL(" order by ") + sql.SQL(", ").join(terms)

    def values(self, row: dict[str, Any]) -> tuple[list[sql.Composable], list[sql.Composable]]:
        columns: list[sql.Composable] = []
        placeholders: list[sql.Composable] = []
        for name, value in row.items():
            if name not in self.types:
                raise _rest_error(
                    400, "PGRST204", f"Could not find the '{name}' column of '{self.table}' in the schema cache"
                )
            columns.append(sql.Identifier(name))
            placeholders.append(self.typed(name, _sql_value(self.types[name], value)))
        return columns, placeholders


def _sql_value(typ: str, value: Any) -> Any:
    if value is None:
        return None
    if typ in ("json", "jsonb"):
        return json.dumps(value)
    if typ.endswith("[]") and isinstance(value, list):  # a JSON array for an array column
        return [str(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def _rest_call(
    conn: psycopg.AsyncConnection[Any],
    request: Request,
    table: str,
    types: dict[str, str],
    prefer: dict[str, str],
) -> Response:
    q = _Query(table, types)
    target = sql.SQL("public.{}").format(sql.Identifier(table))
    method = request.method
    headers: dict[str, str] = {}
    if method in ("GET", "HEAD"):
        select = q.select_list(request)
        where = q.where(request)
        where_params = list(q.params)
        body_sql = sql.SQL("select {} from {}{}{}").format(select, target, where, q.order(request))
        limit, offset = request.query_params.get("limit"), int(request.query_params.get("offset") or 0)
        if limit is not None:
            body_sql += sql.SQL(" limit {}").format(sql.Literal(int(limit)))
        if offset:
            body_sql += sql.SQL(" offset {}").format(sql.Literal(offset))
        rows = await _json_rows(conn, body_sql, q.params)
        total = "*"
        if prefer.get("count") in ("exact", "planned", "estimated"):
            cur = await conn.execute(sql.SQL("select count(*) from {}{}").format(target, where), where_params)
            total = str((await cur.fetchone() or (0,))[0])
        n = len(json.loads(rows))
        headers["Content-Range"] = f"{offset}-{offset + n - 1}/{total}" if n else f"*/{total}"
        return _answer(request, rows, 200, headers)

    if prefer.get("resolution"):
        raise _rest_error(400, "PGRST100", "upsert is not supported by the double")
    if method == "POST":
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        results: list[Any] = []
        for item in items:
            q.params = []
            columns, placeholders = q.values(item)
            if columns:
                stmt = sql.SQL("insert into {} ({}) values ({}) returning *").format(
                    target, sql.SQL(", ").join(columns), sql.SQL(", ").join(placeholders)
                )
            else:
                stmt = sql.SQL("insert into {} default values returning *").format(target)
            results += json.loads(await _json_rows(conn, stmt, q.params, select=q.select_list(request)))
        return _mutation_answer(request, prefer, results, 201)
    if method == "PATCH":
        body = await request.json()
        columns, placeholders = q.values(body)
        if not columns:
            return _mutation_answer(request, prefer, [], 200)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(c, p) for c, p in zip(columns, placeholders, strict=True)
        )
        stmt = sql.SQL("update {} set {}{} returning *").format(target, assignments, q.where(request))
        results = json.loads(await _json_rows(conn, stmt, q.params, select=q.select_list(request)))
        return _mutation_answer(request, prefer, results, 200)
    # DELETE
    stmt = sql.SQL("delete from {}{} returning *").format(target, q.where(request))
    results = json.loads(await _json_rows(conn, stmt, q.params, select=q.select_list(request)))
    return _mutation_answer(request, prefer, results, 200)


async def _json_rows(
    conn: psycopg.AsyncConnection[Any],
    stmt: sql.Composable,
    params: list[Any],
    *,
    select: sql.Composable | None = None,
) -> str:
    """The rows of `stmt` as PostgREST renders them (PostgreSQL's own JSON of each row)."""
    if select is None:
        wrapped = sql.SQL("select coalesce(json_agg(_r), '[]')::text from ({}) _r").format(stmt)
    else:
        wrapped = sql.SQL(
            "with _m as ({}) select coalesce(json_agg(_r), '[]')::text from (select {} from _m) _r"
        ).format(stmt, select)
    cur = await conn.execute(wrapped, params)
    row = await cur.fetchone()
    return str(row[0]) if row else "[]"


def _answer(request: Request, rows: str, status: int, headers: dict[str, str]) -> Response:
    if request.headers.get("accept", "").startswith("application/vnd.pgrst.object+json"):
        data = json.loads(rows)
        if len(data) != 1:
            raise _rest_error(406, "PGRST116", "Cannot coerce the result to a single JSON object")
        rows = json.dumps(data[0])
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return Response(rows, status_code=status, headers=headers, media_type="application/json")


def _mutation_answer(request: Request, prefer: dict[str, str], rows: list[Any], status: int) -> Response:
    headers = {}
    if prefer.get("count"):
        headers["Content-Range"] = f"0-{len(rows) - 1}/{len(rows)}" if rows else "*/0"
    if prefer.get("return") == "representation":
        return _answer(request, json.dumps(rows), status, headers)
    return Response(status_code=201 if status == 201 else 204, headers=headers)


async def _buckets(conn: psycopg.AsyncConnection[Any], bucket: str | None) -> list[dict[str, Any]]:
    query = (
        "select coalesce(json_agg(b), '[]')::text from (select id, name, coalesce(owner::text, '') as owner, "
        "public, created_at, updated_at, file_size_limit, allowed_mime_types from storage.buckets"
        + (" where id = %s" if bucket else "")
        + " order by id) b"
    )
    cur = await conn.execute(query, (bucket,) if bucket else ())  # type: ignore[arg-type]
    row = await cur.fetchone()
    return list(json.loads(row[0])) if row else []


# -- fixtures ------------------------------------------------------------------------------------

VARIANTS = ("single-user", "per-user")


@pytest.fixture(scope="session")
def supabase_databases(pg_server: PostgresServer) -> Iterator[dict[str, str]]:
    """One database per Supabase variant: single-user (no hardening) and per-user (all migrations)."""
    names = {
        "single-user": pg_server.create_database(single_user_migrations()),
        "per-user": pg_server.create_database(migration_files()),
    }
    try:
        yield {variant: pg_server.conninfo(name) for variant, name in names.items()}
    finally:
        for name in names.values():
            pg_server.drop_database(name)


def reset_database(conninfo: str) -> None:
    """Empty what a test writes, keeping the schema (much faster than a new database)."""
    with psycopg.connect(conninfo) as conn:
        conn.execute("truncate public.video_generations")
        conn.execute("delete from storage.objects")
        conn.execute("delete from auth.users")
