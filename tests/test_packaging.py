"""`pip install soranb` is enough: the wheel, installed alone into a fresh venv, serves a generated video.

No editable install and no Makefile: the wheel is built from a copy of the sources (with a history
folder beside them, as after `make lab`), installed with pip into a new venv, and then that venv's
own `jupyter` and `soranb` commands are used. The server extension must be enabled by the config
file the wheel ships (`etc/jupyter/jupyter_server_config.d/soranb.json`), not by a flag.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from labserver import free_port

import soranb

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "soranb", "jupyter-config")
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/soranb.json"
INSTALL_TIMEOUT_S = 240.0
# pip's words for "no package index reachable": the only case where the install test may skip.
_OFFLINE = re.compile(
    r"NewConnectionError|Network is unreachable|Temporary failure in name resolution|No route to host"
)


def _pip_failed(what: str, result: subprocess.CompletedProcess[str]) -> None:
    output = (result.stdout + result.stderr).strip()
    if _OFFLINE.search(output) and not os.environ.get("CI"):
        pytest.skip(f"{what}: pip could not reach a package index (offline?); CI always runs this test")
    pytest.fail(f"{what} failed (exit {result.returncode}):\n{output[-3000:]}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built by pip from a copy of the sources, with a local history lying beside them."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    for folder in ("soranb-data", "soranb_data"):  # the default history, and one named by SORANB_DATA_DIR
        jobs = src / folder / "emulator" / "jobs"
        jobs.mkdir(parents=True)
        (jobs / "video_x.json").write_text("{}")
        (src / folder / "soranb.db").write_bytes(b"SQLite format 3\0")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if result.returncode != 0:
        _pip_failed("building the wheel", result)
    (built,) = (root / "dist").glob("soranb-*.whl")
    return built


def test_the_wheel_holds_the_package_and_its_server_config_only(wheel: Path) -> None:
    data = f"soranb-{soranb.__version__}.data"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = f"soranb-{soranb.__version__}.dist-info"
        top_level = archive.read(f"{info}/top_level.txt").decode().split()
        config = json.loads(archive.read(f"{data}/data/{SERVER_CONFIG}"))
    assert top_level == ["soranb"]  # never the history folder as a second top-level package
    assert {name.split("/")[0] for name in names} == {"soranb", info, data}
    assert not [name for name in names if "soranb-data" in name or "soranb_data" in name or name.endswith(".db")]
    assert "soranb/py.typed" in names and "soranb/emulator/server.py" in names
    assert config == {"ServerApp": {"jpserver_extensions": {"soranb.jupyter": True}}}


# -- installed alone ---------------------------------------------------------------------------


def _isolated_env(home: Path) -> dict[str, str]:
    """The process environment without soranb's settings or the user's Jupyter folders."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SORANB_", "OPENAI_", "SUPABASE_", "JUPYTER", "PYTHON", "VIRTUAL_ENV"))
    }
    for name in ("config", "data", "runtime"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        SORANB_EMULATOR_SPEED="40",
    )
    return env


@pytest.fixture(scope="module")
def fresh_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding the wheel and what pip resolves for it from the package index, nothing else."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if result.returncode != 0:
        _pip_failed("pip install of the wheel into a fresh venv", result)
    return venv


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET that does not follow redirects (a login redirect must not look like success)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@contextlib.contextmanager
def _jupyter_server(venv: Path, project: Path, env: dict[str, str], token: str) -> Iterator[int]:
    """The venv's own `jupyter server` in the project folder, with no extension flag; yields its port."""
    port = free_port()
    args = [str(venv / "bin" / "jupyter"), "server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1"]
    args += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={project}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log = project.parent / "jupyter-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(args, cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if _get(port, "/api/status", {"Authorization": f"token {token}"})[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"jupyter server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.mark.timeout(INSTALL_TIMEOUT_S + 180)
def test_pip_install_alone_enables_the_extension_and_serves_a_generated_video(fresh_venv: Path, tmp_path: Path) -> None:
    env = _isolated_env(tmp_path / "jupyter")
    project = tmp_path / "project"
    (project / "soranb-data").mkdir(parents=True)  # the project marker a user's first run leaves
    python = str(fresh_venv / "bin" / "python")

    where = _run([python, "-c", "import soranb; print(soranb.__file__)"], project, env)
    assert where.stdout.strip().startswith(str(fresh_venv)), where.stdout + where.stderr

    listed = _run([str(fresh_venv / "bin" / "jupyter"), "server", "extension", "list"], project, env)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    assert re.search(r"soranb\.jupyter\s+enabled", plain), plain
    assert (fresh_venv / SERVER_CONFIG).is_file()

    command = ["generate", "a paper boat on a puddle", "--seconds", "4", "--wait", "--json", "--timeout", "120"]
    generated = _run(
        [str(fresh_venv / "bin" / "soranb"), *command],
        project,
        env,
        timeout=180,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    record = json.loads(generated.stdout)
    assert record["status"] == "completed"
    video = Path(record["video_path"])
    assert video.is_relative_to(project / "soranb-data")

    token = "soranb-packaging-test-token"
    with _jupyter_server(fresh_venv, project, env, token) as port:
        path = "/soranb/media/" + record["video_key"]
        status, headers, body = _get(port, path, {"Authorization": f"token {token}"})
        assert status == 200, body[:500]
        assert body == video.read_bytes() and body[4:8] == b"ftyp"
        assert headers["content-type"] == "video/mp4"
        status, _, body = _get(port, path)  # no token: Jupyter's login, never the video
        assert status in (302, 403) and body != video.read_bytes()
