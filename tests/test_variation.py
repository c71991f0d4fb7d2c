"""Variation grids: the matrix in order, priced and budget-checked before anything starts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from engine_helpers import drive, emulator_jobs

from soranb.config import Settings
from soranb.errors import BudgetExceeded, RequestInvalid
from soranb.records import Status
from soranb.variation import apply_variant, plan_variations


def test_the_plan_lists_every_combination_in_matrix_order_with_its_cost():
    plan = plan_variations(
        ["a fox in snow", "a {variant} wolf"],
        variants=["", "at night"],
        models=["sora-2", "sora-2-pro"],
        sizes=["1280x720", "1792x1024"],
        seconds=[4, 8],
    )
    assert len(plan.cells) == 2 * 2 * 2 * 2 * 2
    first = [(c.prompt, c.variant, c.model, c.size, c.seconds) for c in plan.cells[:5]]
    assert first == [
        ("a fox in snow", "", "sora-2", "1280x720", 4),
        ("a fox in snow", "", "sora-2", "1280x720", 8),
        ("a fox in snow", "", "sora-2", "1792x1024", 4),
        ("a fox in snow", "", "sora-2", "1792x1024", 8),
        ("a fox in snow", "", "sora-2-pro", "1280x720", 4),
    ]
    skipped = [c for c in plan.cells if c.request is None]
    assert len(skipped) == 8 and {c.problem for c in skipped} == {"sora-2 does not offer 1792x1024"}
    assert len(plan.made) == 24
    # per prompt x variant: sora-2 720p 4+8 s = 1.20; pro 720p 12 s x 0.30 = 3.60; pro 1024p 12 s x 0.50 = 6.00
    assert plan.cost == 4 * (Decimal("1.20") + Decimal("3.60") + Decimal("6.00"))
    assert set(plan.varied) == {"prompt", "variant", "model", "size", "seconds"}
    prompts = {c.request.prompt for c in plan.made if c.request}
    assert prompts == {"a fox in snow", "a fox in snow, at night", "a  wolf", "a at night wolf"}
    html = plan._repr_html_()
    assert "sora-2 does not offer 1792x1024" in html and "$43.20" in html


def test_variants_fill_the_slot_or_follow_a_comma():
    assert apply_variant("a fox, {variant}, in snow", "running") == "a fox, running, in snow"
    assert apply_variant("a fox", "at dusk") == "a fox, at dusk"
    assert apply_variant("a fox", "") == "a fox"


def test_bad_settings_are_refused_naming_the_cell_before_anything_starts(service):
    with pytest.raises(RequestInvalid, match=r"the variation grid cell 2: 5 seconds is not offered"):
        plan_variations("a fox", seconds=[4, 5])
    with pytest.raises(RequestInvalid, match="no prompts given"):
        plan_variations([])
    with pytest.raises(RequestInvalid, match="unknown model 'sora-9'"):
        service.vary("a fox", models=["sora-9"])
    assert service.count_records() == 0


def test_vary_returns_records_in_matrix_order_and_a_rerun_pays_nothing(make_service):
    service = make_service()
    records = service.vary(["a fox", "a wolf"], seconds=[4, 8])
    assert [(r.prompt, r.seconds) for r in records] == [("a fox", 4), ("a fox", 8), ("a wolf", 4), ("a wolf", 8)]
    assert all(r.status == Status.PROCESSING for r in records)
    again = service.vary(["a fox", "a wolf"], seconds=[4, 8])  # the cell run twice
    assert [r.id for r in again] == [r.id for r in records] and len(emulator_jobs(service)) == 4
    fresh = service.vary("a fox", key="take 2")
    assert fresh[0].id not in {r.id for r in records} and service.count_records() == 5
    drive(service)  # (the fifth waited for a free slot: four jobs run at once)
    assert {r.status for r in service.list_records()} == {Status.COMPLETED} and len(emulator_jobs(service)) == 5


def test_a_grid_over_the_budget_is_refused_whole(make_service, settings):
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "2"}
    service = make_service(using=Settings.from_env(env, dotenv=False))
    with pytest.raises(BudgetExceeded, match=r"this batch of 4 video\(s\) costs \$2\.40.*\$0\.40 over"):
        service.vary(["a fox", "a wolf"], seconds=[4, 8])
    assert service.count_records() == 0 and emulator_jobs(service) == []
