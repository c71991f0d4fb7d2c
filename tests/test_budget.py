"""The budget guard: a request that would go over is refused before anything is stored or sent."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from engine_helpers import FOX, drive, emulator_jobs

from soranb.budget import Budget, day_start
from soranb.config import Settings
from soranb.errors import BudgetExceeded, ConfigError, RequestInvalid
from soranb.records import GenerationRecord, Status
from soranb.store.base import RecordQuery


def _with_budget(settings: Settings, **limits: str) -> Settings:
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", **limits}
    return Settings.from_env(env, dotenv=False)


def test_a_request_over_the_daily_budget_is_refused_before_anything_is_stored_or_sent(make_service, settings):
    service = make_service(using=_with_budget(settings, SORANB_BUDGET_USD="1.00"))
    first = service.generate(FOX)  # sora-2, 4 s: $0.40
    second = service.generate(dataclasses.replace(FOX, prompt="a grey wolf"))  # $0.80 spent
    assert first.status == second.status == Status.PROCESSING
    stored, jobs = service.count_records(), len(emulator_jobs(service))
    images_before = sorted((settings.data_dir / "media" / "images").iterdir())

    with pytest.raises(BudgetExceeded) as refused:
        service.generate(dataclasses.replace(FOX, prompt="a third fox"))  # $1.20 > $1.00
    message = str(refused.value)
    assert "$0.20 over" in message and "$1.00" in message and "SORANB_BUDGET_USD" in message
    assert refused.value.over_usd == Decimal("0.20")
    assert isinstance(refused.value, RequestInvalid) and refused.value.field == "budget"
    assert service.count_records() == stored == 2  # nothing stored
    assert len(emulator_jobs(service)) == jobs == 2  # nothing sent
    assert sorted((settings.data_dir / "media" / "images").iterdir()) == images_before

    budget = service.budget()
    assert (budget.spent, budget.limit, budget.remaining) == (Decimal("0.80"), Decimal("1.00"), Decimal("0.20"))
    cheap = dataclasses.replace(FOX, prompt="still fits")
    with pytest.raises(BudgetExceeded):
        service.generate(dataclasses.replace(cheap, seconds=8))
    drive(service)  # finishing jobs changes nothing: they were counted when they were stored
    assert service.budget().spent == Decimal("0.80")


def test_a_remix_over_the_budget_is_refused_too(make_service, settings):
    service = make_service(using=_with_budget(settings, SORANB_BUDGET_USD="0.50"))
    source = service.generate(FOX)
    drive(service)
    with pytest.raises(BudgetExceeded, match=r"\$0\.30 over"):
        service.remix(source.id, "the same fox, at night")
    assert service.count_records() == 1 and len(emulator_jobs(service)) == 1


def test_the_session_budget_counts_only_this_service(make_service, settings):
    limited = _with_budget(settings, SORANB_SESSION_BUDGET_USD="0.50")
    other = make_service(using=limited)
    other.generate(FOX)  # another kernel spent $0.40 today: not this session's
    service = make_service(using=limited)
    service.generate(FOX)
    with pytest.raises(BudgetExceeded, match="this session's spending") as refused:
        service.generate(FOX)
    assert "SORANB_SESSION_BUDGET_USD" in str(refused.value)
    assert service.budget().session_spent == Decimal("0.40") and service.budget().spent == Decimal("0.80")
    assert service.count_records() == 2


async def test_what_counts_as_spent_today(service):
    """Records refused by the provider before a job existed never cost anything; yesterday's are not today's."""
    today = day_start() + timedelta(minutes=1)
    for record in (
        GenerationRecord("done", "sora-2", "1280x720", 8, status=Status.COMPLETED, openai_job_id="video_1"),
        GenerationRecord("waiting", "sora-2", "1280x720", 4),
        GenerationRecord("refused", "sora-2", "1280x720", 12, status=Status.FAILED),
        GenerationRecord("failed there", "sora-2-pro", "1280x720", 4, status=Status.FAILED, openai_job_id="video_2"),
        GenerationRecord("yesterday", "sora-2", "1280x720", 12, created_at=today - timedelta(days=1)),
    ):
        await service.store.insert(dataclasses.replace(record, created_at=min(record.created_at, today)))
    assert service.count_records(RecordQuery(since=day_start())) == 4
    assert service.budget().spent == Decimal("0.80") + Decimal("0.40") + Decimal("1.20")


def test_budget_settings_are_checked(settings):
    assert _with_budget(settings, SORANB_BUDGET_USD="$2.50").budget_usd == Decimal("2.50")
    assert _with_budget(settings).budget_usd is None
    for bad in ("five", "-1", "nan"):
        with pytest.raises(ConfigError, match="SORANB_BUDGET_USD"):
            _with_budget(settings, SORANB_BUDGET_USD=bad)


def test_budget_remaining_is_the_tighter_limit():
    budget = Budget(spent=Decimal("3"), limit=Decimal("5"), session_spent=Decimal("1"), session_limit=Decimal("1.5"))
    assert budget.remaining == Decimal("0.5")
    assert Budget(spent=Decimal("9"), limit=Decimal("5")).remaining == Decimal(0)
    assert Budget(spent=Decimal("9")).remaining is None
    Budget(spent=Decimal("0.60"), limit=Decimal("1.00")).check(Decimal("0.40"))  # exactly the limit fits


def test_soranb_budget_prints_spent_and_remaining(tmp_path, monkeypatch, capsys, settings):
    import json

    from soranb.cli import main

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SUPABASE_URL", "SORANB_PROVIDER", "SORANB_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("SORANB_EMULATOR_SPEED", str(settings.emulator_speed))
    monkeypatch.setenv("SORANB_BUDGET_USD", "1")
    assert main(["generate", "a fox", "--seconds", "8"]) == 0
    assert main(["generate", "a wolf", "--seconds", "4"]) == 2
    assert "$0.20 over the budget of $1.00" in capsys.readouterr().err
    assert main(["budget", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"spent_usd": "0.80", "limit_usd": "1", "remaining_usd": "0.20"}
    assert main(["budget"]) == 0
    assert "spent today $0.80 · daily budget $1.00 · remaining $0.20" in capsys.readouterr().out


def test_an_extension_over_the_budget_is_refused_before_anything_is_stored_or_sent(make_service, settings):
    """Extend, edit and requests with characters take their own path to the provider: the guard is there too."""
    from engine_helpers import drive

    service = make_service(using=_with_budget(settings, SORANB_BUDGET_USD="1.00"))
    source = service.generate(FOX)  # $0.40
    drive(service)
    stored, jobs = service.count_records(), len(emulator_jobs(service))
    with pytest.raises(BudgetExceeded) as refused:
        service.extend(source.id, "it runs on into the forest", 20)  # 20 more seconds: $2.00
    assert "over" in str(refused.value)
    assert service.count_records() == stored and len(emulator_jobs(service)) == jobs


def test_an_extension_costs_the_seconds_it_adds_and_the_budget_counts_that(make_service, settings):
    """An extension holds the stitched video (4 + 8 s) but pays for the 8 s it adds, as the guard priced it."""
    from engine_helpers import drive

    service = make_service(using=_with_budget(settings, SORANB_BUDGET_USD="5.00"))
    source = service.generate(FOX)  # 4 s: $0.40
    drive(service)
    extension = service.extend(source.id, "it runs on into the forest", 8)
    assert extension.seconds == 12 and extension.cost == Decimal("0.80")
    assert service.budget().spent == Decimal("1.20")  # not $1.60: the source's 4 s are not paid twice
    hostile = extension.evolve(metadata={**extension.metadata, "billed_seconds": 999})
    assert hostile.cost == Decimal("1.20")  # a row that claims more than it holds is priced as it stands


def test_requests_made_at_once_never_both_fit_the_last_dollar(make_service, settings):
    """The budget check and the insert are one step: of eight plain and extended requests sent together
    from eight threads, only as many as the limit pays for are stored."""
    from concurrent.futures import ThreadPoolExecutor

    service = make_service(using=_with_budget(settings, SORANB_BUDGET_USD="1.60", SORANB_MAX_CONCURRENT_JOBS="1"))
    source = service.generate(FOX)  # $0.40 spent, $1.20 left: three more 4 s videos
    drive(service)
    calls = [lambda n=n: service.generate(dataclasses.replace(FOX, prompt=f"fox {n}")) for n in range(4)]
    calls += [lambda: service.edit(source.id, "make it night") for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(call) for call in calls]
    refused = [f for f in futures if isinstance(f.exception(), BudgetExceeded)]
    assert len(refused) == 5 and all(f.exception() is None for f in futures if f not in refused)
    assert service.count_records() == 4 and service.budget().spent == Decimal("1.60")
