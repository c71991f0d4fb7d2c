"""Shared pytest set-up: plugin modules that provide fixtures to every test module."""

import pytest

from soranb.config import Settings
from soranb.service import VideoService

# tests/ has no __init__.py, so pytest imports this file as `conftest` with tests/ on sys.path;
# should tests/ become a package, the plugins live at `tests.<name>` instead.
_PREFIX = __name__.rpartition(".")[0] + "." if "." in __name__ else ""

pytest_plugins = [
    f"{_PREFIX}engine_helpers",
    f"{_PREFIX}postgres",
    f"{_PREFIX}supabase_double",
]

# Fast enough that a 4 s clip is ready in about a quarter of a second, slow enough to see progress.
TEST_EMULATOR_SPEED = "240"


@pytest.fixture
def settings(tmp_path):
    """Settings for an offline service in a fresh data folder; the machine's own keys are never read."""
    return Settings.from_env(
        {"SORANB_DATA_DIR": str(tmp_path / "data"), "SORANB_EMULATOR_SPEED": TEST_EMULATOR_SPEED},
        dotenv=False,
    )


@pytest.fixture
def service(settings):
    """A service on the in-process emulator and a local store; the poller is driven by `poll_once()`."""
    svc = VideoService(settings, autostart=False)
    yield svc
    svc.close()


@pytest.fixture
def cli_env(tmp_path, monkeypatch, settings):
    """A fresh folder as the current one for the `soranb` command: offline, the machine's keys unset."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SUPABASE_URL", "SORANB_PROVIDER", "SORANB_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SORANB_EMULATOR_SPEED", str(settings.emulator_speed))
    return tmp_path


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs: a disk that really fills up (needs root, as CI has)."""
    import subprocess

    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode().strip()}); CI runs as root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def catalog_as_built():
    """A test that adds a user's models to the one catalog leaves it as it was built."""
    from soranb import catalog

    before = dict(catalog.MODELS)
    yield catalog
    catalog.MODELS.clear()
    catalog.MODELS.update(before)
