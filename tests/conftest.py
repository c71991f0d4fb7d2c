"""Shared pytest set-up: plugin modules that provide fixtures to every test module."""

# tests/ has no __init__.py, so pytest imports this file as `conftest` with tests/ on sys.path;
# should tests/ become a package, the plugins live at `tests.<name>` instead.
_PREFIX = __name__.rpartition(".")[0] + "." if "." in __name__ else ""

pytest_plugins = [
    f"{_PREFIX}postgres",
]
