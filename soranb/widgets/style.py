"""The views' stylesheet: a `<style>` element carried by an HTML widget (ipywidgets has no other way).

Why each rule:
- JupyterLab gives every HTML widget a 28 px line height (the height of one control row); prompts,
  errors and log lines are text, so they get normal line spacing.
- Notices float in the bottom-right corner, where they neither hide the form nor push the grid.
- A running card's progress bar is striped and moving, so a job that is working looks alive between
  polls.
- When its kernel restarts, JupyterLab's widget manager marks every view `jupyter-widgets-disconnected`
  (a small broken-chain icon on each control); a soranb view says instead, in words and at once, that it
  is disconnected and what to do, and its controls fade.
"""

from __future__ import annotations

import ipywidgets as widgets

__all__ = ["DISCONNECTED", "STYLESHEET", "stylesheet"]

_VIEWS = ":is(.soranb-app, .soranb-form, .soranb-history, .soranb-diagnostics, .soranb-credentials)"
DISCONNECTED = """
VIEWS.jupyter-widgets-disconnected > * { opacity: 0.55; }
VIEWS.jupyter-widgets-disconnected::before { display: block; content: "Disconnected: this view belongs to a \\
kernel that was restarted, so clicking it does nothing. Run the cells again (Run \\25B8  Run All Cells) for a \\
live one; no job was lost.";
  font: 600 13px/1.4 var(--jp-ui-font-family, sans-serif); color: #92400e; background: #fef3c7;
  border: 1px solid #f59e0b; border-radius: 4px; padding: 4px 8px; margin-bottom: 4px; }
VIEWS .jupyter-widgets-disconnected::before { content: none; }
""".replace("VIEWS", _VIEWS)

STYLESHEET = (
    """
.soranb-form .widget-html-content, .soranb-history .widget-html-content,
.soranb-diagnostics .widget-html-content, .soranb-toasts .widget-html-content { line-height: 1.4; }
.soranb-toasts { position: fixed; right: 16px; bottom: 36px; z-index: 1000; max-width: 440px; }
.soranb-toast { background: var(--jp-layout-color0, #fff); box-shadow: 0 2px 10px rgba(0, 0, 0, 0.18);
  border-radius: 4px; align-items: center; }
.soranb-section-title { font-weight: 600; font-size: 14px; margin: 2px 0 4px; }
.soranb-form { border: 1px solid #e5e7eb; border-radius: 6px; padding: 8px; margin-bottom: 12px; }
.soranb-history { border-top: 2px solid #e5e7eb; padding-top: 8px; }
.soranb-card-running .widget-progress .progress-bar {
  background-image: linear-gradient(45deg, rgba(255, 255, 255, 0.3) 25%, transparent 25%, transparent 50%,
    rgba(255, 255, 255, 0.3) 50%, rgba(255, 255, 255, 0.3) 75%, transparent 75%, transparent);
  background-size: 16px 16px; animation: soranb-stripes 1s linear infinite; transition: width 1s linear; }
@keyframes soranb-stripes { from { background-position: 16px 0; } to { background-position: 0 0; } }
.soranb-download:hover { background: #eff6ff; }
"""
    + DISCONNECTED
)


def stylesheet() -> widgets.HTML:
    """One small widget that puts the stylesheet in the page (repeating it is harmless)."""
    view = widgets.HTML(f"<style>{STYLESHEET}</style>", layout=widgets.Layout(display="none"))
    view.add_class("soranb-style")
    return view
