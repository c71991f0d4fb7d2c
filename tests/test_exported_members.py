"""soranb's public surface is small, sorted, and covers what the notebooks and the README use."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import soranb

ROOT = Path(__file__).resolve().parent.parent


def _code_of_notebook(path: Path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


def _code_of_readme() -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S))


def _soranb_imports(code: str) -> list[tuple[str, str]]:
    """(module, name) for every `from soranb... import name` in the code."""
    return [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "soranb"
        for alias in node.names
    ]


def test_all_is_sorted_and_every_name_is_soranbs_own() -> None:
    assert soranb.__all__ == sorted(set(soranb.__all__))
    for name in soranb.__all__:
        value = getattr(soranb, name)
        assert name == "__version__" or value.__module__.startswith("soranb."), name
    namespace: dict[str, object] = {}
    exec("from soranb import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == soranb.__all__
    assert set(soranb.__all__) <= set(dir(soranb))


def _plain_soranb_imports(code: str) -> list[str]:
    """Every `import soranb...` (a module, not a name from `soranb`) in the code."""
    return [
        alias.name
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.split(".")[0] == "soranb"
    ]


def test_the_notebooks_and_the_readme_use_only_exported_names() -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    used = [pair for nb in notebooks for pair in _soranb_imports(_code_of_notebook(nb))]
    assert used, "the notebooks import nothing from soranb"
    for nb in notebooks:  # the notebooks teach `from soranb import ...` only, never a submodule
        pairs = _soranb_imports(_code_of_notebook(nb))
        assert [module for module, _ in pairs] == ["soranb"] * len(pairs), nb.name
        assert _plain_soranb_imports(_code_of_notebook(nb)) == [], nb.name
    readme = _soranb_imports(_code_of_readme())
    assert readme, "the README shows no import from soranb"
    assert [module for module, _ in readme] == ["soranb"] * len(readme)  # the README teaches `from soranb import`
    assert sorted({name for _, name in used + readme} - set(soranb.__all__)) == []


def test_import_soranb_loads_nothing_else() -> None:
    code = "import sys, soranb; print(sorted(m for m in sys.modules if m.startswith('soranb')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "['soranb']"


def test_a_script_can_catch_every_soranb_error_and_name_every_type_from_soranb_itself() -> None:
    """`except soranb.BudgetExceeded` needs no submodule: the error tree, the service, the request and record
    types, the status enum and the views' seam are all exported."""
    import soranb.errors

    wanted = {*soranb.errors.__all__, "GenerationRecord", "GenerationRequest", "ImageInput", "ServiceLike"}
    wanted |= {"Status", "VideoService", "get_service", "app", "GenerationForm", "HistoryGrid", "VariationGrid"}
    assert sorted(wanted - set(soranb.__all__)) == []
    assert soranb.BudgetExceeded is soranb.errors.BudgetExceeded
    assert issubclass(soranb.BudgetExceeded, soranb.SoranbError)
