"""The `soranb` command: a thin shell over the same service the notebooks use.

    soranb generate PROMPT [--model --size --seconds --image PATH --fit crop|pad] [--wait] [--json]
                    [--image-url URL | --image-file-id ID] [--character ID ...]
    soranb extend ID PROMPT --seconds N [--wait] [--json]      (ID: a completed record)
    soranb edit ID PROMPT [--wait] [--json]
    soranb character create NAME VIDEO [--json]
    soranb character show ID [--json]
    soranb wait [--timeout S] [--json]
    soranb list [--status S] [--model M] [--search TEXT] [--limit N] [--json]
    soranb delete ID
    soranb tag ID TAG... | untag ID TAG... | favourite ID [--off] | note ID TEXT
    soranb list --tag T --favourite
    soranb budget [--json]
    soranb report OUT.html [--tag T] [--favourite] [--since YYYY-MM-DD] [--limit N]
    soranb batch FILE [--dry-run] [--wait] [--key K] [--model --size --seconds] [--timeout S] [--json]
    soranb doctor [--allow-spend] [--json]
    soranb emulator [--host H] [--port P] [--speed N] [--fault NAME=RATE ...] [--latency-ms MS] [--api-key KEY]
                    [--webhook-url URL ...] [--webhook-secret whsec_...]

Exit codes: 0 success, 1 a job or check failed, 2 bad input or settings, 3 jobs still open when
`--timeout` passed (they are kept; `soranb wait` resumes them), 4 `generate` or `batch` could not send a job
(no answer from the provider; the record is kept and `soranb wait` sends it).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from . import catalog
from .errors import ConfigError, RequestInvalid, SoranbError
from .events import ServiceEvent
from .protocols import ServiceLike
from .records import GenerationRecord, Status, clean_tags
from .request import GenerationRequest, ImageInput
from .store.base import RecordQuery

if TYPE_CHECKING:  # the service loads only when a command needs it
    from .service import VideoService

__all__ = ["EXIT_NOT_SENT", "EXIT_STILL_OPEN", "main"]

EXIT_STILL_OPEN = 3
EXIT_NOT_SENT = 4


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except (RequestInvalid, ConfigError) as exc:
        print(f"soranb: {exc}", file=sys.stderr)
        return 2
    except SoranbError as exc:
        print(f"soranb: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("soranb: interrupted; open jobs are kept and `soranb wait` resumes them", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soranb", description="Sora-2-shaped video generations, offline by default.")
    parser.set_defaults(command=None)
    sub = parser.add_subparsers(title="commands")
    _add_making_commands(sub)
    _add_history_commands(sub)
    _add_batch_and_tag_commands(sub)
    _add_emulator_command(sub)
    return parser


def _add_making_commands(sub: Any) -> None:
    """generate, extend, edit and character: the commands that make something at the provider."""
    gen = sub.add_parser("generate", help="start a video generation")
    gen.add_argument("prompt")
    gen.add_argument("--model", default=catalog.DEFAULT_MODEL, help=f"one of {', '.join(catalog.MODELS)}")
    gen.add_argument("--size", default=catalog.DEFAULT_SIZE, help="e.g. 1280x720 (the model decides which)")
    gen.add_argument(
        "--seconds",
        type=int,
        default=catalog.DEFAULT_SECONDS,
        help=f"one of {', '.join(map(str, catalog.SECONDS))} (the model decides which)",
    )
    gen.add_argument("--image", type=Path, help="starting image (JPEG, PNG or WebP)")
    gen.add_argument("--fit", choices=("crop", "pad"), help="fit a starting image of another size")
    gen.add_argument("--image-url", help="starting image the provider fetches (https://...) or a data: URL")
    gen.add_argument("--image-file-id", help="starting image already uploaded to the provider (file-...)")
    gen.add_argument(
        "--character",
        action="append",
        default=[],
        metavar="ID",
        help=f"feature this character (repeatable, at most {catalog.MAX_CHARACTERS}; see `soranb character`)",
    )
    gen.add_argument("--wait", action="store_true", help="wait for the video and store it")
    gen.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    gen.add_argument("--json", action="store_true", help="print the record as one JSON object")
    gen.set_defaults(command="generate", run=_generate)

    for name, helptext in (("extend", "continue a completed video"), ("edit", "re-render a completed video")):
        derive = sub.add_parser(name, help=helptext)
        derive.add_argument("record_id", help="a completed record (see `soranb list`)")
        derive.add_argument("prompt", help="what happens next" if name == "extend" else "what to change")
        if name == "extend":
            derive.add_argument(
                "--seconds",
                type=int,
                required=True,
                help=f"seconds to add: one of {', '.join(map(str, catalog.EXTENSION_SECONDS))}",
            )
        derive.add_argument("--wait", action="store_true", help="wait for the video and store it")
        derive.add_argument("--timeout", type=float, default=None)
        derive.add_argument("--json", action="store_true")
        derive.set_defaults(command=name, run=_derive)

    character = sub.add_parser("character", help="create or show a character for --character")
    character.set_defaults(command="character", run=lambda _args: _usage(character))
    csub = character.add_subparsers(title="character commands")
    ccreate = csub.add_parser("create", help="make a character from a video file")
    ccreate.add_argument("name")
    ccreate.add_argument("video", type=Path)
    ccreate.add_argument("--json", action="store_true")
    ccreate.set_defaults(run=_character_create)
    cshow = csub.add_parser("show", help="show a character")
    cshow.add_argument("character_id")
    cshow.add_argument("--json", action="store_true")
    cshow.set_defaults(run=_character_show)


def _add_history_commands(sub: Any) -> None:
    """wait, list, delete and doctor: following jobs and reading the store."""
    wait = sub.add_parser("wait", help="finish every open job in the store")
    wait.add_argument("--timeout", type=float, default=None)
    wait.add_argument("--json", action="store_true")
    wait.set_defaults(command="wait", run=_wait)

    lst = sub.add_parser("list", help="show the history, newest first")
    lst.add_argument("--status", choices=[s.value for s in Status])
    lst.add_argument("--model")
    lst.add_argument("--search", help="only prompts containing this text")
    lst.add_argument("--tag", action="append", default=[], help="only records with this tag (repeat: all of them)")
    lst.add_argument("--favourite", action="store_true", help="only favourites")
    lst.add_argument("--limit", type=int, default=50)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(command="list", run=_list)

    delete = sub.add_parser("delete", help="remove a record and its files")
    delete.add_argument("record_id")
    delete.set_defaults(command="delete", run=_delete)

    doctor = sub.add_parser("doctor", help="check settings, provider, store and schema; make a minimal video")
    doctor.add_argument("--allow-spend", action="store_true", help="let the generation check spend on a paid provider")
    doctor.add_argument("--json", action="store_true")
    doctor.set_defaults(command="doctor", run=_doctor)


def _add_emulator_command(sub: Any) -> None:
    emu = sub.add_parser("emulator", help="serve the offline Videos API for other tools")
    emu.add_argument("--host", default="127.0.0.1")
    emu.add_argument("--port", type=int, default=8000)
    emu.add_argument("--speed", type=float, default=1.0, help="run the clock N times faster")
    emu.add_argument("--fault", action="append", default=[], metavar="NAME=RATE", help="inject faults (repeatable)")
    emu.add_argument("--latency-ms", type=int, default=0)
    emu.add_argument("--state-dir", type=Path, help="keep jobs and files here (default: a temp folder)")
    emu.add_argument(
        "--api-key",
        help="accept only this bearer key (default: SORANB_EMULATOR_API_KEY, else any key; a request "
        "without one always gets 401)",
    )
    emu.add_argument(
        "--webhook-url",
        action="append",
        default=[],
        metavar="URL",
        help="send signed video.completed / video.failed events here (repeatable; or SORANB_EMULATOR_WEBHOOK_URLS)",
    )
    emu.add_argument(
        "--webhook-secret",
        metavar="whsec_...",
        help="the secret events are signed with (better: SORANB_EMULATOR_WEBHOOK_SECRET, kept out of `ps`)",
    )
    emu.set_defaults(command="emulator", run=_emulator)


# -- commands -----------------------------------------------------------------------
def _generate(args: argparse.Namespace) -> int:
    image = None
    if args.image is not None:
        try:
            image = ImageInput(args.image.name, args.image.read_bytes())
        except OSError as exc:
            raise RequestInvalid("image", f"cannot read {args.image} ({exc.strerror}); check the path") from None
    request = GenerationRequest(
        args.prompt,
        args.model,
        args.size,
        args.seconds,
        image=image,
        fit=args.fit,
        characters=tuple(args.character),
        image_url=args.image_url,
        image_file_id=args.image_file_id,
    )
    _use_user_models()
    request.prepared()  # bad input fails here, before any service starts
    with _open_service() as service:
        record = service.generate(request)  # a transient failure leaves it pending; the poller retries
        if args.wait:
            with _ProgressBar(service, sys.stderr, quiet=args.json):
                (record,) = service.wait([record.id], timeout=args.timeout)
        _print_records(service, [record], as_json=args.json, single=True)
        if args.wait and record.is_open:
            return _timed_out([record], args.timeout)
        if _not_sent([record]):
            return EXIT_NOT_SENT
        return 0 if record.status in (Status.COMPLETED, Status.PENDING, Status.PROCESSING) else 1


def _not_sent(records: list[GenerationRecord]) -> bool:
    """Say so when a job could not be sent (the provider did not answer): the exit code must tell a script."""
    waiting = [r for r in records if r.status == Status.PENDING and r.metadata.get("waiting_reason")]
    if not waiting:
        return False
    one = len(records) == 1
    what = "the job was" if one else f"{len(waiting)} of {len(records)} jobs were"
    kept = (
        "the record is kept, and `soranb wait` sends it"
        if one
        else "the records are kept, and `soranb wait` sends them"
    )
    print(f"soranb: {what} not sent ({waiting[0].metadata['waiting_reason']}); {kept}", file=sys.stderr)
    return True


def _derive(args: argparse.Namespace) -> int:
    """`soranb extend` / `soranb edit`: a new record made from a completed one."""
    with _open_service() as service:
        if args.command == "extend":
            record = service.extend(args.record_id, args.prompt, args.seconds)
        else:
            record = service.edit(args.record_id, args.prompt)
        if args.wait and record.is_open:
            with _ProgressBar(service, sys.stderr, quiet=args.json):
                (record,) = service.wait([record.id], timeout=args.timeout)
        _print_records(service, [record], as_json=args.json, single=True)
        if args.wait and record.is_open:
            return _timed_out([record], args.timeout)
        return 0 if record.status in (Status.COMPLETED, Status.PROCESSING) else 1


def _character_create(args: argparse.Namespace) -> int:
    with _open_service(poll=False) as service:
        made = service.create_character(args.name, args.video)
    _print_character(made, as_json=args.json)
    return 0


def _character_show(args: argparse.Namespace) -> int:
    with _open_service(poll=False) as service:
        found = service.get_character(args.character_id)
    _print_character(found, as_json=args.json)
    return 0


def _print_character(character: Any, *, as_json: bool) -> None:
    data = {"id": character.id, "name": character.name, "created_at": character.created_at}
    shown = "".join(c if c.isprintable() else "?" for c in character.name)  # a provider's text, not terminal codes
    print(json.dumps(data) if as_json else f"{character.id}  {shown}")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _wait(args: argparse.Namespace) -> int:
    with _open_service() as service:
        with _ProgressBar(service, sys.stderr, quiet=args.json):
            records = service.wait_all(timeout=args.timeout)
        _print_records(service, records, as_json=args.json)
        if any(r.is_open for r in records):
            return _timed_out(records, args.timeout)
        return 0 if all(r.status == Status.COMPLETED for r in records) else 1


def _timed_out(records: list[GenerationRecord], timeout: float | None) -> int:
    still_open = sum(r.is_open for r in records)
    print(
        f"soranb: {still_open} job(s) still open after --timeout {timeout:g} s; they are kept, "
        "and `soranb wait` resumes them",
        file=sys.stderr,
    )
    return EXIT_STILL_OPEN


def _list(args: argparse.Namespace) -> int:
    query = RecordQuery(
        statuses=frozenset({Status(args.status)}) if args.status else None,
        model=args.model,
        search=args.search,
        tags=frozenset(clean_tags(args.tag)) or None,
        favourite=True if args.favourite else None,
        limit=args.limit,
    )
    with _open_service(poll=False, browse=True) as service:
        _print_records(service, service.list_records(query), as_json=args.json)
    return 0


def _delete(args: argparse.Namespace) -> int:
    with _open_service(poll=False) as service:
        kept = service.delete(args.record_id)
    print(f"deleted {args.record_id}" + (f" here; {kept}" if kept else ""))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    with _open_service(poll=False) as service:
        results = []
        for name in service.CHECKS:
            result = service.run_check(name, allow_spend=args.allow_spend)
            results.append(result)
            if not args.json:
                mark = {"ok": "ok  ", "failed": "FAIL", "skipped": "skip"}[result.status]
                print(f"[{mark}] {name:<13} {result.summary}")
        if args.json:
            print(json.dumps([r.__dict__ for r in results], indent=2))
    return 0 if all(r.ok for r in results) else 1


def _emulator(args: argparse.Namespace) -> int:
    import logging

    from .emulator import EmulatorConfig, parse_fault, serve
    from .emulator.server import exposure_warning

    try:
        faults = dict(parse_fault(spec) for spec in args.fault)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    overrides: dict[str, Any] = {"speed": args.speed, "faults": faults, "latency_ms": args.latency_ms}
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir
    if args.api_key:
        overrides["api_key"] = args.api_key
    if args.webhook_url:
        overrides["webhook_urls"] = tuple(args.webhook_url)
    if args.webhook_secret:
        overrides["webhook_secret"] = args.webhook_secret
    try:
        config = EmulatorConfig.from_env(**overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(f"soranb emulator on http://{args.host}:{args.port}/v1 (speed x{config.speed:g})", file=sys.stderr)
    if warning := exposure_warning(args.host, config.api_key):
        print(warning, file=sys.stderr)
    serve(config, host=args.host, port=args.port)
    return 0


# -- helpers -----------------------------------------------------------------------------
def _use_user_models() -> None:
    """Let the catalog know the user's own models (soranb-models.toml) before a request is checked."""
    from .catalog import add_models
    from .config import Settings

    add_models(Settings.from_env(provider_keys=False).models)


def _open_service(*, poll: bool = True, browse: bool = False) -> VideoService:
    """The service of one command; `browse`: a command that only reads or marks the history (it never
    builds the provider, so the keyring is not asked for the provider's key: see `Settings.from_env`)."""
    from .config import Settings
    from .service import VideoService

    return VideoService(Settings.from_env(provider_keys=not browse), autostart=poll)


def _print_records(
    service: ServiceLike, records: list[GenerationRecord], *, as_json: bool, single: bool = False
) -> None:
    rows = [_record_json(service, r) for r in records]
    if as_json:
        print(json.dumps(rows[0] if single else rows, indent=None if single else 2))
        return
    if not rows:
        print("no records")
    for row in rows:
        prompt = row["prompt"] if len(row["prompt"]) <= 60 else row["prompt"][:57] + "..."
        print(f"{row['id']}  {row['status']:<10} {row['model']:<10} {row['size']:<9} {row['seconds']:>2}s  {prompt}")
        for label in ("video_path", "thumbnail_path", "error_message"):
            if row.get(label):
                print(f"    {label.replace('_', ' ')}: {row[label]}")
        if row.get("tags") or row.get("favourite") or row.get("note"):
            star = "★ favourite  " if row.get("favourite") else ""
            print(f"    {star}tags: {', '.join(row.get('tags') or ()) or '-'}  note: {row.get('note') or '-'}")


def _record_json(service: ServiceLike, record: GenerationRecord) -> dict[str, Any]:
    data = record.to_dict()
    for field, key in (("video_path", record.video_key), ("thumbnail_path", record.thumbnail_key)):
        if key:
            path = service.media_path(key)
            data[field] = str(path) if path is not None else service.media_url(key)
    return data


class _ProgressBar:
    """A one-line progress bar on stderr fed by service events (quiet with --json)."""

    def __init__(self, service: ServiceLike, stream: TextIO, *, quiet: bool = False) -> None:
        self._service = service
        self._stream = stream
        self._quiet = quiet or not hasattr(stream, "write")
        self._progress: dict[str, int] = {}
        self._lock = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    def __enter__(self) -> _ProgressBar:
        if not self._quiet:
            self._unsubscribe = self._service.subscribe(self._on_event)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._stream.write("\n")
            self._stream.flush()

    def _on_event(self, event: ServiceEvent) -> None:
        if event.record is None:
            return
        with self._lock:
            done = 100 if not event.record.is_open else event.record.progress
            self._progress[event.record.id] = done
            mean = sum(self._progress.values()) / len(self._progress)
            filled = int(mean / 100 * 30)
            bar = "#" * filled + "-" * (30 - filled)
            self._stream.write(f"\r[{bar}] {mean:5.1f}% of {len(self._progress)} job(s)")
            self._stream.flush()


# -- batches, tags, reports ---------------------------------------------------------------------------
def _add_batch_and_tag_commands(sub: Any) -> None:
    batch = sub.add_parser(
        "batch", help="make every request of a JSONL (as OpenAI's `sora` CLI create-batch reads) or CSV file, once"
    )
    batch.add_argument("file", type=Path, help="JSONL: a JSON object or a bare prompt per line; CSV: a header row")
    batch.add_argument("--dry-run", action="store_true", help="check every line and print the count and cost")
    batch.add_argument("--wait", action="store_true", help="wait for the videos, showing progress")
    batch.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    batch.add_argument("--key", help="the batch's name (default: the file's name); lines made under it never repeat")
    batch.add_argument("--model", default=catalog.DEFAULT_MODEL, help="for lines that name none")
    batch.add_argument("--size", default=catalog.DEFAULT_SIZE, help="for lines that name none")
    batch.add_argument("--seconds", type=int, default=catalog.DEFAULT_SECONDS, help="for lines that name none")
    batch.add_argument("--json", action="store_true", help="print the records as JSON")
    batch.set_defaults(command="batch", run=_batch)

    tag = sub.add_parser("tag", help="add tags to a record")
    tag.add_argument("record_id")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.set_defaults(command="tag", run=_annotate)
    untag = sub.add_parser("untag", help="remove tags from a record")
    untag.add_argument("record_id")
    untag.add_argument("tags", nargs="+", metavar="TAG")
    untag.set_defaults(command="untag", run=_annotate)
    fav = sub.add_parser("favourite", help="mark a record as a favourite (--off to unmark)")
    fav.add_argument("record_id")
    fav.add_argument("--off", action="store_true")
    fav.set_defaults(command="favourite", run=_annotate)
    note = sub.add_parser("note", help="set a record's note (an empty text removes it)")
    note.add_argument("record_id")
    note.add_argument("text")
    note.set_defaults(command="note", run=_annotate)

    budget = sub.add_parser("budget", help="what today and this run have cost, against SORANB_BUDGET_USD")
    budget.add_argument("--json", action="store_true")
    budget.set_defaults(command="budget", run=_budget)

    report = sub.add_parser("report", help="write the history as one HTML page that reads offline")
    report.add_argument("out", type=Path, help="the HTML file to write")
    report.add_argument("--tag", action="append", default=[], help="only records with this tag (repeatable)")
    report.add_argument("--favourite", action="store_true", help="only favourites")
    report.add_argument("--since", help="only records made on or after this day (YYYY-MM-DD, local time)")
    report.add_argument("--limit", type=int, default=1000, help="at most this many records, newest first")
    report.set_defaults(command="report", run=_report)


def _batch(args: argparse.Namespace) -> int:
    from .batch import read_batch_file

    _use_user_models()
    lines = read_batch_file(args.file, model=args.model, size=args.size, seconds=args.seconds)  # bad lines stop here
    key = args.key or args.file.name
    with _open_service(poll=not args.dry_run) as service:
        plan = service.plan_batch(lines, batch_key=key)
        if args.dry_run:
            budget = service.budget()
            if args.json:
                left = None if budget.remaining is None else str(budget.remaining)
                summary = {
                    "key": key,
                    "lines": len(plan.items),
                    "made_already": len(plan.done),
                    "to_make": len(plan.to_make),
                    "cost_usd": str(plan.cost),
                    "budget_remaining_usd": left,
                }
                print(json.dumps(summary))
            else:
                print(f"{args.file.name} (batch {key!r}): {plan.describe()}")
                for item in plan.items:
                    request, state = item.line.request, "made" if item.existing else "to make"
                    prompt = request.prompt if len(request.prompt) <= 50 else request.prompt[:47] + "..."
                    print(f"  line {item.line.number:>4}  {state:<8} {request.model:<10} {request.size:<9} "
                          f"{request.seconds:>2}s  ${request.cost:.2f}  {prompt}")  # fmt: skip
                print(f"budget: {budget.describe()}")
            return 0
        if not args.json:
            print(f"{args.file.name} (batch {key!r}): {plan.describe()}", file=sys.stderr)
        records = service.generate_many(lines, batch_key=key)
        if args.wait:
            with _ProgressBar(service, sys.stderr, quiet=args.json):
                records = service.wait([r.id for r in records], timeout=args.timeout)
        _print_records(service, records, as_json=args.json)
        if args.wait and any(r.is_open for r in records):
            return _timed_out(records, args.timeout)
        if _not_sent(records):
            return EXIT_NOT_SENT
        return 0 if all(r.status in (Status.COMPLETED, Status.PENDING, Status.PROCESSING) for r in records) else 1


def _annotate(args: argparse.Namespace) -> int:
    with _open_service(poll=False, browse=True) as service:
        if args.command == "tag":
            record = service.tag(args.record_id, *args.tags)
        elif args.command == "untag":
            record = service.untag(args.record_id, *args.tags)
        elif args.command == "favourite":
            record = service.set_favourite(args.record_id, not args.off)
        else:
            record = service.set_note(args.record_id, args.text)
        _print_records(service, [record], as_json=False, single=True)
    return 0


def _budget(args: argparse.Namespace) -> int:
    with _open_service(poll=False, browse=True) as service:
        budget = service.budget()
    if args.json:
        amounts = {"spent": budget.spent, "limit": budget.limit, "remaining": budget.remaining}
        print(json.dumps({f"{k}_usd": None if v is None else str(v) for k, v in amounts.items()}))
    else:
        print(budget.describe())
    return 0


def _report(args: argparse.Namespace) -> int:
    from datetime import datetime

    from .report_page import write_report

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise RequestInvalid("since", f"--since {args.since!r} is not a date; use YYYY-MM-DD") from None
        since = since if since.tzinfo else since.astimezone()  # a bare date means local midnight
    tags = clean_tags(args.tag)
    query = RecordQuery(tags=frozenset(tags) or None, favourite=True if args.favourite else None, since=since)
    filters = ", ".join(
        [f"tag {t}" for t in tags]
        + (["favourites"] if args.favourite else [])
        + ([f"since {args.since}"] if since else [])
    )
    with _open_service(poll=False, browse=True) as service:
        count = write_report(service, args.out, query, filters=filters, limit=args.limit)
    print(f"wrote {args.out} ({count} record(s))")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
