"""The background poller advances inside a real Jupyter kernel, even while a cell blocks."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
from jupyter_client.manager import start_new_kernel


def execute(client, code: str, timeout: float = 120) -> str:
    """Run one cell; return its stdout, failing the test on an error."""
    msg_id = client.execute(textwrap.dedent(code))
    out: list[str] = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            pytest.fail("cell failed: " + "\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)


@pytest.fixture
def kernel(tmp_path, settings):
    env = {
        **os.environ,
        "SORANB_DATA_DIR": str(tmp_path / "data"),
        "SORANB_EMULATOR_SPEED": str(settings.emulator_speed),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    env.pop("OPENAI_API_KEY", None)
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    yield client
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def test_poller_finishes_a_job_while_a_cell_blocks(kernel):
    execute(
        kernel,
        """
        from soranb.session import get_service
        from soranb.request import GenerationRequest
        service = get_service()
        record = service.generate(GenerationRequest("a kernel-side fox", seconds=4))
        print(record.status.value)
        """,
    )
    # A blocking cell: a task on the kernel's own loop would be frozen here; the service thread is not.
    execute(
        kernel,
        """
        import time
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and service.get(record.id).status.value != "completed":
            time.sleep(0.2)
        """,
    )
    out = execute(kernel, "print(service.get(record.id).status.value, service.poller_running)")
    assert out.split() == ["completed", "True"]


def test_the_shared_service_is_one_per_kernel_and_polls_once(kernel):
    out = execute(
        kernel,
        """
        from soranb.session import get_service
        a = get_service(); b = get_service()
        a.start(); a.start()
        import threading
        print(a is b, sum(t.name == "soranb-service" for t in threading.enumerate()))
        """,
    )
    assert out.split() == ["True", "1"]
