"""DiagnosticsPanel: run each check, watch the debug log live, and ask the provider about recent jobs.

The log view is a few HTML chunks of at most `_CHUNK` lines: a new entry rewrites
only the last chunk, so appending costs one small message however long the log
is, and the oldest chunk is dropped once the cap is reached. The chunks sit in a
box laid out bottom-up (`column-reverse`), which keeps the newest line in view
without any script. DEBUG lines are hidden unless the level filter asks for them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..checks import CheckResult
from ..debuglog import LogEntry
from ..diagnostics import MINIMAL_REQUEST, last_results
from ..events import ServiceEvent
from ..protocols import ServiceLike
from ..records import GenerationRecord
from ..report import check_results_html, esc, format_cost, pretty_json_html, status_badge_html
from ..store.base import RecordQuery
from ._base import StaticReprMixin, close_tree, hold
from .delivery import Delivery
from .style import stylesheet
from .toasts import Toasts, describe_exception, guarded

__all__ = ["DiagnosticsPanel"]

_CHUNK = 50
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}
_LEVEL_COLORS = {"DEBUG": "#6b7280", "INFO": "#111827", "WARNING": "#a16207", "ERROR": "#dc2626"}
_RECENT = 10


def _line_html(entry: LogEntry) -> str:
    color = _LEVEL_COLORS.get(entry.level, "#111827")
    return f'<div style="color:{color}">{esc(entry.format())}</div>'


class _CheckRow(widgets.HBox):
    def __init__(self, name: str, run: Callable[[str], Any], wrap: Callable[..., Any]) -> None:
        self.name = name
        self.status = "not run"
        self.summary_text = ""
        self.badge = widgets.HTML(status_badge_html("not run"), layout={"width": "80px"})
        self.summary = widgets.HTML(layout={"width": "60%"})
        self.run_button = widgets.Button(description="Run", icon="play", layout={"width": "auto"})
        self.run_button.on_click(wrap(lambda _b: run(self.name)))
        super().__init__(
            [
                widgets.HTML(f"<b>{esc(name)}</b>", layout={"width": "120px"}),
                self.badge,
                self.run_button,
                self.summary,
            ]
        )
        self.add_class(f"soranb-check-{name}")

    def show(self, status: str, summary: str, detail: str = "") -> None:
        self.status, self.summary_text = status, summary
        body = esc(summary)
        if detail:
            body += f"<details><summary>details</summary><pre>{esc(detail)}</pre></details>"
        with hold(self.badge, self.summary):
            self.badge.value = status_badge_html(status)
            self.summary.value = body


class DiagnosticsPanel(StaticReprMixin, widgets.VBox):
    """Checks with status badges, a live debug log, and raw provider status for recent jobs."""

    def __init__(self, service: ServiceLike, toasts: Toasts | None = None, max_log_lines: int = 500) -> None:
        self.service = service
        own_toasts = toasts is None
        self.toasts = toasts if toasts is not None else Toasts()
        self.max_log_lines = max(_CHUNK, max_log_lines)
        self._lock = threading.RLock()
        self._guard = guarded(self.toasts)
        self._delivery = Delivery(on_error=lambda exc: self.toasts.error(describe_exception(exc)))
        self.results: dict[str, CheckResult] = {}

        self.paid = service.provider_is_paid
        self.rows = {name: _CheckRow(name, self.run_check, self._guard) for name in service.CHECKS}
        for name, result in last_results(service).items():  # what the cells above already found
            if name in self.rows:
                self.results[name] = result
                self.rows[name].show(result.status, result.summary, result.detail)
        self.allow_spend = widgets.Checkbox(
            value=False,
            description=f"Allow the generation check to start one paid video ({format_cost(MINIMAL_REQUEST.cost)})",
            indent=False,
            layout={"display": "" if self.paid else "none", "width": "auto"},
        )
        self.run_all_button = widgets.Button(description="Run all", icon="play", button_style="primary")
        self.run_all_button.on_click(self._guard(lambda _b: self.run_all()))

        self._build_log()
        self.jobs_box = widgets.VBox()
        self.reload_jobs_button = widgets.Button(description="Reload jobs", icon="repeat", layout={"width": "auto"})
        self.reload_jobs_button.on_click(self._guard(lambda _b: self.reload_jobs()))
        self.status_view = widgets.HTML()
        self._job_rows: dict[str, tuple[widgets.HBox, widgets.HTML]] = {}

        parts: list[widgets.Widget] = [
            stylesheet(),
            widgets.HTML(f"<b>soranb diagnostics</b> · {esc(service.describe())}"),
            *self.rows.values(),
            widgets.HBox([self.run_all_button, self.allow_spend]),
            widgets.HTML("<b>Debug log</b> (newest at the bottom)"),
            self.log_level,
            self.log_box,
            self.clear_log_button,
            widgets.HBox([widgets.HTML(f"<b>Recent jobs</b> (last {_RECENT})"), self.reload_jobs_button]),
            self.jobs_box,
            self.status_view,
        ]
        if own_toasts:
            parts.append(self.toasts)
        super().__init__(parts)
        self.add_class("soranb-diagnostics")

        for entry in service.log.entries()[-self.max_log_lines :]:
            self._append(entry)
        # Log lines and events come from any thread: the views' thread shows them, in order (`Delivery`).
        self._unsubscribe_log: Callable[[], None] | None = service.log.subscribe(
            lambda entry: self._delivery.call(self._append, entry)
        )
        self._unsubscribe: Callable[[], None] | None = service.subscribe(
            lambda event: self._delivery.call(self._on_event, event)
        )
        self.reload_jobs()

    def _build_log(self) -> None:
        """The live debug log: chunks of lines in a box that stays scrolled to the newest, its level and Clear."""
        self._log_lines: list[list[str]] = [[]]  # chunks of rendered lines, oldest first
        self._log_chunks: list[widgets.HTML] = [widgets.HTML()]
        self.log_lines_box = widgets.VBox(list(self._log_chunks))
        self.log_box = widgets.Box(
            [self.log_lines_box],
            layout=widgets.Layout(
                display="flex",
                flex_flow="column-reverse",  # scrolled to the newest line, and it stays there
                max_height="22em",
                overflow="auto",
                border="1px solid #e5e7eb",
                padding="4px",
            ),
        )
        self.log_box.add_class("soranb-log")
        self.log_level = widgets.Dropdown(
            options=[("INFO and up", "INFO"), ("All, with DEBUG", "DEBUG"), ("WARNING and up", "WARNING")],
            value="INFO",
            description="Show",
        )
        self.log_level.observe(self._guard(lambda _c: self._reload_log()), "value")
        self.clear_log_button = widgets.Button(description="Clear log", icon="eraser", layout={"width": "auto"})
        self.clear_log_button.on_click(self._guard(lambda _b: self.clear_log()))

    # -- checks -----------------------------------------------------------------------
    def run_check(self, name: str) -> CheckResult:
        """Run one check; the generation check spends only with consent on a paid provider."""
        row = self.rows[name]
        spend = (not self.paid) or bool(self.allow_spend.value)
        row.show("running", "running…")
        try:
            result: CheckResult = self.service.run_check(name, allow_spend=spend)
        except Exception as exc:
            row.show("failed", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if name == "generation" and self.paid:
                self.allow_spend.value = False  # consent is for one run
        self.results[name] = result
        row.show(result.status, result.summary, result.detail)
        return result

    def run_all(self) -> dict[str, CheckResult]:
        """Every check in order; one failing does not stop the others."""
        spend = self.allow_spend.value
        for name in self.rows:
            if name == "generation":
                self.allow_spend.value = spend
            try:
                self.run_check(name)
            except Exception as exc:  # shown on its row; the toast says which
                self.toasts.error(f"check {name}: {type(exc).__name__}: {exc}")
        return dict(self.results)

    # -- log --------------------------------------------------------------------------
    def _shown(self, entry: LogEntry) -> bool:
        return _LEVELS.get(entry.level, 20) >= _LEVELS.get(str(self.log_level.value), 20)

    def _reload_log(self) -> None:
        """The level filter changed: show the kept entries again through the new filter."""
        self._reset_log()
        for entry in self.service.log.entries()[-self.max_log_lines :]:
            self._append(entry)

    def _append(self, entry: LogEntry) -> None:
        """Any thread: add one line to the last chunk; start a chunk when full; drop the oldest at the cap."""
        if not self._shown(entry):
            return
        line = _line_html(entry)
        with self._lock:
            if len(self._log_lines[-1]) >= _CHUNK:
                self._log_lines.append([])
                self._log_chunks.append(widgets.HTML())
                max_chunks = max(1, self.max_log_lines // _CHUNK)
                dropped = []
                while len(self._log_chunks) > max_chunks:
                    self._log_lines.pop(0)
                    dropped.append(self._log_chunks.pop(0))
                self.log_lines_box.children = tuple(self._log_chunks)
                for chunk in dropped:  # after the box lets go of them
                    chunk.close()
            self._log_lines[-1].append(line)
            self._log_chunks[-1].value = "".join(self._log_lines[-1])

    @property
    def log_line_count(self) -> int:
        with self._lock:
            return sum(len(c) for c in self._log_lines)

    def clear_log(self) -> None:
        self.service.log.clear()
        self._reset_log()

    def _reset_log(self) -> None:
        with self._lock:
            dropped = self._log_chunks[:-1]
            self._log_lines = [[]]
            self._log_chunks = self._log_chunks[-1:]
            self._log_chunks[0].value = ""
            self.log_lines_box.children = tuple(self._log_chunks)
            for chunk in dropped:
                chunk.close()

    # -- recent jobs ------------------------------------------------------------------
    @staticmethod
    def _job_label(record: GenerationRecord) -> str:
        prompt = record.prompt if len(record.prompt) <= 60 else record.prompt[:59] + "…"
        return f"{status_badge_html(record.status.value)} <code>{esc(record.id[:8])}</code> {esc(prompt)}"

    def _job_row(self, record: GenerationRecord) -> tuple[widgets.HBox, widgets.HTML]:
        label = widgets.HTML(self._job_label(record))
        button = widgets.Button(description="Check status", icon="search", layout={"width": "auto"})
        button.on_click(self._guard(lambda _b, rid=record.id: self.show_status(rid)))
        return widgets.HBox([button, label]), label

    def reload_jobs(self) -> None:
        records = self.service.list_records(RecordQuery(limit=_RECENT))
        with self._lock:
            rows = {}
            for record in records:
                existing = self._job_rows.get(record.id)
                rows[record.id] = existing if existing is not None else self._job_row(record)
                rows[record.id][1].value = self._job_label(record)
            self._set_job_rows(rows)

    def _set_job_rows(self, rows: dict[str, tuple[widgets.HBox, widgets.HTML]]) -> None:
        """Lock held: show `rows`, then close the rows no longer shown."""
        gone = [row for rid, (row, _label) in self._job_rows.items() if rid not in rows]
        self._job_rows = rows
        self.jobs_box.children = tuple(row for row, _label in rows.values())
        for row in gone:
            close_tree(row)

    def show_status(self, record_id: str) -> dict[str, Any]:
        """The provider's raw metadata for one job, as pretty, escaped JSON."""
        data: dict[str, Any] = self.service.check_status(record_id)
        self.status_view.value = f"<b>{esc(record_id)}</b>{pretty_json_html(data)}"
        return data

    def _on_event(self, event: ServiceEvent) -> None:
        """The views' thread (handed over by `Delivery`): keep the recent-jobs labels current."""
        record = event.record
        if record is None:
            return
        with self._lock:
            if event.kind == "created" and record.id not in self._job_rows:
                rows = {record.id: self._job_row(record), **self._job_rows}
                self._set_job_rows(dict(list(rows.items())[:_RECENT]))
            elif event.kind == "deleted" and record.id in self._job_rows:
                self._set_job_rows({rid: row for rid, row in self._job_rows.items() if rid != record.id})
            elif record.id in self._job_rows:
                self._job_rows[record.id][1].value = self._job_label(record)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the log lines and events handed over so far are shown (plain Python, tests)."""
        return self._delivery.flush(timeout)

    def close(self) -> None:
        for name in ("_unsubscribe", "_unsubscribe_log"):
            unsubscribe = getattr(self, name, None)
            if unsubscribe:
                unsubscribe()
                setattr(self, name, None)
        delivery = getattr(self, "_delivery", None)
        if delivery is not None:  # nothing handed over still runs against a closed panel
            delivery.close()
        close_tree(self)

    # -- static view ------------------------------------------------------------------
    def _static_html(self) -> str:
        rows = [(name, row.status, row.summary_text) for name, row in self.rows.items()]
        with self._lock:
            lines = [line for chunk in self._log_lines for line in chunk][-50:]
        log = f'<div class="soranb-log-static" style="font-family:monospace;font-size:11px">{"".join(lines)}</div>'
        return check_results_html(rows) + "<h4>Debug log (last 50 lines)</h4>" + log + str(self.status_view.value)

    def _static_text(self) -> str:
        return "DiagnosticsPanel: " + ", ".join(f"{name} {row.status}" for name, row in self.rows.items())
