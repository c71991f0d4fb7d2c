"""The budget is the store's: processes released at the same instant on one store never pass it together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

from soranb.budget import spent_on
from soranb.config import Settings
from soranb.store.base import RecordQuery
from soranb.store.local import LocalStore

# Each process builds its service (the slow part), then waits for the shared start time and spends.
_SPEND_AT = textwrap.dedent(
    """
    import json, sys, time
    import soranb.budget
    from soranb.errors import BudgetExceeded
    from soranb.request import GenerationRequest
    from soranb.service import VideoService

    start, prompt = float(sys.argv[1]), sys.argv[2]
    summed = soranb.budget.spent_on
    # Adding up the day takes as long as a network round trip to a remote store: the window in which
    # a second process could read the same total before the first one's insert.
    soranb.budget.spent_on = lambda records: (time.sleep(0.3), summed(records))[1]
    service = VideoService(autostart=False)
    try:
        service.budget()  # the store is open and read before the start
        time.sleep(max(0.0, start - time.time()))
        try:
            service.generate(GenerationRequest(prompt, "sora-2", "1280x720", 4))
            print(json.dumps("stored"))
        except BudgetExceeded as exc:
            print(json.dumps(str(exc)))
    finally:
        service.close()
    """
)

PROCESSES = 4
TRIALS = 3


def _release_together(data_dir: Path, budget: str) -> list[str]:
    env = {
        **os.environ,
        "SORANB_DATA_DIR": str(data_dir),
        "SORANB_PROVIDER": "emulator",
        "SORANB_STORE": "local",
        "SORANB_BUDGET_USD": budget,
        "SORANB_EMULATOR_SPEED": "240",
    }
    env.pop("OPENAI_API_KEY", None)
    start = time.time() + 8  # every process has built its service by then, on two busy cores too
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _SPEND_AT, repr(start), f"fox {n}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    answers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        answers.append(json.loads(out.strip().splitlines()[-1]))
    return answers


def test_processes_released_at_once_never_store_more_than_the_budget_pays_for(tmp_path: Path) -> None:
    """One $0.40 video fits a $0.50 budget; four processes asking at the same instant, three times."""
    for trial in range(TRIALS):
        data_dir = tmp_path / f"trial{trial}"
        answers = _release_together(data_dir, "0.50")
        assert answers.count("stored") == 1, answers
        refused = [a for a in answers if a != "stored"]
        assert all("SORANB_BUDGET_USD" in a and "Nothing was stored or sent" in a for a in refused), refused
        settings = Settings.from_env({"SORANB_DATA_DIR": str(data_dir)}, dotenv=False)
        store = LocalStore(settings.data_dir)
        import asyncio

        records = asyncio.run(store.query(RecordQuery(limit=100)))
        assert len(records) == 1 and spent_on(records) == Decimal("0.40")
