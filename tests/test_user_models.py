"""A user's own models (a gateway's names, a deployment's) are data: a TOML table gives their sizes,
seconds and price, and every check, price and budget reads it."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from soranb.cli import main
from soranb.config import Settings
from soranb.errors import ConfigError

STUDIO_CAM = """
[models.studio-cam]
like = "sora-2"
price_per_second = 0.25
"""


@pytest.fixture(autouse=True)
def _catalog_as_built(catalog_as_built):  # see conftest.py
    return catalog_as_built


def _settings(root: Path) -> Settings:
    return Settings.from_env({"SORANB_DATA_DIR": str(root / "data")}, dotenv=False, cwd=root)


def test_a_gateway_only_name_is_priced_and_checked_from_the_users_file(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "soranb-models.toml").write_text(STUDIO_CAM)
    (spec,) = _settings(tmp_path).models
    assert (spec.name, spec.sizes, spec.seconds) == ("studio-cam", ("1280x720", "720x1280"), (4, 8, 12, 16, 20))
    batch = tmp_path / "shots.jsonl"
    batch.write_text('{"prompt": "a crane shot", "model": "studio-cam", "seconds": 8}\n')
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SUPABASE_URL", "SORANB_PROVIDER", "SORANB_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["batch", str(batch), "--dry-run", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "2.00"  # 8 s x $0.25, from the user's file


def test_pyproject_can_hold_the_table_too(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "films"\n\n[tool.soranb.models.my-sora]\n'
                                            'sizes = ["1280x720"]\nseconds = [4, 8]\n'
                                            'price_per_second = { "1280x720" = 0.1 }\n')  # fmt: skip
    (spec,) = _settings(tmp_path).models
    assert spec.price_per_second == {"1280x720": Decimal("0.1")} and spec.seconds == (4, 8)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ('like = "sora-3"\nprice_per_second = 1', "not a known model"),
        ('sizes = ["big"]\nprice_per_second = 1', "sizes must be"),
        ('like = "sora-2"', "price_per_second"),
        ('like = "sora-2"\nprice_per_second = -1', "0 or more"),
        ('like = "sora-2"\nseconds = [4.5]\nprice_per_second = 1', "whole seconds"),
    ],
)
def test_a_bad_entry_says_what_to_change(tmp_path: Path, entry: str, says: str) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "soranb-models.toml").write_text(f"[models.cam]\n{entry}\n")
    with pytest.raises(ConfigError, match=says) as refused:
        _settings(tmp_path)
    assert "cam" in str(refused.value) and "soranb-models.toml" in str(refused.value)


def test_a_models_file_others_can_change_is_not_read(tmp_path: Path) -> None:
    """Its prices decide what the budget lets through: a planted price of 0 must not open it."""
    (tmp_path / ".git").mkdir()
    planted = tmp_path / "soranb-models.toml"
    planted.write_text(STUDIO_CAM)
    os.chmod(planted, 0o666)
    with pytest.raises(ConfigError, match="chmod 600"):
        _settings(tmp_path)


def test_a_projects_pyproject_others_can_write_is_no_trouble_when_it_names_no_models(tmp_path: Path) -> None:
    """A checkout made with umask 002 leaves pyproject.toml group-writable: without a models table it is
    not soranb's business, and settings read as before."""
    project = tmp_path / "pyproject.toml"
    project.write_text('[project]\nname = "soranb"\n')
    os.chmod(project, 0o664)
    assert _settings(tmp_path).models == ()
