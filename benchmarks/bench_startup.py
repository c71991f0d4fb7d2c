"""How light soranb starts: `soranb list` and `import soranb.widgets` against `python -c pass`.

Every case runs in a fresh interpreter, the cases take turns (so a busy moment hits all of
them alike), and each figure is the median of the rounds. `soranb list` reads a local store
holding 100 records; it never builds the provider, so it never loads the keyring either. Targets:
`soranb list` at most 6x `python -c pass`, `import soranb.widgets` at most 5x (and its ratio to
`import ipywidgets`, the floor no view can go under). Prints ratios; asserts nothing.

    .venv/bin/python benchmarks/bench_startup.py [--rounds 9] [--records 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from soranb.records import GenerationRecord, Status
from soranb.store.base import media_key
from soranb.store.local import LocalStore

HEAVY = ("openai", "av", "starlette", "uvicorn")
# `pip install soranb` without the optional [keyring] extra: the import fails and no keyring is asked.
WITHOUT_KEYRING = "import sys; sys.modules['keyring'] = None; from soranb.cli import main; main(['list'])"


async def fill(data_dir: Path, count: int) -> None:
    store = LocalStore(data_dir)
    await store.open()
    try:
        for i in range(count):
            record = GenerationRecord(f"benchmark clip {i}: a harbour at dusk", "sora-2", "1280x720", 4)
            await store.insert(
                record.evolve(status=Status.PROCESSING, openai_job_id=f"video_{i:048x}").evolve(
                    status=Status.COMPLETED,
                    progress=100,
                    video_key=media_key("videos", record.id),
                    thumbnail_key=media_key("thumbnails", record.id),
                )
            )
    finally:
        await store.close()


def soranb_command() -> list[str]:
    """The `soranb` console script next to this interpreter (what a user types), else `-m soranb.cli`."""
    script = Path(sys.executable).with_name("soranb")
    return [str(script)] if script.exists() else [sys.executable, "-m", "soranb.cli"]


def run_once(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, check=True, timeout=120)
    return time.perf_counter() - started


def loaded_by_list(env: dict[str, str], cwd: Path) -> list[str]:
    """The heavy modules a `soranb list` process ends up with (there should be none)."""
    code = "import json, sys\nfrom soranb.cli import main\nmain(['list'])\n"
    code += f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, check=True)
    found: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--records", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="soranb-bench-startup-") as tmp:
        folder = Path(tmp)
        asyncio.run(fill(folder / "data", args.records))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SORANB_", "OPENAI_", "SUPABASE_"))}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode caches, as pip writes them at install
        env["SORANB_DATA_DIR"] = str(folder / "data")
        python = sys.executable
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([python, "-c", "pass"], env),
            "import soranb": ([python, "-c", "import soranb"], env),
            "import ipywidgets (the floor for the views)": ([python, "-c", "import ipywidgets"], env),
            "import soranb.widgets": ([python, "-c", "import soranb.widgets"], env),
            f"soranb list ({args.records} records)": ([*soranb_command(), "list"], env),
            f"soranb list ({args.records} records), no keyring package": ([python, "-c", WITHOUT_KEYRING], env),
            "for scale: import openai": ([python, "-c", "import openai"], env),
        }
        for command, case_env in cases.values():  # warm the file cache once, untimed
            run_once(command, case_env, folder)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.rounds):
            for name, (command, case_env) in cases.items():
                times[name].append(run_once(command, case_env, folder))
        heavy = loaded_by_list(env, folder)

    medians = {name: statistics.median(values) for name, values in times.items()}
    bests = {name: min(values) for name, values in times.items()}
    base, best_base = medians["python -c pass"], bests["python -c pass"]
    print(
        f"start-up, median of {args.rounds} rounds (cases interleaved), Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, bytecode caches on"
    )
    print(f"{'case':<52} {'median':>9} {'min':>9} {'x pass':>7} {'x pass, min':>12}")
    for name, median in medians.items():
        best = bests[name]
        print(
            f"{name:<52} {median * 1000:>6.0f} ms {best * 1000:>6.0f} ms"
            f" {median / base:>7.1f} {best / best_base:>12.1f}"
        )

    def ratios(name: str) -> str:
        return f"{medians[name] / base:.1f} by medians, {bests[name] / best_base:.1f} by minimums"

    print(f"soranb list / python -c pass: {ratios(f'soranb list ({args.records} records)')} (target at most 6)")
    print(f"  without the keyring package: {ratios(f'soranb list ({args.records} records), no keyring package')}")
    print(f"import soranb.widgets / python -c pass: {ratios('import soranb.widgets')} (target at most 5)")
    floor = "import ipywidgets (the floor for the views)"
    print(f"  import ipywidgets alone: {ratios(floor)}")
    over_floor = medians["import soranb.widgets"] / medians[floor], bests["import soranb.widgets"] / bests[floor]
    print(
        f"import soranb.widgets / import ipywidgets: {over_floor[0]:.2f} by medians, {over_floor[1]:.2f} by minimums"
        " (what soranb adds on top of the library its views are made of)"
    )
    print(f"heavy modules loaded by soranb list: {', '.join(heavy) or 'none'} (of {', '.join(HEAVY)})")


if __name__ == "__main__":
    main()
