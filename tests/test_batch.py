"""Batches: from OpenAI's `sora` CLI JSONL or CSV, each line made once, however often the batch is run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from engine_helpers import FOX, drive, emulator_jobs, png

from soranb.batch import parse_batch, read_batch_file
from soranb.cli import main
from soranb.config import Settings
from soranb.errors import BudgetExceeded, RequestInvalid
from soranb.records import Status
from soranb.request import GenerationRequest

# The shape `sora create-batch --input prompts.jsonl` reads (openai/skills, references/cli.md): one JSON
# object or a bare prompt per line, seconds as strings, `#` comments and blank lines skipped.
SORA_CLI_JSONL = """\
# storyboard for the launch video
{"prompt":"A neon-lit rainy alley, slow dolly-in","seconds":"8"}

A warm sunrise over a misty lake, gentle pan
{"prompt":"A teal coupe on a desert highway","model":"sora-2-pro","size":"1792x1024","seconds":"4","out":"coupe.json"}
{"prompt":"A lighthouse at dusk","camera":"slow orbit","lighting":"golden hour","negative":"text, logos"}
{"prompt":"The same fox as the picture","input_reference":"fox.png","seconds":4}
"""


@pytest.fixture
def sora_file(tmp_path: Path) -> Path:
    (tmp_path / "fox.png").write_bytes(png(1280, 720))
    path = tmp_path / "prompts.jsonl"
    path.write_text(SORA_CLI_JSONL)
    return path


def test_the_sora_cli_jsonl_format_is_read(sora_file: Path) -> None:
    lines = read_batch_file(sora_file)
    assert [line.number for line in lines] == [2, 4, 5, 6, 7]
    alley, lake, coupe, lighthouse, fox = (line.request for line in lines)
    assert (alley.prompt, alley.model, alley.size, alley.seconds) == (
        "A neon-lit rainy alley, slow dolly-in", "sora-2", "1280x720", 8)  # fmt: skip
    assert lake.prompt == "A warm sunrise over a misty lake, gentle pan" and lake.seconds == 4
    assert (coupe.model, coupe.size, coupe.cost) == ("sora-2-pro", "1792x1024", Decimal("2.00"))
    assert lighthouse.prompt == (
        "Primary request: A lighthouse at dusk\nCamera: slow orbit\nLighting/mood: golden hour\nAvoid: text, logos"
    )
    assert fox.image is not None and fox.image.filename == "fox.png"


def test_csv_with_a_header_is_read(tmp_path: Path) -> None:
    path = tmp_path / "grid.csv"
    path.write_text('prompt,model,seconds\n"a fox, in snow",sora-2,8\n\n"a wolf",,\n')
    lines = read_batch_file(path, seconds=12)
    assert [(ln.number, ln.request.prompt, ln.request.seconds) for ln in lines] == [
        (2, "a fox, in snow", 8),
        (4, "a wolf", 12),
    ]


def test_every_bad_line_is_named_with_what_to_change(tmp_path: Path) -> None:
    text = "\n".join(
        [
            '{"prompt": "fine"}',
            '{"prompt": "too long a clip", "seconds": "7"}',
            '{"prompt": "typo", "secnds": 8}',
            '{"prompt": "a wide one", "size": "1792x1024"}',
            '{"prompt": "broken json"',
            '{"prompt": "x", "input_reference_url": "http://example.test/a.png"}',
            '{"prompt": "", "model": "sora-3"}',
        ]
    )
    with pytest.raises(RequestInvalid) as caught:
        parse_batch(text, source="ideas.jsonl")
    message = str(caught.value)
    assert "nothing was stored or sent" in message
    assert "ideas.jsonl line 1" not in message
    assert "ideas.jsonl line 2: 7 seconds is not offered; choose 4, 8, 12" in message
    assert "ideas.jsonl line 3: unknown key 'secnds'" in message
    assert "ideas.jsonl line 4: sora-2 does not offer 1792x1024" in message
    assert "ideas.jsonl line 5: this is not valid JSON" in message
    assert "ideas.jsonl line 6: input_reference_url: soranb fetches no URLs" in message
    assert "ideas.jsonl line 7: the prompt is missing or empty" in message
    with pytest.raises(RequestInvalid, match="has no requests"):
        parse_batch("# only a comment\n\n", source="empty.jsonl")


class _Interrupted(Exception):
    pass


def test_a_batch_interrupted_halfway_finishes_the_rest_without_duplicates(make_service):
    service = make_service()
    requests = [dataclasses.replace(FOX, prompt=f"scene {i}") for i in range(5)] + [FOX, FOX]  # FOX twice: two videos
    submit = service.runner.submit
    calls = 0

    async def dies_on_the_fourth(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 4:
            raise _Interrupted  # the kernel stops with the fourth record stored, not yet sent
        return await submit(*args, **kwargs)

    service.runner.submit = dies_on_the_fourth  # type: ignore[method-assign]
    with pytest.raises(_Interrupted):
        service.generate_many(requests, batch_key="storyboard")
    assert service.count_records() == 4 and len(emulator_jobs(service)) == 3
    service.runner.submit = submit  # type: ignore[method-assign]

    plan = service.plan_batch(requests, batch_key="storyboard")
    assert (len(plan.done), len(plan.to_make), plan.cost) == (4, 3, Decimal("1.20"))
    records = service.generate_many(requests, batch_key="storyboard")
    assert [r.prompt for r in records] == [r.prompt for r in requests]
    assert len({r.id for r in records}) == 7 and service.count_records() == 7
    drive(service)
    assert len(emulator_jobs(service)) == 7  # one job per line, the interrupted one included
    assert {r.status for r in service.list_records()} == {Status.COMPLETED}

    again = service.generate_many(requests, batch_key="storyboard")  # the whole batch run once more
    assert [r.id for r in again] == [r.id for r in records]
    assert service.count_records() == 7 and len(emulator_jobs(service)) == 7
    assert service.generate_many(requests[:1], batch_key="take 2")[0].id != records[0].id  # a new key: new videos


def test_two_services_running_one_batch_at_once_make_each_line_once(make_service):
    first, second = make_service(), make_service()
    requests = [dataclasses.replace(FOX, prompt=f"scene {i}") for i in range(6)]
    results: dict[str, list] = {}
    errors: list[BaseException] = []

    def run(name, service):
        try:
            results[name] = service.generate_many(requests, batch_key="shared")
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n, s)) for n, s in (("a", first), ("b", second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert [r.id for r in results["a"]] == [r.id for r in results["b"]]
    assert first.count_records() == 6


def test_the_budget_covers_the_whole_batch_before_anything_starts(make_service, settings):
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "1.00"}
    service = make_service(using=Settings.from_env(env, dotenv=False))
    requests = [dataclasses.replace(FOX, prompt=f"scene {i}") for i in range(3)]  # 3 x $0.40
    with pytest.raises(BudgetExceeded, match=r"this batch of 3 video\(s\) costs \$1\.20.*\$0\.20 over"):
        service.generate_many(requests, batch_key="too much")
    assert service.count_records() == 0 and emulator_jobs(service) == []
    assert len(service.generate_many(requests[:2], batch_key="too much")) == 2  # $0.80 fits


def test_bad_requests_in_code_are_refused_before_anything_is_stored(service):
    bad = GenerationRequest("a fox", "sora-2", "1280x720", 5)
    with pytest.raises(RequestInvalid, match=r"batch 'mine' request 2: 5 seconds is not offered"):
        service.generate_many([FOX, bad], batch_key="mine")
    assert service.count_records() == 0


# -- the command --------------------------------------------------------------------------------------


def test_soranb_batch_on_the_sora_cli_format(cli_env, sora_file, capsys):
    code = main(["batch", str(sora_file), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "5 video(s); 5 to make, costing $4.00" in out and "line    7" in out
    code = main(["list", "--json"])
    assert json.loads(capsys.readouterr().out) == []

    code = main(["batch", str(sora_file), "--wait", "--timeout", "120"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "% of 5 job(s)" in err  # the progress bar
    main(["list", "--json"])
    records = json.loads(capsys.readouterr().out)[::-1]  # newest first: the file's order reversed
    assert [r["status"] for r in records] == ["completed"] * 5
    assert records[2]["model"] == "sora-2-pro" and records[0]["metadata"]["batch_line"] == 2

    code = main(["batch", str(sora_file), "--dry-run"])
    out, _ = capsys.readouterr()
    assert "5 made already; 0 to make, costing $0.00" in out
    code = main(["batch", str(sora_file), "--json"])
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [r["id"] for r in records]
    main(["list", "--json", "--limit", "100"])
    assert len(json.loads(capsys.readouterr().out)) == 5


def test_soranb_batch_bad_line_exits_2_and_stores_nothing(cli_env, capsys):
    path = cli_env / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n{"prompt": "bad", "seconds": "9"}\n')
    assert main(["batch", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl line 2: 9 seconds is not offered" in err
    assert not (cli_env / "soranb-data").exists()  # not even a store was opened


def test_a_deeply_nested_json_line_is_named_not_a_traceback(cli_env, capsys):
    path = cli_env / "deep.jsonl"
    path.write_text('{"prompt": "fine"}\n' + "[" * 100_000 + "\n")
    assert main(["batch", str(path)]) == 2
    err = capsys.readouterr().err
    assert "deep.jsonl line 2:" in err and "nested" in err and "Traceback" not in err
    assert not (cli_env / "soranb-data").exists()


def test_a_csv_field_over_the_field_limit_is_named_and_the_other_lines_still_checked(cli_env, capsys):
    path = cli_env / "big.csv"
    path.write_text('prompt,seconds\nfine,4\n"' + "x" * 200_000 + '",4\nalso fine,9\n')
    assert main(["batch", str(path)]) == 2
    err = capsys.readouterr().err
    assert "big.csv line 3:" in err and "too long" in err
    assert "big.csv line 4: 9 seconds is not offered" in err  # the rest of the file is still read
    assert not (cli_env / "soranb-data").exists()


def test_a_grid_stopped_half_way_by_the_budget_says_exactly_what_was_stored(make_service, settings, monkeypatch):
    """The grid's $1.20 fits a $1.20 budget when it starts; after its first video another kernel on the
    same store spends $0.40, so its third does not fit. The error names what was stored and sent."""
    limited = Settings.from_env(
        {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "1.20"},
        dotenv=False,
    )
    service, other = make_service(using=limited), make_service(using=limited)
    spend, made = service._spend, []

    async def spend_then_another_kernel_spends(*args, **kwargs):
        made.append(await spend(*args, **kwargs))
        if len(made) == 1:
            await asyncio.to_thread(other.generate, dataclasses.replace(FOX, prompt="another kernel"))
        return made[-1]

    monkeypatch.setattr(service, "_spend", spend_then_another_kernel_spends)
    with pytest.raises(BudgetExceeded) as stopped:
        service.vary(["a fox"], variants=["at dawn", "at noon", "at dusk"], seconds=4, key="fox")
    message = str(stopped.value)
    assert "Nothing was stored or sent" not in message
    assert "2 of the 3" in message and "$0.80" in message and "at dusk" in message
    assert "same key" in message  # how to make the rest
    assert sorted(r.prompt for r in service.list_records()) == ["a fox, at dawn", "a fox, at noon", "another kernel"]
