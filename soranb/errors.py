"""Every error soranb raises, in one tree.

    SoranbError                      anything soranb raises on purpose
    ├── ConfigError                  a setting is missing or malformed
    ├── InvalidTransition            a status change the record's machine forbids (a bug, not input)
    ├── RequestInvalid               a generation request breaks a rule; `field` names it
    │   └── BudgetExceeded           it would take the day's (or session's) spending past its budget
    ├── ProviderError                the Videos API (or the way to it) said no
    │   ├── AuthenticationFailed     401/403: the key is missing, wrong or lacks access
    │   ├── ProviderUnreachable      no answer: DNS, refused connection, timeout, reset
    │   ├── ProviderUnavailable      5xx (after the SDK's retries; a create is never retried)
    │   ├── RateLimited              429 (likewise); `retry_after` in seconds if known
    │   ├── ModelRetired             the provider says the model or endpoint is gone
    │   ├── JobNotFound              404 for a job id
    │   ├── ContentExpired           the job's files are past `expires_at`
    │   ├── ContentIncomplete        a download was cut short or does not decode as a whole video
    │   ├── ProviderAnswerInvalid    the provider's answer breaks the API's shape (bad id, status, number)
    │   └── ProviderRejected         any other 4xx; carries the provider's message
    └── StoreError                   the history store failed
        ├── StoreUnavailable         cannot open or reach the store
        ├── StoreCorrupt             the store's file or schema is damaged
        ├── StoreWriteFailed         disk full, read-only folder, quota
        ├── RecordNotFound           no record with that id
        └── RecordConflict           a compare-and-set lost: someone else changed it first

Errors from lower layers (openai, httpx2, sqlite3, supabase) are translated at
their boundary, in exactly one place each, and never carry the API key.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "AuthenticationFailed",
    "BudgetExceeded",
    "ConfigError",
    "ContentExpired",
    "ContentIncomplete",
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
    "RequestInvalid",
    "SoranbError",
    "StoreCorrupt",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
]


class SoranbError(Exception):
    """Base of every error soranb raises on purpose. The message says what to change."""


class ConfigError(SoranbError):
    """A setting is missing or malformed."""


class RequestInvalid(SoranbError, ValueError):
    """A generation request breaks a rule of the API; nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ProviderError(SoranbError):
    """The Videos API, or the network on the way to it, refused or failed."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code


class AuthenticationFailed(ProviderError):
    """The provider rejected the key (401/403)."""


class ProviderUnreachable(ProviderError):
    """No answer from the provider: DNS, refused connection, timeout or reset."""


class ProviderUnavailable(ProviderError):
    """The provider answered 5xx (after the SDK's retries; a create is sent once, `max_retries=0`)."""


class RateLimited(ProviderError):
    """The provider answered 429 (after the SDK's retries; a create is sent once, `max_retries=0`)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class ModelRetired(ProviderError):
    """The provider says the model or the Videos endpoint no longer exists."""


class JobNotFound(ProviderError):
    """The provider knows no job with that id."""


class ContentExpired(ProviderError):
    """The job's files can no longer be downloaded (past `expires_at`)."""


class ContentIncomplete(ProviderError):
    """A downloaded file is shorter than announced, or does not open and decode as the asked video."""


class ProviderAnswerInvalid(ProviderError):
    """The provider answered with something the API never sends (an id like `..`, `progress: "50%"`).

    `job_id` is set when the answer still named a usable job id, so a job that was created (and billed)
    is never lost even when the rest of its answer is broken; `refused_id` is the id text soranb refused
    (too long, a '/', ...), kept so the job it names is not forgotten either.
    """

    def __init__(
        self, message: str, *, job_id: str | None = None, refused_id: str | None = None, **kwargs: object
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.job_id = job_id
        self.refused_id = refused_id


class ProviderRejected(ProviderError):
    """Any other 4xx answer; the message is the provider's own."""


class StoreError(SoranbError):
    """The history store failed."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


class StoreCorrupt(StoreError):
    """The store's file or schema is damaged; nothing was changed."""


class StoreWriteFailed(StoreError):
    """A write failed: disk full, read-only folder or quota."""


class RecordNotFound(StoreError, KeyError):
    """No record with that id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RecordConflict(StoreError):
    """A compare-and-set lost: the record changed since it was read."""


class InvalidTransition(SoranbError, ValueError):
    """A status change the record's machine does not allow (a bug, not user input)."""


class BudgetExceeded(RequestInvalid):
    """A request (or a whole batch) would spend more than `SORANB_BUDGET_USD` allows; nothing of it was
    stored or sent (a batch stopped half-way says what was). `over_usd` says by how much."""

    NOTHING_STORED = "Nothing was stored or sent."

    def __init__(self, message: str, *, over_usd: Decimal | None = None) -> None:
        super().__init__("budget", message)
        self.over_usd = over_usd
