"""The diagnostics checks behind `soranb doctor`, the diagnostics notebook and panel.

Each check returns a `CheckResult` and never raises for what it finds: a failure
is a result whose summary says what to change.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .checks import CHECKS, CheckResult
from .debuglog import redact
from .errors import JobNotFound, ModelRetired, ProviderRejected, SoranbError
from .records import Status
from .request import GenerationRequest
from .store.base import RecordQuery

if TYPE_CHECKING:
    from .protocols import ServiceLike
    from .service import VideoService

__all__ = ["MINIMAL_REQUEST", "last_results", "run_check"]

MINIMAL_REQUEST = GenerationRequest(
    prompt="soranb diagnostics: a calm blue sky", model="sora-2", size="720x1280", seconds=4
)
_GENERATION_TIMEOUT_S = 600.0
# The latest result of each check per service, so a panel built after the notebook's check cells
# shows what those cells found instead of "not run".
_RESULTS: weakref.WeakKeyDictionary[Any, dict[str, CheckResult]] = weakref.WeakKeyDictionary()


def last_results(service: ServiceLike) -> dict[str, CheckResult]:
    """The latest result of every check already run on `service` (by any cell or view)."""
    try:
        return dict(_RESULTS.get(service, {}))
    except TypeError:  # a service that cannot be weakly referenced: nothing remembered
        return {}


async def run_check(service: VideoService, name: str, *, allow_spend: bool = False) -> CheckResult:
    checks: dict[str, Callable[[], Awaitable[tuple[str, str, str]]]] = {
        "configuration": lambda: _configuration(service),
        "provider": lambda: _provider(service),
        "store": lambda: _store(service),
        "schema": lambda: _schema(service),
        "generation": lambda: _generation(service, allow_spend),
    }
    if name not in checks:
        raise ValueError(f"unknown check {name!r}; choose one of {', '.join(CHECKS)}")
    started = time.perf_counter()
    try:
        status, summary, detail = await checks[name]()
    except SoranbError as exc:
        status, summary, detail = "failed", str(exc), type(exc).__name__
    except Exception as exc:  # a check must report, not crash the panel
        status, summary, detail = "failed", f"unexpected {type(exc).__name__}: {exc}", ""
    secrets = service.settings.secrets()  # e.g. user:pass inside OPENAI_BASE_URL never reaches the panel
    summary, detail = redact(summary, secrets), redact(detail, secrets)
    result = CheckResult(name, status, summary, detail, time.perf_counter() - started)  # type: ignore[arg-type]
    level = "INFO" if result.status != "failed" else "ERROR"
    service.log.add(level, f"check {name}: {result.status}: {result.summary}")
    with contextlib.suppress(TypeError):  # a service that cannot be weakly referenced: not remembered
        _RESULTS.setdefault(service, {})[name] = result
    return result


async def _configuration(service: VideoService) -> tuple[str, str, str]:
    settings = service.settings
    detail = "\n".join(f"{name}: {source}" for name, source in sorted(settings.sources.items()))
    missing = settings.missing_secrets()
    if missing:
        return "failed", f"missing {', '.join(missing)}: set it in the environment or .env", detail
    return "ok", service.describe(), detail


async def _provider(service: VideoService) -> tuple[str, str, str]:
    provider = service.provider
    try:
        page = await provider.list_page(limit=1)
        seen = f"{len(page.jobs)} recent job{'s' if len(page.jobs) != 1 else ''} visible"
    except (JobNotFound, ModelRetired, ProviderRejected) as exc:  # it answered: a gateway without a list
        seen, detail = "it has no job list: soranb asks for each job instead", str(exc)
    else:
        detail = ""
    supports = provider.describe_capabilities()
    return "ok", f"{provider.label} answered at {provider.base_url} ({seen}; supports: {supports})", detail


async def _store(service: VideoService) -> tuple[str, str, str]:
    total = await service.store.count(RecordQuery())
    open_jobs = await service.store.count(RecordQuery.open_jobs())
    summary = f"{service.store.describe()}: {total} records, {open_jobs} open"
    # The count above worked with the bare project key: a single-user project's policies let it in.
    note = service.store.single_user_warning()
    return "ok", f"{summary}; warning: {note}" if note else summary, note or ""


async def _schema(service: VideoService) -> tuple[str, str, str]:
    problems = await service.store.check_schema()
    if problems:
        return "failed", f"{len(problems)} schema problem(s): {problems[0]}", "\n".join(problems)
    return "ok", "every expected column and media location is there", ""


async def _generation(service: VideoService, allow_spend: bool) -> tuple[str, str, str]:
    request = MINIMAL_REQUEST
    if service.provider_is_paid and not allow_spend:
        return (
            "skipped",
            f"a minimal generation costs ${request.cost:.2f} on {service.provider.label}; "
            "run it with allow_spend=True to spend that",
            "",
        )
    # Stored marked as a diagnostic record, which the history hides: the check must not add "a calm blue
    # sky" to the person's history (every later change keeps the record's metadata).
    # The checks run on the service's loop; the generation goes through the public API from a worker thread.
    record = await asyncio.to_thread(service.generate_diagnostic, request, _GENERATION_TIMEOUT_S)
    if record.status == Status.COMPLETED:
        return "ok", f"a {request.seconds} s {request.size} video was made and stored ({record.id})", ""
    if record.is_open:
        return (
            "failed",
            f"the test job {record.id} is still {record.status} after {_GENERATION_TIMEOUT_S:.0f} s",
            "",
        )
    return "failed", f"the test job {record.id} ended {record.status}: {record.error_message}", ""
