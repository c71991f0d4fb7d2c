"""Batches: many requests made once each, from code or from a file.

    read_batch_file(path)          JSONL (the format of OpenAI's `sora` CLI `create-batch`) or CSV
    plan_batch(requests, key, ...) which lines are made already, which are left, what those cost

A batch line's identity is its request (prompt, model, size, seconds, starting image, fit) plus how
many identical lines came before it in the batch, under the batch's key. That identity becomes the
record's id, so re-running a batch (interrupted halfway, or run twice, even from two processes at
once) finds the lines already stored and makes only the rest: the store's primary key refuses a
second record for the same line. Lines are matched by content, not position, so adding or fixing
a line leaves the others untouched.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import catalog
from .debuglog import DebugLog
from .errors import BudgetExceeded, ProviderError, RequestInvalid
from .records import GenerationRecord
from .request import GenerationRequest, ImageInput
from .store.base import RecordQuery, Store

if TYPE_CHECKING:
    from .protocols import ServiceLike

__all__ = [
    "BatchItem",
    "BatchLine",
    "BatchPlan",
    "StartedLine",
    "line_ids",
    "make_batch",
    "parse_batch",
    "plan_batch",
    "plan_stored",
    "read_batch_file",
    "start_batch",
]

_NAMESPACE = uuid.UUID("5b7c6f0e-3d4a-4c8e-9a51-7f1c2d3e4b60")  # soranb batch lines
_MAX_ERRORS_SHOWN = 20

# The prompt-structuring keys of OpenAI's `sora` CLI, in the order it writes them into the prompt.
_SECTIONS = (
    ("use_case", "Use case"),
    ("scene", "Scene/background"),
    ("subject", "Subject"),
    ("action", "Action"),
    ("camera", "Camera"),
    ("lighting", "Lighting/mood"),
    ("palette", "Color palette"),
    ("style", "Style/format"),
    ("timing", "Timing/beats"),
    ("audio", "Audio"),
    ("text", "Text (verbatim)"),
    ("dialogue", "Dialogue"),
    ("constraints", "Constraints"),
    ("negative", "Avoid"),
)
_IMAGE_KEYS = ("input_reference", "input_reference_path", "input_reference_file")
_UNSUPPORTED = {
    "characters": "characters are not supported by soranb; remove the key",
    "character_ids": "characters are not supported by soranb; remove the key",
    "input_reference_file_id": "soranb sends starting images from local files only; give a path in input_reference",
    "input_reference_url": "soranb fetches no URLs; download the image and give its path in input_reference",
}
_KNOWN = {"prompt", "model", "size", "seconds", "fit", "out", "fields", *_IMAGE_KEYS, *(k for k, _ in _SECTIONS)}


@dataclass(frozen=True)
class BatchLine:
    """One request of a batch and where it came from (its line in a file, or its place in a list)."""

    number: int
    request: GenerationRequest


@dataclass(frozen=True)
class BatchItem:
    line: BatchLine
    record_id: str  # the line's identity: the id its record has (or will have)
    existing: GenerationRecord | None  # the record already made for this line, if any

    @property
    def cost(self) -> Decimal:
        return self.line.request.cost


@dataclass(frozen=True)
class BatchPlan:
    """A batch before it starts: what is left to make and what that costs."""

    key: str
    items: tuple[BatchItem, ...]

    @property
    def to_make(self) -> tuple[BatchItem, ...]:
        return tuple(i for i in self.items if i.existing is None)

    @property
    def done(self) -> tuple[BatchItem, ...]:
        return tuple(i for i in self.items if i.existing is not None)

    @property
    def cost(self) -> Decimal:
        """The list price of the lines still to make."""
        return sum((i.cost for i in self.to_make), Decimal(0))

    def describe(self) -> str:
        made = f", {len(self.done)} made already" if self.done else ""
        return f"{len(self.items)} video(s){made}; {len(self.to_make)} to make, costing ${self.cost:.2f}"


def line_ids(requests: Sequence[GenerationRequest], key: str, scope: str = "") -> list[str]:
    """The record id of each request: its content, its occurrence among identical ones, the batch key,
    and the store's user (`scope`), so two users' identical batches never meet."""
    seen: Counter[str] = Counter()
    ids = []
    for request in requests:
        image = hashlib.sha256(request.image.data).hexdigest() if request.image else ""
        content = json.dumps(
            [request.prompt, request.model, request.size, int(request.seconds), image, request.fit or ""]
        )
        seen[content] += 1
        ids.append(str(uuid.uuid5(_NAMESPACE, json.dumps([scope, key, content, seen[content]]))))
    return ids


def plan_batch(
    lines: Sequence[BatchLine], key: str, existing: Mapping[str, GenerationRecord], scope: str = ""
) -> BatchPlan:
    ids = line_ids([line.request for line in lines], key, scope)
    return BatchPlan(key, tuple(BatchItem(line, rid, existing.get(rid)) for line, rid in zip(lines, ids, strict=True)))


async def plan_stored(store: Store, requests: Iterable[GenerationRequest | BatchLine], key: str) -> BatchPlan:
    """The plan of a batch against the store: every line checked, the ones made already found."""
    given = list(requests)
    lines = [r if isinstance(r, BatchLine) else BatchLine(n, r) for n, r in enumerate(given, start=1)]
    from_file = all(isinstance(r, BatchLine) for r in given)
    check_lines(lines, f"batch {key!r}", "line" if from_file else "request")
    if not key.strip():
        raise RequestInvalid("batch", "the batch key is empty; name the batch (e.g. the file it came from)")
    scope = store.user_id or ""  # the signed-in user of a shared store
    ids = line_ids([line.request for line in lines], key, scope)
    existing: dict[str, GenerationRecord] = {}
    for start in range(0, len(ids), 100):
        chunk = frozenset(ids[start : start + 100])
        for record in await store.query(RecordQuery(ids=chunk, limit=len(chunk))):
            existing[record.id] = record
    return plan_batch(lines, key, existing, scope)


Spend = Callable[..., Awaitable[GenerationRecord]]


async def make_batch(plan: BatchPlan, spend: Spend, store: Store, log: DebugLog) -> list[GenerationRecord]:
    """Make the plan's missing lines through the service's one spending path; the records in order.

    A line the provider refuses or does not answer is stored failed (or pending, to be retried):
    the batch goes on with the next line.
    """
    made: dict[str, GenerationRecord] = {i.record_id: i.existing for i in plan.done if i.existing is not None}
    for done, item in enumerate(plan.to_make):
        metadata = {"batch_key": plan.key, "batch_line": item.line.number}
        try:
            made[item.record_id] = await spend(item.line.request, record_id=item.record_id, metadata=metadata)
        except ProviderError as exc:
            log.warning(f"batch {plan.key!r} line {item.line.number}: {exc}")
            made[item.record_id] = await store.get(item.record_id)
        except BudgetExceeded as exc:
            if done:  # others spent meanwhile (another kernel, a CLI): say exactly what this run stored
                raise _stopped_half_way(plan, done, item, exc) from None
            raise
    return [made[i.record_id] for i in plan.items]


def _stopped_half_way(plan: BatchPlan, done: int, item: BatchItem, exc: BudgetExceeded) -> BudgetExceeded:
    stored = plan.to_make[:done]
    cost = sum((i.cost for i in stored), Decimal(0))
    names = "; ".join(f"line {i.line.number} ({i.line.request.prompt[:60]!r})" for i in stored)
    after = len(plan.to_make) - done - 1
    rest = f"Line {item.line.number} and the {after} after it were" if after else f"Line {item.line.number} was"
    reason = str(exc).replace(BudgetExceeded.NOTHING_STORED, f"{rest} not stored or sent.")
    return BudgetExceeded(
        f"the budget stopped this batch half-way: {done} of the {len(plan.to_make)} video(s) to make were stored "
        f"and sent (${cost.quantize(Decimal('0.01'))}: {names}), then line {item.line.number} "
        f"({item.line.request.prompt[:60]!r}) no longer fit: {reason} Run it again under the same key to make "
        "only the rest once the budget allows.",
        over_usd=exc.over_usd,
    )


def check_lines(lines: Sequence[BatchLine], source: str = "the batch", unit: str = "line") -> None:
    """Raise one `RequestInvalid` naming every bad line and what to change (nothing is stored or sent)."""
    problems = [f"{_where(source, ln.number, unit)}: {problem}" for ln in lines for problem in ln.request.problems()]
    _raise_if(problems, source)
    if not lines:
        raise RequestInvalid("batch", f"{source} has no requests; add one prompt per line")


def read_batch_file(
    path: Path, *, model: str = catalog.DEFAULT_MODEL, size: str = catalog.DEFAULT_SIZE, seconds: int = 4
) -> list[BatchLine]:
    """The requests of a JSONL or CSV (`.csv`) batch file; every bad line is named at once."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise RequestInvalid("batch", f"cannot read {path} ({why}); check the path") from None
    kind = "csv" if Path(path).suffix.lower() == ".csv" else "jsonl"
    return parse_batch(text, kind=kind, base_dir=Path(path).parent, source=Path(path).name, model=model, size=size,
                       seconds=seconds)  # fmt: skip


def parse_batch(
    text: str,
    *,
    kind: str = "jsonl",
    base_dir: Path | None = None,
    source: str = "the batch",
    model: str = catalog.DEFAULT_MODEL,
    size: str = catalog.DEFAULT_SIZE,
    seconds: int = 4,
) -> list[BatchLine]:
    """Parse batch text: JSONL (an object or a bare prompt per line; `#` comments and blank lines
    skipped) or CSV with a header row. Lines without model, size or seconds take the defaults."""
    rows = _csv_rows(text) if kind == "csv" else _jsonl_rows(text)
    defaults = {"model": model, "size": size, "seconds": seconds}
    lines: list[BatchLine] = []
    problems: list[str] = []
    for number, row in rows:
        try:
            if isinstance(row, str):
                row = {"prompt": row}
            line = BatchLine(number, _request(row, defaults, base_dir))
        except RequestInvalid as exc:
            problems.append(f"{_where(source, number)}: {exc}")
            continue
        problems += [f"{_where(source, number)}: {problem}" for problem in line.request.problems()]
        lines.append(line)
    _raise_if(problems, source)
    check_lines(lines, source)
    return lines


# -- reading ---------------------------------------------------------------------------------


def _jsonl_rows(text: str) -> Iterable[tuple[int, Any]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("{", '"', "[")):
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, _Bad(f"this is not valid JSON ({exc.msg} at column {exc.colno}); fix the line")
                continue
            except RecursionError:  # Python's parser gives up on `[[[[...` long before memory does
                yield number, _Bad("this JSON is nested too deeply to read; give one flat object with a prompt")
                continue
            if not isinstance(value, dict | str):
                yield number, _Bad("give a JSON object with a prompt, or the prompt as plain text")
                continue
            yield number, value
        else:
            yield number, line  # a bare prompt, as OpenAI's `sora` CLI reads it


def _csv_rows(text: str) -> Iterable[tuple[int, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        yield 1, _Bad(f"the header row cannot be read ({exc}); name the columns, with a `prompt` column")
        return
    if not header or "prompt" not in [(f or "").strip() for f in header]:
        yield 1, _Bad("the first row must be a header naming the columns, with a `prompt` column")
        return
    for number, row in _csv_records(reader):
        if isinstance(row, _Bad):
            yield number, row
            continue
        cells = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
        if None in row:
            yield reader.line_num, _Bad("this row has more cells than the header has columns; quote cells with commas")
            continue
        if not any(cells.values()) or next(iter(cells.values()), "").startswith("#"):
            continue
        yield reader.line_num, {k: v for k, v in cells.items() if v}


def _csv_records(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str | Any, str | Any] | _Bad]]:
    """The reader's rows with their line numbers; a row the csv module refuses (a cell over its 128 KB
    limit) is a `_Bad` naming the line it starts on, and reading goes on after it, so every bad line is
    still named at once."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            limit = csv.field_size_limit() // 1024
            yield start, _Bad(f"a cell is too long or malformed ({exc}); keep each cell under {limit} KB")
            continue
        yield reader.line_num, row


class _Bad:
    def __init__(self, message: str) -> None:
        self.message = message


def _request(row: Any, defaults: Mapping[str, Any], base_dir: Path | None) -> GenerationRequest:
    if isinstance(row, _Bad):
        raise RequestInvalid("batch", row.message)
    for key, why in _UNSUPPORTED.items():
        if key in row:
            raise RequestInvalid(key, f"{key}: {why}")
    unknown = sorted(set(row) - _KNOWN - set(_UNSUPPORTED))
    if unknown:
        raise RequestInvalid(
            "batch", f"unknown key {', '.join(map(repr, unknown))}; use {', '.join(sorted(_KNOWN - {'out'}))}"
        )
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestInvalid("prompt", 'the prompt is missing or empty; add a "prompt" with the video you want')
    raw_seconds = row.get("seconds", defaults["seconds"])
    try:
        seconds = int(str(raw_seconds).strip())
    except ValueError:
        raise RequestInvalid("seconds", f"seconds {raw_seconds!r} is not a whole number; use 4, 8 or 12") from None
    fit = row.get("fit")
    if fit not in (None, "crop", "pad"):
        raise RequestInvalid("fit", f'fit {fit!r}: use "crop" or "pad"')
    return GenerationRequest(
        prompt=_structured_prompt(prompt.strip(), row),
        model=str(row.get("model") or defaults["model"]).strip(),
        size=str(row.get("size") or defaults["size"]).strip().lower(),
        seconds=seconds,
        image=_image(row, base_dir),
        fit=fit,
    )


def _structured_prompt(prompt: str, row: Mapping[str, Any]) -> str:
    """The `sora` CLI's structured keys (scene, camera, ...) folded into the prompt in its layout;
    a line without them keeps its prompt exactly as written."""
    fields = dict(row.get("fields") or {}) if isinstance(row.get("fields"), dict) else {}
    fields |= {k: row[k] for k, _ in _SECTIONS if row.get(k)}
    if not any(fields.get(k) for k, _ in _SECTIONS):
        return prompt
    sections = [f"Use case: {fields['use_case']}"] if fields.get("use_case") else []
    sections.append(f"Primary request: {prompt}")
    for key, label in _SECTIONS[1:]:
        value = fields.get(key)
        if not value:
            continue
        if key == "text":
            sections.append(f'{label}: "{value}"')
        elif key == "dialogue":
            sections.append(f"Dialogue:\n<dialogue>\n{str(value).strip()}\n</dialogue>")
        else:
            sections.append(f"{label}: {value}")
    return "\n".join(sections)


def _image(row: Mapping[str, Any], base_dir: Path | None) -> ImageInput | None:
    given = [k for k in _IMAGE_KEYS if row.get(k)]
    if not given:
        return None
    if len(given) > 1:
        raise RequestInvalid("image", f"give one starting image, not {' and '.join(given)}")
    value = row[given[0]]
    if not isinstance(value, str):
        raise RequestInvalid(
            "image", "input_reference must be the path of a local JPEG, PNG or WebP file (soranb fetches no URLs)"
        )
    candidates = [Path(value).expanduser()]
    if base_dir is not None and not candidates[0].is_absolute():
        candidates.insert(0, base_dir / candidates[0])  # next to the batch file first, then the working folder
    for path in candidates:
        if path.is_file():
            try:
                return ImageInput(path.name, path.read_bytes())
            except OSError as exc:
                raise RequestInvalid("image", f"cannot read {path} ({exc.strerror}); check the file") from None
    raise RequestInvalid("image", f"starting image {value!r} not found next to the batch file or here; fix the path")


def _where(source: str, number: int, unit: str = "line") -> str:
    return f"{source} {unit} {number}" if number else source


def _raise_if(problems: list[str], source: str) -> None:
    if not problems:
        return
    shown = problems[:_MAX_ERRORS_SHOWN]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    raise RequestInvalid(
        "batch",
        f"{len(problems)} problem(s) in {source}; nothing was stored or sent:\n  " + "\n  ".join(shown) + more,
    )


@dataclass(frozen=True)
class StartedLine:
    """One request of a notebook batch: its record, and whether an earlier run had made it already."""

    record: GenerationRecord
    reused: bool


def start_batch(
    service: ServiceLike, requests: Iterable[GenerationRequest], *, new: bool = False, key: str = "notebook batch"
) -> list[StartedLine]:
    """The notebook's batch cell: one record per request, made once however often Run All runs it.

    It is `service.generate_many` under a fixed key (so a re-run, a restart or a second kernel reuses
    the records); `new=True` asks for new videos under a fresh key.
    """
    requests = list(requests)
    batch_key = f"{key} {uuid.uuid4().hex[:8]}" if new else key
    made_before = {item.record_id for item in service.plan_batch(requests, batch_key=batch_key).done}
    return [StartedLine(r, r.id in made_before) for r in service.generate_many(requests, batch_key=batch_key)]
