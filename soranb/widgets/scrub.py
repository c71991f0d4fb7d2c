"""ScrubStrip: a finished video's spritesheet as a strip the pointer scrubs, before the video loads.

The strip shows every still of the sheet side by side; moving the pointer along it shows the
still under the pointer, large, over the player below the strip, with its time. Following a pointer needs code in
the page, so this is an anywidget (its JavaScript below, plain ESM, no build step); nothing goes
back to the kernel while the pointer moves. The sheet comes by URL, as the player's video does
(`soranb.widgets._base.media_src`); only http(s) and relative URLs are accepted. Its grid comes
from `soranb.sprites.Spritesheet`.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

from ..report import _safe_url
from ..sprites import MAX_FRAMES

__all__ = ["ScrubStrip"]

_ESM = """
function render({ model, el }) {
  const strip = document.createElement("div");
  strip.className = "soranb-scrub-strip";
  const big = document.createElement("div");
  big.className = "soranb-scrub-frame";
  const time = document.createElement("span");
  big.appendChild(time);
  el.appendChild(strip);
  el.appendChild(big);
  const at = (sheet, n) => {
    const c = model.get("columns"), r = model.get("rows");
    const col = n % c, row = Math.floor(n / c);
    sheet.style.backgroundImage = "url(" + JSON.stringify(model.get("src")) + ")";
    sheet.style.backgroundSize = c * 100 + "% " + r * 100 + "%";
    sheet.style.backgroundPosition =
      (c > 1 ? (col / (c - 1)) * 100 : 0) + "% " + (r > 1 ? (row / (r - 1)) * 100 : 0) + "%";
  };
  const draw = () => {
    strip.replaceChildren();
    for (let n = 0; n < model.get("frames"); n++) {
      const cell = document.createElement("div");
      at(cell, n);
      strip.appendChild(cell);
    }
  };
  strip.addEventListener("pointermove", (event) => {
    const box = strip.getBoundingClientRect();
    const frames = model.get("frames");
    const n = Math.max(0, Math.min(frames - 1, Math.floor(((event.clientX - box.left) / box.width) * frames)));
    at(big, n);
    time.textContent = (((n + 0.5) * model.get("seconds")) / frames).toFixed(1) + " s";
    big.dataset.frame = String(n);
    const left = event.clientX - box.left - big.offsetWidth / 2;
    big.style.left = Math.max(0, Math.min(box.width - big.offsetWidth, left)) + "px";
    big.style.aspectRatio = model.get("aspect");
    big.style.display = "block";
  });
  strip.addEventListener("pointerleave", () => { big.style.display = "none"; });
  model.on("change", draw);
  draw();
}
export default { render };
"""

_CSS = """
.soranb-scrub { position: relative; width: 100%; }
.soranb-scrub-strip { display: flex; height: 36px; cursor: col-resize; border-radius: 3px; overflow: hidden; }
.soranb-scrub-strip > div { flex: 1; background-repeat: no-repeat; }
.soranb-scrub-frame { display: none; position: absolute; top: 40px; width: 60%; background-repeat: no-repeat;
  background-color: #000; border: 2px solid #fff; border-radius: 3px; box-shadow: 0 1px 6px #0006;
  pointer-events: none; z-index: 2; }
.soranb-scrub-frame > span { position: absolute; right: 3px; bottom: 2px; color: #fff; font-size: 11px;
  text-shadow: 0 0 2px #000; }
"""


class ScrubStrip(anywidget.AnyWidget):
    """`src` (the sheet's URL), its grid (`columns` x `rows`, `frames` stills), the video's `seconds` and
    shape (`aspect`, e.g. "1280 / 720")."""

    _esm = _ESM
    _css = _CSS
    src = traitlets.Unicode("").tag(sync=True)
    columns = traitlets.Int(1).tag(sync=True)
    rows = traitlets.Int(1).tag(sync=True)
    frames = traitlets.Int(1).tag(sync=True)
    seconds = traitlets.Float(0.0).tag(sync=True)
    aspect = traitlets.Unicode("16 / 9").tag(sync=True)  # the video's width / height, as CSS aspect-ratio

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_class("soranb-scrub")

    @traitlets.validate("src")
    def _only_web_urls(self, proposal: dict[str, Any]) -> str:
        """An http(s) or relative URL only (it ends up in CSS `url()`): anything else shows nothing."""
        value = str(proposal["value"])
        return "" if _safe_url(value) == "#" else value  # the reports' own allowlist of schemes

    @traitlets.validate("columns", "rows", "frames")
    def _a_sane_grid(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if not 1 <= value <= MAX_FRAMES:
            raise traitlets.TraitError(f"a spritesheet has 1 to {MAX_FRAMES} stills per side, not {value}")
        return value
