"""The media route's handler, kept apart so `soranb.jupyter.media_src` never imports jupyter_server."""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.base.handlers import AuthenticatedFileHandler
from tornado import web

from .jupyter import safe_key

__all__ = ["MediaHandler"]


class MediaHandler(AuthenticatedFileHandler):
    """Read-only media behind Jupyter's login; Range, ETag-less 304s and HEAD come from tornado.

    The keys are checked before tornado sees them, so ``..``, absolute paths and hidden names
    never reach the file system. The data folder itself may be hidden (``.soranb-data``).
    """

    def _checked(self, path: str) -> str:
        try:
            return safe_key(path)
        except ValueError:
            raise web.HTTPError(404) from None

    def head(self, path: str) -> Any:
        return super().head(self._checked(path))

    def get(self, path: str, include_body: bool = True) -> Any:
        return super().get(self._checked(path), include_body=include_body)

    def validate_absolute_path(self, root: str, absolute_path: str) -> str:
        """Tornado's containment check, without Jupyter's hidden-folder rule for the root itself,
        then our own on the real path: a symlink in the media folder never leads out of it,
        whatever tornado's version checks."""
        checked = web.StaticFileHandler.validate_absolute_path(self, root, absolute_path)
        if checked is None:
            raise web.HTTPError(404)
        real_root, real = os.path.realpath(root), os.path.realpath(checked)
        if os.path.commonpath([real_root, real]) != real_root or not os.path.isfile(real):
            raise web.HTTPError(404)
        return checked
