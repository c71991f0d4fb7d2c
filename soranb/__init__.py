"""soranb: launch, watch, keep and share Sora-2-shaped video generations from JupyterLab.

    from soranb import BudgetExceeded, GenerationRequest, VariationGrid, app, get_service

    service = get_service()                  # the one shared service of this kernel
    app(service)                             # form, notices and history in a notebook
    VariationGrid(service)                   # prompts x settings, priced first, as a grid of live cards
    try:
        service.generate(GenerationRequest("a red fox running through snow", "sora-2", "1280x720", 4))
    except BudgetExceeded as refused:     # every soranb error is exported, under SoranbError
        print(refused)

The names below are the public surface (`__all__`, kept sorted by a test). Each is
loaded on first use, so `import soranb` stays light: the CLI never loads the
widgets, and nothing loads the SDK or the emulator until a job needs them. The
submodules stay importable, but only these names are promised.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "AuthenticationFailed",
    "BudgetExceeded",
    "CompareView",
    "ConfigError",
    "ContentExpired",
    "ContentIncomplete",
    "Credentials",
    "DiagnosticsPanel",
    "GenerationForm",
    "GenerationRecord",
    "GenerationRequest",
    "HistoryGrid",
    "ImageInput",
    "InvalidTransition",
    "JobNotFound",
    "ModelRetired",
    "ProviderAnswerInvalid",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "RateLimited",
    "RecordConflict",
    "RecordNotFound",
    "RecordQuery",
    "RequestInvalid",
    "ServiceLike",
    "Settings",
    "SoranbError",
    "Status",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
    "VariationGrid",
    "VideoService",
    "__version__",
    "app",
    "check_results_html",
    "esc",
    "get_service",
    "history_table_html",
    "media_src",
    "plan_variations",
    "report_html",
    "restart_note",
    "start_batch",
    "summary_html",
]

# name -> the module that defines it
_HOMES = {
    "AuthenticationFailed": "soranb.errors",
    "BudgetExceeded": "soranb.errors",
    "CompareView": "soranb.widgets",
    "ConfigError": "soranb.errors",
    "ContentExpired": "soranb.errors",
    "ContentIncomplete": "soranb.errors",
    "Credentials": "soranb.widgets",
    "DiagnosticsPanel": "soranb.widgets",
    "GenerationForm": "soranb.widgets",
    "GenerationRecord": "soranb.records",
    "GenerationRequest": "soranb.request",
    "HistoryGrid": "soranb.widgets",
    "ImageInput": "soranb.request",
    "InvalidTransition": "soranb.errors",
    "JobNotFound": "soranb.errors",
    "ModelRetired": "soranb.errors",
    "ProviderAnswerInvalid": "soranb.errors",
    "ProviderError": "soranb.errors",
    "ProviderRejected": "soranb.errors",
    "ProviderUnavailable": "soranb.errors",
    "ProviderUnreachable": "soranb.errors",
    "RateLimited": "soranb.errors",
    "RecordConflict": "soranb.errors",
    "RecordNotFound": "soranb.errors",
    "RecordQuery": "soranb.store.base",
    "RequestInvalid": "soranb.errors",
    "ServiceLike": "soranb.protocols",
    "Settings": "soranb.config",
    "SoranbError": "soranb.errors",
    "Status": "soranb.records",
    "StoreCorrupt": "soranb.errors",
    "StoreError": "soranb.errors",
    "StoreUnavailable": "soranb.errors",
    "StoreWriteFailed": "soranb.errors",
    "VariationGrid": "soranb.widgets",
    "VideoService": "soranb.service",
    "app": "soranb.widgets",
    "check_results_html": "soranb.report",
    "esc": "soranb.report",
    "get_service": "soranb.session",
    "history_table_html": "soranb.report",
    "media_src": "soranb.jupyter",
    "plan_variations": "soranb.variation",
    "report_html": "soranb.sharing",
    "restart_note": "soranb.widgets",
    "start_batch": "soranb.batch",
    "summary_html": "soranb.report",
}

if TYPE_CHECKING:
    from soranb.batch import start_batch
    from soranb.config import Settings
    from soranb.errors import (
        AuthenticationFailed,
        BudgetExceeded,
        ConfigError,
        ContentExpired,
        ContentIncomplete,
        InvalidTransition,
        JobNotFound,
        ModelRetired,
        ProviderAnswerInvalid,
        ProviderError,
        ProviderRejected,
        ProviderUnavailable,
        ProviderUnreachable,
        RateLimited,
        RecordConflict,
        RecordNotFound,
        RequestInvalid,
        SoranbError,
        StoreCorrupt,
        StoreError,
        StoreUnavailable,
        StoreWriteFailed,
    )
    from soranb.jupyter import media_src
    from soranb.protocols import ServiceLike
    from soranb.records import GenerationRecord, Status
    from soranb.report import check_results_html, esc, history_table_html, summary_html
    from soranb.request import GenerationRequest, ImageInput
    from soranb.service import VideoService
    from soranb.session import get_service
    from soranb.sharing import report_html
    from soranb.store.base import RecordQuery
    from soranb.variation import plan_variations
    from soranb.widgets import (
        CompareView,
        Credentials,
        DiagnosticsPanel,
        GenerationForm,
        HistoryGrid,
        VariationGrid,
        app,
        restart_note,
    )


def __getattr__(name: str) -> Any:
    """Load a public name from its module on first use (PEP 562), then keep it here."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'soranb' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
