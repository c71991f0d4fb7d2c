"""Settings: where each value comes from, and that secrets never show."""

from __future__ import annotations

import os

import pytest

from soranb.config import Secret, Settings, find_project_root
from soranb.errors import ConfigError


def test_defaults_are_offline_and_local(tmp_path):
    (tmp_path / "pyproject.toml").write_text("")
    settings = Settings.from_env({}, cwd=tmp_path)
    assert settings.provider == "emulator" and settings.store_kind == "local"
    assert settings.data_dir == tmp_path / "soranb-data"
    assert not settings.is_paid_provider
    assert "no OPENAI_API_KEY" in settings.sources["SORANB_PROVIDER"]


@pytest.mark.parametrize("marker", [".git", "pyproject.toml"])
def test_a_notebook_kernel_in_notebooks_finds_the_same_data_folder_as_the_cli(tmp_path, marker):
    if marker == ".git":
        (tmp_path / ".git").mkdir()
    else:
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "soranb"\n')
    (tmp_path / "notebooks").mkdir()
    from_root = Settings.from_env({}, cwd=tmp_path)
    from_notebooks = Settings.from_env({}, cwd=tmp_path / "notebooks")
    assert from_root.data_dir == from_notebooks.data_dir == tmp_path / "soranb-data"
    assert find_project_root(tmp_path / "notebooks") == tmp_path


def test_a_key_selects_openai_and_never_shows(tmp_path):
    settings = Settings.from_env({"OPENAI_API_KEY": "sk-live-abcdef123456"}, cwd=tmp_path, dotenv=False)
    assert settings.provider == "openai" and settings.is_paid_provider
    assert settings.openai_api_key.reveal() == "sk-live-abcdef123456"
    for text in (repr(settings), str(settings), f"{settings.openai_api_key}", repr(settings.sources)):
        assert "sk-live-abcdef123456" not in text
    assert settings.sources["OPENAI_API_KEY"] == "environment"


def test_dotenv_at_the_project_root_is_read_and_the_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("SORANB_DATA_DIR=from-dotenv\nSORANB_MAX_CONCURRENT_JOBS=7\n")
    settings = Settings.from_env({"SORANB_MAX_CONCURRENT_JOBS": "3"}, cwd=tmp_path)
    assert settings.data_dir == tmp_path / "from-dotenv"
    assert settings.max_concurrent_jobs == 3
    assert settings.sources["SORANB_DATA_DIR"].startswith(".env file")
    assert settings.sources["SORANB_MAX_CONCURRENT_JOBS"] == "environment"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("SORANB_TIMEOUT", "soon", "not a number"),
        ("SORANB_TIMEOUT", "nan", "not a finite number"),
        ("SORANB_POLL_INTERVAL_MAX", "inf", "not a finite number"),
        ("SORANB_MAX_CONCURRENT_JOBS", "2.5", "whole number"),
        ("SORANB_BUDGET_USD", "-1", "at least 0"),
        ("SORANB_MAX_CONCURRENT_JOBS", "0", "at least 1"),
        ("SORANB_PROVIDER", "sora-cloud", "'emulator', 'openai' or 'azure'"),
        ("SORANB_STORE", "s3", "'local' or 'supabase'"),
    ],
)
def test_malformed_settings_say_what_to_change(tmp_path, name, value, says):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({name: value}, cwd=tmp_path, dotenv=False)
    assert says in str(caught.value) and name in str(caught.value)


def test_missing_secrets_are_named_and_a_typed_key_switches_to_openai(tmp_path):
    settings = Settings.from_env({"SORANB_PROVIDER": "openai", "SORANB_STORE": "supabase"}, cwd=tmp_path, dotenv=False)
    assert settings.missing_secrets() == ["OPENAI_API_KEY", "SUPABASE_URL", "SUPABASE_KEY"]
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        settings.validate()
    typed = Settings.from_env({}, cwd=tmp_path, dotenv=False).with_overrides(openai_api_key="sk-typed-0000000")
    assert typed.provider == "openai" and isinstance(typed.openai_api_key, Secret)
    assert typed.sources["openai_api_key"] == "set in this session"
    assert "sk-typed" not in repr(typed)


def test_a_key_saved_in_the_keyring_is_found_next_time(tmp_path, monkeypatch):
    keyring = pytest.importorskip("keyring")
    from keyring.backend import KeyringBackend

    class MemoryKeyring(KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            self.values: dict[tuple[str, str], str] = {}

        def get_password(self, service, username):
            return self.values.get((service, username))

        def set_password(self, service, username, password):
            self.values[(service, username)] = password

        def delete_password(self, service, username):
            self.values.pop((service, username), None)

    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    try:
        keyring.set_password("soranb", "OPENAI_API_KEY", "sk-from-keyring-0000000")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        monkeypatch.delenv("SORANB_PROVIDER", raising=False)
        settings = Settings.from_env(cwd=tmp_path, dotenv=False)
        assert settings.provider == "openai"
        assert settings.openai_api_key.reveal() == "sk-from-keyring-0000000"
        assert settings.sources["OPENAI_API_KEY"] == "system keyring"
        # tests that pass their own environment never read the machine's keyring
        assert Settings.from_env({}, cwd=tmp_path, dotenv=False).openai_api_key is None
        # a command that never builds the provider does not ask for its key, unless the settings name openai
        browsing = Settings.from_env(cwd=tmp_path, dotenv=False, provider_keys=False)
        assert browsing.openai_api_key is None and browsing.provider == "emulator"
        monkeypatch.setenv("SORANB_PROVIDER", "openai")
        named = Settings.from_env(cwd=tmp_path, dotenv=False, provider_keys=False)
        assert named.openai_api_key.reveal() == "sk-from-keyring-0000000"
        # Supabase's secrets are asked for only when the store is Supabase
        keyring.set_password("soranb", "SUPABASE_KEY", "sb-from-keyring-0000000")
        assert Settings.from_env(cwd=tmp_path, dotenv=False).supabase_key is None
        monkeypatch.setenv("SUPABASE_URL", "https://project.supabase.co")
        assert Settings.from_env(cwd=tmp_path, dotenv=False).supabase_key.reveal() == "sb-from-keyring-0000000"
    finally:
        keyring.set_keyring(previous)


# -- planted files: a shared parent folder must not redirect keys or data -------------------------------

PLANTED = "OPENAI_BASE_URL=https://attacker.example/v1\nSORANB_DATA_DIR=/tmp/attacker-data\n"


def test_a_env_and_data_folder_planted_in_a_shared_parent_are_not_the_project(tmp_path):
    shared = tmp_path / "shared"
    work = shared / "ada" / "videos"
    work.mkdir(parents=True)
    (shared / ".env").write_text(PLANTED)
    (shared / "soranb-data").mkdir()
    (shared / "pyproject.toml").write_text('[project]\nname = "someone-elses"\n')  # not soranb's
    os.chmod(shared, 0o777)
    settings = Settings.from_env({"OPENAI_API_KEY": "sk-live-abcdef123456"}, cwd=work)
    assert find_project_root(work) == work
    assert settings.openai_base_url is None
    assert settings.data_dir == work / "soranb-data"
    assert settings.env_file is None


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
def test_a_env_others_can_change_is_not_read_and_says_why(tmp_path, mode):
    (tmp_path / ".git").mkdir()
    env = tmp_path / ".env"
    env.write_text(PLANTED + "OPENAI_API_KEY=sk-from-file-0000000\n")
    os.chmod(env, mode)
    settings = Settings.from_env({"SORANB_PROVIDER": "openai"}, cwd=tmp_path)
    assert settings.openai_base_url is None and settings.openai_api_key is None
    assert settings.env_file is None
    assert str(env) in settings.describe_sources() and "chmod 600" in settings.describe_sources()
    with pytest.raises(ConfigError, match="chmod 600"):
        settings.validate()
    os.chmod(env, 0o600)
    settings = Settings.from_env({"SORANB_PROVIDER": "openai"}, cwd=tmp_path)
    assert settings.openai_base_url == "https://attacker.example/v1"
    assert settings.env_file == env and settings.describe_sources() == f"settings from {env}"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_a_env_or_git_of_another_user_is_not_trusted(tmp_path):
    other = 65534  # nobody
    parent = tmp_path / "parent"
    work = parent / "work"
    work.mkdir(parents=True)
    (parent / ".git").mkdir()
    os.chown(parent / ".git", other, other)
    assert find_project_root(work) == work  # someone else's .git above is no marker
    (work / ".git").mkdir()
    env = work / ".env"
    env.write_text(PLANTED)
    os.chmod(env, 0o600)
    os.chown(env, other, other)
    settings = Settings.from_env({}, cwd=work)
    assert settings.openai_base_url is None
    assert "another user" in settings.describe_sources()


@pytest.mark.parametrize("key", ["sk-live-abc\ndef123456", "sk-live-abc\tdef123456", "sk-live-abcdef123456\x00"])
def test_a_key_with_a_control_character_is_refused_without_showing_it(tmp_path, key):
    with pytest.raises(ConfigError, match="control character") as caught:
        Settings.from_env({"OPENAI_API_KEY": key}, cwd=tmp_path, dotenv=False)
    assert "abcdef" not in str(caught.value) and "def123456" not in str(caught.value)
    plain = Settings.from_env({}, cwd=tmp_path, dotenv=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY contains a control character"):
        plain.with_overrides(openai_api_key=key)


def test_credentials_in_the_base_url_are_not_in_the_settings_repr(tmp_path):
    settings = Settings.from_env(
        {"OPENAI_API_KEY": "sk-live-abcdef123456", "OPENAI_BASE_URL": "https://ada:hunter2@gw.example/v1"},
        cwd=tmp_path,
        dotenv=False,
    )
    assert settings.openai_base_url == "https://ada:hunter2@gw.example/v1"
    assert "hunter2" not in repr(settings)


def test_the_emulator_reads_its_numbers_with_the_same_parser(tmp_path):
    """One number parser: the emulator's knobs say what to change exactly as soranb's settings do."""
    from soranb.emulator import EmulatorConfig

    assert EmulatorConfig.from_env({"SORANB_EMULATOR_LATENCY_MS": " 25 "}).latency_ms == 25
    for value, says in (("fast", "not a number"), ("2.5", "whole number"), ("nan", "not a finite number")):
        with pytest.raises(ValueError) as caught:  # the emulator's own error type (`soranb emulator` exits 2)
            EmulatorConfig.from_env({"SORANB_EMULATOR_LATENCY_MS": value})
        assert says in str(caught.value) and "SORANB_EMULATOR_LATENCY_MS" in str(caught.value)


async def test_a_data_folder_soranb_makes_is_its_users_only_whatever_the_umask(tmp_path):
    """Under a umask of 002 (common with per-user groups) the folder would be group-writable, which
    soranb then refuses; so it makes it 700 itself, and opens it again the next time."""
    from soranb.store.local import LocalStore

    data = tmp_path / "made" / "soranb-data"
    before = os.umask(0o002)
    try:
        for _ in range(2):
            store = LocalStore(data)
            await store.open()
            await store.close()
    finally:
        os.umask(before)
    for folder in (data, data / "media", data / "media" / "videos"):
        assert folder.stat().st_mode & 0o077 == 0, oct(folder.stat().st_mode)
    assert (data / "soranb.db").stat().st_mode & 0o022 == 0


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_a_signing_key_others_can_change_is_not_used_for_a_supabase_store(tmp_path, mode):
    """Whoever can write installation.key knows the secret that marks records as this installation's."""
    from soranb.store import build_store

    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    key = data / "installation.key"
    key.write_text("00" * 32 + "\n")
    os.chmod(key, mode)
    env = {"SUPABASE_URL": "http://127.0.0.1:9", "SUPABASE_KEY": "anon-key", "SORANB_DATA_DIR": str(data)}
    settings = Settings.from_env(env, dotenv=False, cwd=tmp_path)
    with pytest.raises(ConfigError) as caught:
        build_store(settings)
    assert str(key) in str(caught.value) and "chmod 600" in str(caught.value)
    os.chmod(key, 0o600)
    build_store(settings)  # its owner's own key, kept private: used
