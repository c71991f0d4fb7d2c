"""Start and stop a real Jupyter server (or JupyterLab) for tests, isolated from the user's own.

Why a subprocess: the soranb server extension, the kernel and the browser must see the same
things a person's `make lab` sees. Everything lives in a temp folder (workspaces, settings,
runtime files) and only 127.0.0.1 is used.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOFT_START_TIMEOUT_S = 90.0

# The switch `make lab` uses too: enables the soranb media route for this server only.
EXTENSION_FLAG = "--ServerApp.jpserver_extensions={'soranb.jupyter': True}"


@dataclass
class LabServer:
    base_url: str  # "http://127.0.0.1:<port>/"
    token: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str, *, with_token: bool = True) -> str:
        url = self.base_url + path.lstrip("/")
        if with_token:
            url += ("&" if "?" in url else "?") + "token=" + self.token
        return url

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_lab_settings(settings_dir: Path) -> None:
    """No news toast: it would cover the notebook and fetch from the network."""
    target = settings_dir / "@jupyterlab" / "apputils-extension"
    target.mkdir(parents=True, exist_ok=True)
    (target / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and its kernels (its own process group), politely first."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextlib.contextmanager
def run_server(
    root_dir: Path,
    work_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    lab: bool = True,
    timeout: float = SOFT_START_TIMEOUT_S,
) -> Iterator[LabServer]:
    """A running server on a free 127.0.0.1 port, with a random token; stopped on exit.

    `work_dir` (a temp folder) holds the log, workspaces, user settings and runtime files.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    port = free_port()
    settings_dir = work_dir / "user-settings"
    _write_lab_settings(settings_dir)
    args = [
        sys.executable,
        "-m",
        "jupyterlab" if lab else "jupyter_server",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        EXTENSION_FLAG,
    ]
    if lab:
        args += [
            f"--LabApp.workspaces_dir={work_dir / 'workspaces'}",
            f"--LabApp.user_settings_dir={settings_dir}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    full_env = dict(os.environ)
    full_env.update(
        {
            "JUPYTER_RUNTIME_DIR": str(work_dir / "runtime"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    full_env.update(env or {})
    log_path = work_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            args,
            cwd=root_dir,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}/", token, proc, log_path)
    try:
        _wait_ready(server, timeout)
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"Jupyter server exited early:\n{server.log()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url("api/status"), timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"Jupyter server not ready after {timeout:.0f} s:\n{server.log()[-4000:]}")
