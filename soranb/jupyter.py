"""soranb inside Jupyter: a server extension that serves the local media folder, and `media_src`.

Why an extension: Jupyter's own ``/files/...`` only serves files under its root
and never hidden folders, but the data folder may live anywhere. The extension
serves ``{base_url}soranb/media/<key>`` read-only, behind Jupyter's login, with
Range support so a ``<video>`` can seek.

Installing soranb enables it: the wheel puts ``jupyter-config/jupyter_server_config.d/soranb.json``
under ``<prefix>/etc/jupyter``. For one server only: ``--ServerApp.jpserver_extensions="{'soranb.jupyter': True}"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from . import __version__
from .store.base import is_media_key

if TYPE_CHECKING:
    from .protocols import ServiceLike

__all__ = ["MEDIA_ROUTE", "__version__", "data_dir", "media_root", "media_src", "safe_key"]

MEDIA_ROUTE = "soranb/media/"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def safe_key(key: str) -> str:
    """`key` if it is a store's own media key (`is_media_key`), else ValueError: user text is never a path."""
    if not is_media_key(key):
        raise ValueError("not a media key")
    return key


def _base_url() -> str:
    """The Jupyter server's base URL as seen from a kernel (JupyterHub sets the prefix)."""
    base = os.environ.get("SORANB_JUPYTER_BASE_URL") or os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    if not base.startswith("/") and "://" not in base:
        base = "/" + base
    return base if base.endswith("/") else base + "/"


def media_src(service: ServiceLike, key: str) -> str:
    """The URL a browser page inside JupyterLab uses to fetch a media key.

    Local store: the server extension's URL (works wherever the data folder lives).
    Other stores: the store's own URL (e.g. a signed Supabase URL). The store in use decides
    (`Store.local_path`), not the settings: a service built with another store plays from it.
    """
    if service.media_path(key) is None:  # (a local store refuses a key that is not a media key)
        return str(service.media_url(key))
    return _base_url() + MEDIA_ROUTE + quote(safe_key(key), safe="/")


def data_dir() -> Path:
    """The configured data folder, as the kernel's service would see it."""
    try:
        from .config import Settings  # the settings module owns the rules (env, .env, defaults)

        return Path(Settings.from_env().data_dir).resolve()
    except Exception:  # a settings problem must not stop Jupyter; the service reports it in the kernel
        raw = os.environ.get("SORANB_DATA_DIR")
        return Path(raw).expanduser().resolve() if raw else PROJECT_ROOT / "soranb-data"


def media_root(folder: Path | None = None) -> Path:
    """Where media keys resolve: ``<data folder>/media``, the local store's layout (`LocalStore.media_dir`)."""
    return (folder if folder is not None else data_dir()) / "media"


# --- the server extension ---------------------------------------------------------------------------


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "soranb.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the read-only media route on the running Jupyter server."""
    from jupyter_server.utils import url_path_join

    from ._jupyter_handler import MediaHandler

    root = media_root()
    web_app = serverapp.web_app
    pattern = url_path_join(web_app.settings["base_url"], MEDIA_ROUTE, "(.+)")
    web_app.add_handlers(".*$", [(pattern, MediaHandler, {"path": str(root)})])
    serverapp.log.info("soranb: serving media from %s at %s", root, pattern)
