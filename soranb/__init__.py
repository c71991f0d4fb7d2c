"""soranb: launch, watch, keep and share Sora-2-shaped video generations from JupyterLab."""

from __future__ import annotations

__version__ = "0.1.0"
