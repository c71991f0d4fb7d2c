"""The Jupyter side of soranb: `media_src` and the media route of the server extension."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from labserver import LabServer, run_server

from soranb.jupyter import _jupyter_server_extension_points, media_root, media_src, safe_key
from soranb.store.local import LocalStore

KEY = "videos/0b7c1f0e-5d7a-4c55-9a3e-2f6f5c1d9e01.mp4"


def _service(store_kind: str, url: str = "https://example.invalid/signed/x") -> Any:
    """A service whose store keeps its media on this machine (`local`) or elsewhere."""
    local_path = LocalStore(Path("/nonexistent/soranb-data")).local_path if store_kind == "local" else lambda key: None
    return SimpleNamespace(media_path=local_path, media_url=lambda key: url)


def test_media_src_local_uses_the_server_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SORANB_JUPYTER_BASE_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert media_src(_service("local"), KEY) == "/soranb/media/" + KEY


def test_media_src_follows_the_hub_prefix_and_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SORANB_JUPYTER_BASE_URL", raising=False)
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada")
    assert media_src(_service("local"), KEY) == "/user/ada/soranb/media/" + KEY
    monkeypatch.setenv("SORANB_JUPYTER_BASE_URL", "/lab-base/")
    assert media_src(_service("local"), KEY) == "/lab-base/soranb/media/" + KEY


def test_media_src_follows_the_store_in_use_not_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A service built with another store than its settings name plays from the store it really uses."""
    monkeypatch.delenv("SORANB_JUPYTER_BASE_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    settings = SimpleNamespace(store_kind="local")
    remote = SimpleNamespace(settings=settings, media_path=lambda key: None, media_url=lambda key: "https://x.co/s?t=1")
    assert media_src(remote, KEY) == "https://x.co/s?t=1"
    settings = SimpleNamespace(store_kind="supabase")
    local = SimpleNamespace(settings=settings, media_path=LocalStore(tmp_path).local_path, media_url=lambda key: "")
    assert media_src(local, KEY) == "/soranb/media/" + KEY


def test_media_src_other_stores_use_the_store_url() -> None:
    assert media_src(_service("supabase", "https://x.supabase.co/s?token=1"), KEY) == (
        "https://x.supabase.co/s?token=1"
    )


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../x.mp4",
        "/etc/passwd",
        "videos/../../x",
        "videos/.hidden",
        "videos//x",
        "a\\b",
        "videos/x y.mp4",
    ],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError):
        safe_key(key)
    with pytest.raises(ValueError):
        media_src(_service("local"), key)


def test_extension_points_name_this_module() -> None:
    assert _jupyter_server_extension_points() == [{"module": "soranb.jupyter"}]


# --- the media route on a real server ----------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), b""


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("media-route")
    data = base / ".hidden-data"  # a hidden data folder outside the server's root still works
    video = media_root(data) / KEY
    video.parent.mkdir(parents=True)
    video.write_bytes(bytes(range(256)) * 40)
    (base / "secret.txt").write_text("not for the browser")
    (data / "soranb.sqlite3").write_text("not media")
    # Links planted inside the media folder that lead out of it (a file and a whole folder).
    (video.parent / "link.mp4").symlink_to(base / "secret.txt")
    (media_root(data) / "thumbnails").symlink_to(base, target_is_directory=True)
    root = base / "root"
    root.mkdir()
    env = {"SORANB_DATA_DIR": str(data), "SORANB_PROVIDER": "emulator", "OPENAI_API_KEY": ""}
    with run_server(root, base / "server", env, lab=False) as server:
        yield server


def test_route_serves_media_behind_login(media_server: LabServer) -> None:
    status, headers, body = _get(media_server.url("soranb/media/" + KEY))
    assert status == 200
    assert headers["Content-Type"] == "video/mp4"
    assert body == bytes(range(256)) * 40
    status, _, body = _get(media_server.url("soranb/media/" + KEY, with_token=False))
    assert status in (302, 403) and body == b""


def test_route_supports_range_requests(media_server: LabServer) -> None:
    status, headers, body = _get(media_server.url("soranb/media/" + KEY), {"Range": "bytes=256-511"})
    assert status == 206
    assert headers["Content-Range"] == f"bytes 256-511/{256 * 40}"
    assert body == bytes(range(256))


@pytest.mark.parametrize(
    "path",
    [
        "soranb/media/%2e%2e/%2e%2e/secret.txt",
        "soranb/media/videos/%2e%2e/%2e%2e/%2e%2e/secret.txt",
        "soranb/media/%2Fetc%2Fpasswd",
        "soranb/media/..%2F..%2Fsecret.txt",
        "soranb/media/videos/missing.mp4",
    ],
)
def test_route_refuses_paths_outside_media(media_server: LabServer, path: str) -> None:
    status, _, body = _get(media_server.url(path))
    assert status == 404
    assert b"not for the browser" not in body


def test_route_does_not_serve_the_database(media_server: LabServer) -> None:
    status, _, body = _get(media_server.url("soranb/media/..%2Fsoranb.sqlite3"))
    assert status == 404 and b"not media" not in body


@pytest.mark.parametrize("key", ["videos/link.mp4", "thumbnails/secret.txt"])
def test_route_never_follows_a_link_out_of_the_media_folder(media_server: LabServer, key: str) -> None:
    status, _, body = _get(media_server.url("soranb/media/" + key))
    assert status in (403, 404)
    assert b"not for the browser" not in body


def test_handler_checks_the_real_path_whatever_tornado_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tornado whose own check lets a symlink through (older versions compare abspath only)."""
    from tornado import web

    from soranb._jupyter_handler import MediaHandler

    root = tmp_path / "media"
    (root / "videos").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("not for the browser")
    (root / "videos" / "link.mp4").symlink_to(tmp_path / "secret.txt")
    (root / "videos" / "real.mp4").write_bytes(b"video")
    monkeypatch.setattr(web.StaticFileHandler, "validate_absolute_path", lambda self, root, path: path)
    handler: Any = SimpleNamespace()
    assert MediaHandler.validate_absolute_path(handler, str(root), str(root / "videos" / "real.mp4"))
    with pytest.raises(web.HTTPError) as refused:
        MediaHandler.validate_absolute_path(handler, str(root), str(root / "videos" / "link.mp4"))
    assert refused.value.status_code == 404
