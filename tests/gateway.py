"""A real LiteLLM proxy on 127.0.0.1 in front of `soranb emulator`, as a person runs a gateway.

The proxy (`litellm[proxy]` from PyPI) lives in its own virtualenv, `.venv-litellm` (its httpx and
openai pins differ from soranb's); `make test` installs it there. Its config routes `sora-2` and a
name that exists only at the gateway (`studio-cam`, priced by the operator's own `model_info`) to
the emulator, which the tests start on a free port. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from labserver import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LITELLM = PROJECT_ROOT / ".venv-litellm" / "bin" / "litellm"
MASTER_KEY = "sk-soranb-gateway-test-master-key"
UPSTREAM_KEY = "sk-soranb-emulator-upstream-key"
START_TIMEOUT_S = 180.0  # the proxy takes 20-30 s to start on two cores, longer when they are busy


@dataclass
class Gateway:
    base_url: str  # what soranb's OPENAI_BASE_URL is set to
    key: str
    emulator_url: str
    log_path: Path

    def env(self, data_dir: Path) -> dict[str, str]:
        """The settings a person uses to reach the gateway."""
        return {
            "SORANB_DATA_DIR": str(data_dir),
            "SORANB_PROVIDER": "openai",
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": self.key,
        }


_CONFIG = """\
model_list:
  - model_name: sora-2
    litellm_params:
      model: openai/sora-2
      api_base: {emulator}
      api_key: {upstream_key}
  - model_name: studio-cam
    litellm_params:
      model: openai/sora-2
      api_base: {emulator}
      api_key: {upstream_key}
    model_info:
      mode: video_generation
      output_cost_per_video_per_second: 0.25
general_settings:
  master_key: {master_key}
litellm_settings:
  telemetry: false
"""


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:  # it answers (a 401 without a key): it is up
            return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} did not answer {url} within {START_TIMEOUT_S:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if not LITELLM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{LITELLM} is missing: `make test` installs the LiteLLM proxy there; CI always runs these")
        pytest.skip(f"no LiteLLM proxy at {LITELLM} (make test installs it)")
    folder = tmp_path_factory.mktemp("gateway")
    emulator_port, proxy_port = free_port(), free_port()
    emulator_log, proxy_log = folder / "emulator.log", folder / "litellm.log"
    emulator_env = {**os.environ, "SORANB_EMULATOR_STATE_DIR": str(folder / "emu")}
    emulator_cmd = [sys.executable, "-m", "soranb.cli", "emulator", "--host", "127.0.0.1", "--port", str(emulator_port)]
    emulator_cmd += ["--api-key", UPSTREAM_KEY, "--speed", "200"]
    with emulator_log.open("wb") as out:
        emulator = subprocess.Popen(emulator_cmd, stdout=out, stderr=subprocess.STDOUT, env=emulator_env)
    proxy = None
    try:
        emulator_url = f"http://127.0.0.1:{emulator_port}/v1"
        config = folder / "config.yaml"
        config.write_text(_CONFIG.format(emulator=emulator_url, upstream_key=UPSTREAM_KEY, master_key=MASTER_KEY))
        proxy_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SORANB_"))}
        proxy_env |= {"LITELLM_LOG": "ERROR", "NO_PROXY": "*"}
        with proxy_log.open("wb") as out:
            proxy = subprocess.Popen(
                [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(proxy_port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=proxy_env,
                cwd=folder,
            )
        _wait_until_up(f"{emulator_url}/videos", emulator, emulator_log, "soranb emulator")
        _wait_until_up(f"http://127.0.0.1:{proxy_port}/health/liveliness", proxy, proxy_log, "the LiteLLM proxy")
        yield Gateway(f"http://127.0.0.1:{proxy_port}/v1", MASTER_KEY, emulator_url, proxy_log)
    finally:
        if proxy is not None:
            _stop(proxy)
        _stop(emulator)
