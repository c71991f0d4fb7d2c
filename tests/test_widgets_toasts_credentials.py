"""Toasts (errors never lost, self-dismissing, thread-safe) and Credentials (the key never kept)."""

from __future__ import annotations

import json
import logging
import threading
import time

import ipywidgets as widgets
import pytest

from soranb.config import Settings
from soranb.errors import RateLimited
from soranb.widgets import Credentials, Toasts, guarded
from soranb.widgets import credentials as credentials_module
from soranb.widgets._base import state_json
from soranb.widgets.toasts import describe_exception

SECRET = "sk-test-Zq81Lm2Np3Xv4Rt5Ws6Yu7"


def test_guarded_turns_exceptions_into_error_toasts(caplog):
    toasts = Toasts(dismiss_after=None)

    @guarded(toasts)
    def limited():
        raise RateLimited("the provider is busy; try again in 20 s", retry_after=20)

    def broken(_button):
        raise KeyError("size")

    limited()
    button = widgets.Button()
    button.on_click(guarded(toasts, broken))
    with caplog.at_level(logging.ERROR, logger="soranb.widgets"):
        button.click()
    assert toasts.messages == [
        ("error", "the provider is busy; try again in 20 s"),
        ("error", "Unexpected error: KeyError: 'size'"),
    ]
    assert "KeyError" in caplog.text


def test_unexpected_errors_never_show_a_key():
    toasts = Toasts(dismiss_after=None)
    guarded(toasts, lambda: (_ for _ in ()).throw(ValueError(f"bad header Bearer {SECRET}")))()
    ((kind, message),) = toasts.messages
    assert kind == "error" and SECRET not in message and "[redacted]" in message


def test_toasts_dismiss_themselves_and_by_the_close_button():
    toasts = Toasts(dismiss_after=0.05)
    toasts.success("saved")
    deadline = time.monotonic() + 5
    while toasts.children and time.monotonic() < deadline:
        time.sleep(0.01)
    assert toasts.children == ()

    manual = Toasts(dismiss_after=None)
    toast = manual.error("broken")
    toast.close_button.click()
    assert manual.children == () and manual.history == [("error", "broken")]


def test_toasts_from_many_threads():
    toasts = Toasts(dismiss_after=0.001, max_shown=5)
    errors: list[BaseException] = []

    def spam(n: int) -> None:
        try:
            for i in range(40):
                toasts.info(f"{n}-{i}")
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=spam, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(toasts.history) == 240
    assert len(toasts.children) <= 5
    toasts.clear()
    assert toasts.children == ()


@pytest.fixture
def paid_settings(tmp_path):
    return Settings.from_env({"SORANB_PROVIDER": "openai", "SORANB_DATA_DIR": str(tmp_path / "data")}, dotenv=False)


class FakeSession:
    """Stands in for soranb.session: records what the view asked for, builds nothing."""

    def __init__(self) -> None:
        self.reset = 0
        self.settings: list[Settings] = []

    def reset_service(self) -> None:
        self.reset += 1

    def get_service(self, settings: Settings) -> object:
        self.settings.append(settings)
        return object()


def test_credentials_use_the_key_then_forget_it(paid_settings, monkeypatch):
    session = FakeSession()
    real_import = credentials_module.importlib.import_module
    monkeypatch.setattr(
        credentials_module.importlib,
        "import_module",
        lambda name: session if name == "soranb.session" else real_import(name),
    )
    got: list[object] = []
    view = Credentials(paid_settings, toasts=Toasts(dismiss_after=None), on_service=got.append)
    assert list(view.fields) == ["OPENAI_API_KEY"]
    assert isinstance(view.fields["OPENAI_API_KEY"], widgets.Password)
    assert "SORANB_PROVIDER" in view.sources.value

    field = view.fields["OPENAI_API_KEY"]
    field.value = SECRET
    view.use_button.click()
    assert field.value == ""
    assert session.reset == 1 and len(got) == 1
    (new_settings,) = session.settings
    assert new_settings.openai_api_key.reveal() == SECRET
    assert view.fields == {} and "All settings present" in view.intro.value

    everything = json.dumps(widgets.Widget.get_manager_state()["state"], default=str)
    assert SECRET not in everything
    assert SECRET not in state_json(view)
    assert SECRET not in repr(view) and SECRET not in json.dumps(view._repr_mimebundle_(), default=str)
    assert SECRET not in repr(new_settings)
    assert view.toasts.messages[-1][0] == "success"


def test_credentials_clear_the_field_even_when_the_restart_fails(paid_settings, monkeypatch):
    def boom(name):
        raise RuntimeError("cannot start")

    view = Credentials(paid_settings, toasts=Toasts(dismiss_after=None))
    view.fields["OPENAI_API_KEY"].value = SECRET
    monkeypatch.setattr(credentials_module.importlib, "import_module", boom)
    view.use_button.click()
    assert view.fields["OPENAI_API_KEY"].value == ""
    assert view.toasts.messages[-1] == ("error", "Unexpected error: RuntimeError: cannot start")


def test_keyring_checkbox_only_when_keyring_is_there(paid_settings, monkeypatch):
    monkeypatch.setattr(credentials_module, "_keyring", lambda: None)
    view = Credentials(paid_settings, toasts=Toasts(dismiss_after=None))
    assert view.remember.layout.display == "none"


def test_credentials_remember_in_keyring(paid_settings, monkeypatch):
    stored: dict[tuple[str, str], str] = {}

    class FakeKeyring:
        @staticmethod
        def set_password(service: str, name: str, value: str) -> None:
            stored[(service, name)] = value

    session = FakeSession()
    monkeypatch.setattr(credentials_module, "_keyring", lambda: FakeKeyring)
    real_import = credentials_module.importlib.import_module
    monkeypatch.setattr(
        credentials_module.importlib,
        "import_module",
        lambda name: session if name == "soranb.session" else real_import(name),
    )
    view = Credentials(paid_settings, toasts=Toasts(dismiss_after=None))
    assert view.remember.layout.display == ""
    view.fields["OPENAI_API_KEY"].value = SECRET
    view.remember.value = True
    view.use_button.click()
    assert stored == {("soranb", "OPENAI_API_KEY"): SECRET}
    assert view.remember.value is False


def test_nothing_missing_for_the_emulator(tmp_path):
    settings = Settings.from_env({"SORANB_DATA_DIR": str(tmp_path)}, dotenv=False)
    view = Credentials(settings, toasts=Toasts(dismiss_after=None))
    assert view.fields == {} and view.use_button.layout.display == "none"


def test_errors_stay_successes_fade_and_repeats_merge():
    toasts = Toasts(dismiss_after=0.05)
    error = toasts.error("the store is read-only")
    toasts.success("saved")
    assert toasts.error("the store is read-only") is error  # the same notice: one toast with a count
    assert error.count == 2 and "×2" in error.text.value
    deadline = time.monotonic() + 5
    while len(toasts.children) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert toasts.messages == [("error", "the store is read-only")]  # the success faded, the error stays
    error.close_button.click()
    assert toasts.children == ()


def test_a_record_gone_elsewhere_is_said_in_words():
    from soranb.errors import RecordNotFound

    message = describe_exception(RecordNotFound("no record '84c2aa' in local (/home/me/soranb-data)"))
    assert "deleted elsewhere" in message and "84c2" not in message and "/home/me" not in message


def test_toasts_float_in_a_corner():
    from soranb.widgets.style import STYLESHEET

    rule = STYLESHEET.split(".soranb-toasts {", 1)[1].split("}", 1)[0]
    assert "position: fixed" in rule and "bottom" in rule and "right" in rule


def test_the_set_up_cell_says_when_the_previous_kernel_is_gone(tmp_path):
    import subprocess
    import sys

    from soranb.widgets import restart_note

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert restart_note(tmp_path, "generate.ipynb", pid=gone.pid) == ""  # first kernel: nothing to say
    note = restart_note(tmp_path, "generate.ipynb", pid=gone.pid + 100_000)
    assert "kernel was restarted" in note and "disconnected" in note and "Run All" in note
    assert restart_note(tmp_path, "generate.ipynb", pid=gone.pid + 100_000) == ""  # the same kernel again
    assert restart_note(tmp_path, "diagnostics.ipynb", pid=12345) == ""  # another notebook
