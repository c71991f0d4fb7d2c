"""DiagnosticsPanel over a real service: checks, spend consent, the live log, raw job status."""

from __future__ import annotations

import pytest
from widget_helpers import XSS, insert_records, make_records

from soranb.checks import CheckResult
from soranb.records import Status
from soranb.widgets import DiagnosticsPanel, Toasts


@pytest.fixture
def panel(service):
    view = DiagnosticsPanel(service, toasts=Toasts(dismiss_after=None))
    yield view
    view.close()


def test_one_row_per_check_and_run_all(panel, service):
    assert list(panel.rows) == list(service.CHECKS)
    assert panel.allow_spend.layout.display == "none"  # the emulator costs nothing
    panel.run_all_button.click()
    assert {name: row.status for name, row in panel.rows.items()} == dict.fromkeys(service.CHECKS, "ok")
    assert "soranb-badge-ok" in panel.rows["store"].badge.value
    static = panel._repr_mimebundle_()["text/html"]
    assert static.count("soranb-badge-ok") == len(service.CHECKS)


def test_one_check_by_its_button(panel):
    panel.rows["schema"].run_button.click()
    assert panel.rows["schema"].status == "ok"
    assert panel.rows["provider"].status == "not run"


def test_generation_check_spends_only_with_consent_on_a_paid_provider(panel, service, monkeypatch):
    calls: list[tuple[str, bool]] = []

    def fake_run_check(name, allow_spend=False):
        calls.append((name, allow_spend))
        status = "ok" if allow_spend else "skipped"
        return CheckResult(name, status, "spent" if allow_spend else "not allowed to spend")

    monkeypatch.setattr(service, "run_check", fake_run_check)
    panel.paid = True
    panel.rows["generation"].run_button.click()
    assert calls[-1] == ("generation", False) and panel.rows["generation"].status == "skipped"
    panel.allow_spend.value = True
    panel.rows["generation"].run_button.click()
    assert calls[-1] == ("generation", True) and panel.rows["generation"].status == "ok"
    assert panel.allow_spend.value is False  # consent is for one run only


def test_a_crashing_check_is_shown_and_the_others_still_run(panel, service, monkeypatch):
    real = service.run_check

    def flaky(name, allow_spend=False):
        if name == "provider":
            raise RuntimeError("socket exploded")
        return real(name, allow_spend=allow_spend)

    monkeypatch.setattr(service, "run_check", flaky)
    panel.run_all()
    assert panel.rows["provider"].status == "failed"
    assert panel.rows["schema"].status == "ok"
    assert any("socket exploded" in message for kind, message in panel.toasts.messages if kind == "error")


def test_log_appends_live_is_capped_and_clears(panel, service):
    start = panel.log_line_count
    service.log.info("hello <script>")
    panel.flush()  # log lines reach the panel on the views' thread
    assert panel.log_line_count == start + 1
    last_chunk = panel.log_lines_box.children[-1]
    assert "hello &lt;script&gt;" in last_chunk.value and "INFO" in last_chunk.value
    for i in range(1200):
        service.log.info(f"line {i}")
    panel.flush()
    assert 450 <= panel.log_line_count <= 500
    assert len(panel.log_lines_box.children) <= 10
    assert "line 1199" in panel.log_lines_box.children[-1].value  # newest at the bottom
    panel.clear_log_button.click()
    assert panel.log_line_count == 0 and len(panel.log_lines_box.children) == 1
    assert service.log.entries() == []


def test_recent_jobs_and_raw_status(panel, service, settings):
    insert_records(settings.data_dir, make_records(12, status=Status.FAILED, prompt=XSS))
    panel.reload_jobs_button.click()
    assert len(panel.jobs_box.children) == 10
    first_row = panel.jobs_box.children[0]
    button, label = first_row.children
    assert "&lt;img src=x" in label.value and "<img src=x" not in label.value
    button.click()  # a record with no provider job: the service says so
    assert "no provider job yet" in panel.status_view.value
    assert '<pre class="soranb-json"' in panel.status_view.value


def test_raw_status_of_a_real_job_is_escaped_json(panel, service):
    from soranb.request import GenerationRequest

    record = service.generate(GenerationRequest("a quiet harbour <b>"))
    panel.flush()
    assert panel.jobs_box.children  # the created event added a row without a reload
    data = panel.show_status(record.id)
    assert data["id"] == record.openai_job_id
    assert "&lt;b&gt;" in panel.status_view.value and '<b>"' not in panel.status_view.value


def test_debug_lines_are_hidden_until_asked_for_and_the_log_follows_the_newest(panel, service):
    service.log.debug("a debug detail")
    service.log.warning("a warning")
    panel.flush()
    text = "".join(chunk.value for chunk in panel.log_lines_box.children)
    assert "a warning" in text and "a debug detail" not in text
    panel.log_level.value = "DEBUG"
    text = "".join(chunk.value for chunk in panel.log_lines_box.children)
    assert "a debug detail" in text and text.index("a debug detail") < text.index("a warning")
    panel.log_level.value = "WARNING"
    text = "".join(chunk.value for chunk in panel.log_lines_box.children)
    assert "a warning" in text and "service ready" not in text
    assert panel.log_box.layout.flex_flow == "column-reverse"  # pinned to the newest line


def test_badges_show_the_checks_the_cells_above_already_ran(service):
    for name in ("configuration", "store"):
        service.run_check(name)
    view = DiagnosticsPanel(service, toasts=Toasts(dismiss_after=None))
    assert view.rows["configuration"].status == "ok" and view.rows["store"].status == "ok"
    assert "soranb-badge-ok" in view.rows["store"].badge.value
    assert view.rows["provider"].status == "not run"
    view.close()


def test_the_generation_check_is_marked_and_kept_out_of_the_history_view(service):
    from soranb.widgets import HistoryGrid

    result = service.run_check("generation")
    assert result.status == "ok", result.summary
    (record,) = service.list_records()
    assert record.metadata.get("diagnostic") is True
    grid = HistoryGrid(service, toasts=Toasts(dismiss_after=None))
    assert grid.cards == []  # no "calm blue sky" among the person's videos
    grid.close()


def test_the_spend_consent_names_the_catalog_price_and_follows_the_service(service, monkeypatch):
    """The price is the catalog's, and "is it paid?" is the service's one answer, as the form's is."""
    from decimal import Decimal

    from soranb.catalog import MODELS
    from soranb.diagnostics import MINIMAL_REQUEST

    monkeypatch.setitem(MODELS[MINIMAL_REQUEST.model].price_per_second, MINIMAL_REQUEST.size, Decimal("0.25"))
    monkeypatch.setattr(type(service), "provider_is_paid", property(lambda _self: True))
    view = DiagnosticsPanel(service, toasts=Toasts(dismiss_after=None))
    try:
        assert "($1.00)" in view.allow_spend.description and view.paid
        assert view.allow_spend.layout.display == ""
    finally:
        view.close()
