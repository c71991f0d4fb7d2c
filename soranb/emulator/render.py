"""Real media for emulated jobs: an H.264 MP4, a WebP thumbnail and a JPEG spritesheet.

The video has to be cheap to make (the emulator renders one per job, on a
2-core laptop) and still be a real, streamable file a browser plays. So the
prompt is drawn once with Pillow onto a canvas a little wider than the frame,
and each frame is a crop of that canvas (a slow pan) plus a few cheap shapes
(a bouncing dot, a progress bar, a time code). libx264 `ultrafast`, yuv420p and
`+faststart` keep it fast and playable everywhere, Debian's Chromium included.

Sora 2 clips have sound, so every MP4 has a mono AAC track: a tone whose pitch follows
the dot's height (a steady hum under a source video's frames), made one video frame at a time.

An extension starts with the frames of its source video and continues with a new segment; an
edit is its source re-encoded with the edit's prompt drawn on every frame.

Every file is written under a temporary name and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import array
import math
import os
import secrets
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
from av.video.plane import VideoPlane
from PIL import Image, ImageDraw, ImageFont, ImageOps

__all__ = ["AUDIO_RATE", "FPS", "SPRITESHEET_FILE", "THUMBNAIL_FILE", "VIDEO_FILE", "RenderSpec", "render_media"]

FPS = 24
AUDIO_RATE = 24_000  # mono AAC; plenty for a tone, and half the work of 48 kHz
_AUDIO_LEVEL = 6000  # peak of the 16-bit tone: audible, far from clipping
VIDEO_FILE = "video.mp4"
THUMBNAIL_FILE = "thumbnail.webp"
SPRITESHEET_FILE = "spritesheet.jpg"

_SPRITE_COLUMNS = 4
_SPRITE_TILE_WIDTH = 256
_MAX_PROMPT_LINES = 10


@dataclass(frozen=True)
class RenderSpec:
    """What to render: the frame size, the length, the prompt to show and an optional backdrop image."""

    width: int
    height: int
    seconds: int
    prompt: str
    backdrop: Path | None = None
    fps: int = FPS
    source: Path | None = None  # an MP4 whose frames come first (extend) or are re-drawn (edit)
    source_seconds: int = 0  # how many of `seconds` the source fills when extending
    edit: bool = False  # re-render the source with the prompt drawn in, instead of extending it
    characters: tuple[str, ...] = ()  # names shown with the prompt


def render_media(spec: RenderSpec, out_dir: Path) -> None:
    """Write VIDEO_FILE, THUMBNAIL_FILE and SPRITESHEET_FILE into out_dir; the video last, so its presence
    means all three are there."""
    out_dir.mkdir(parents=True, exist_ok=True)
    total = spec.seconds * spec.fps
    thumb_index = total // 3
    sprite_indices = {second * spec.fps + spec.fps // 2: second for second in range(spec.seconds)}
    thumbnail: Image.Image | None = None
    tiles: dict[int, Image.Image] = {}

    video_tmp = _temp_name(out_dir / VIDEO_FILE)
    try:
        with av.open(str(video_tmp), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=spec.fps, options={"preset": "ultrafast"})
            stream.width = spec.width
            stream.height = spec.height
            stream.pix_fmt = "yuv420p"
            audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            tone = _Tone(spec.fps)
            for index, (frame, level) in enumerate(_video_frames(spec)):
                if index == thumb_index:
                    thumbnail = frame.to_image()
                if index in sprite_indices:
                    tiles[sprite_indices[index]] = _tile(frame.to_image())
                for packet in stream.encode(frame):
                    container.mux(packet)
                for packet in audio.encode(tone.next(level)):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
        assert thumbnail is not None
        _save_atomic(thumbnail, out_dir / THUMBNAIL_FILE, "WEBP", quality=80)
        _save_atomic(_spritesheet(tiles), out_dir / SPRITESHEET_FILE, "JPEG", quality=85)
        os.replace(video_tmp, out_dir / VIDEO_FILE)
    finally:
        video_tmp.unlink(missing_ok=True)


class _Planes:
    """The three planes of a yuv420p image as bytes, with their row strides: pixels to copy from."""

    def __init__(self, frame: av.VideoFrame) -> None:
        self.data = [bytes(plane) for plane in frame.planes]
        self.strides = [plane.line_size for plane in frame.planes]
        self.width, self.height = frame.width, frame.height

    @classmethod
    def of(cls, image: Image.Image) -> _Planes:
        return cls(av.VideoFrame.from_image(image).reformat(format="yuv420p"))


class _Tone:
    """One video frame's worth of audio at a time: a sine whose pitch follows `level` (0..1), phase kept
    continuous across frames so there are no clicks; `None` is a low steady hum."""

    def __init__(self, fps: int) -> None:
        self.samples = AUDIO_RATE // fps
        self.phase = 0.0
        self.pts = 0

    def next(self, level: float | None) -> av.AudioFrame:
        freq = 110.0 if level is None else 220.0 + 440.0 * level
        step = 2 * math.pi * freq / AUDIO_RATE
        phase, sin, n = self.phase, math.sin, self.samples
        samples = array.array("h", [int(_AUDIO_LEVEL * sin(phase + step * k)) for k in range(n)])
        self.phase = (phase + step * n) % (2 * math.pi)
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.pts
        self.pts += n
        return frame


def _video_frames(spec: RenderSpec) -> Iterator[tuple[av.VideoFrame, float | None]]:
    """Every frame of the video with the audio level it carries: the source's frames first (all of
    them, with the prompt drawn in, for an edit), then the newly generated ones."""
    if spec.source is None:
        yield from _frames(spec)
        return
    total = spec.seconds * spec.fps
    count = total if spec.edit else min(total, spec.source_seconds * spec.fps)
    banner = None
    if spec.edit:
        font = ImageFont.load_default(size=max(14, min(spec.width, spec.height) // 24))
        text = _wrap(f"EDIT: {spec.prompt}", font, spec.width * 4 // 5)[0]  # one line that fits the frame
        banner = _text_patch(text, font)
    shown = 0
    last: av.VideoFrame | None = None
    with av.open(str(spec.source)) as source:
        for decoded in source.decode(video=0):
            if shown >= count:
                break
            frame = decoded.reformat(width=spec.width, height=spec.height, format="yuv420p")
            if banner is not None:
                frame = _with_patch(frame, banner, spec.width // 20 & ~1, spec.height // 20 & ~1)
            frame.pts = None
            last = frame
            shown += 1
            yield frame, None
    if last is None:
        raise ValueError("the source video has no frames")
    for _ in range(count - shown):  # a source shorter than it claims: hold its last frame
        yield last, None
    if total > count:
        yield from _frames(replace(spec, seconds=spec.seconds - spec.source_seconds, source=None))


def _with_patch(frame: av.VideoFrame, patch: _Planes, x: int, y: int) -> av.VideoFrame:
    """A copy of `frame` with `patch` copied in at an even (x, y)."""
    out = av.VideoFrame(frame.width, frame.height, "yuv420p")
    strides = [plane.line_size for plane in out.planes]
    planes = [bytearray(_cut(_Planes(frame), n, 0, plane)) for n, plane in enumerate(out.planes)]
    _blit(planes, strides, patch, x, y)
    for plane, data in zip(out.planes, planes, strict=True):
        plane.update(bytes(data))
    return out


def _frames(spec: RenderSpec) -> Iterator[tuple[av.VideoFrame, float]]:
    """yuv420p frames cut from one wide canvas, panning left to right, with a dot, a progress bar and a
    time code. The canvas is converted to YUV once; each frame is row slices of it (even offsets keep
    the half-size chroma planes aligned), so no per-frame colour conversion or full-frame drawing."""
    width, height = spec.width, spec.height
    pan = (width // 8) & ~1
    canvas = _Planes.of(_canvas(spec, width + pan))
    total = spec.seconds * spec.fps
    short = min(width, height)
    radius = max(4, short // 24)
    bar = max(4, short // 90) & ~1
    small = ImageFont.load_default(size=max(12, short // 28))
    dot = _yuv_of((255, 214, 10))
    white = _yuv_of((255, 255, 255))
    for index in range(total):
        t = index / max(1, total - 1)
        left = round(pan * t) & ~1
        frame = av.VideoFrame(width, height, "yuv420p")
        strides = [plane.line_size for plane in frame.planes]
        planes = [bytearray(_cut(canvas, n, left, plane)) for n, plane in enumerate(frame.planes)]
        # A dot bouncing along a sine path: motion a viewer (and a codec) can see.
        cx = radius + (width - 2 * radius) * (0.5 + 0.5 * math.sin(2 * math.pi * index / (spec.fps * 2)))
        cy = height - 6 * radius - abs(math.sin(math.pi * index / spec.fps)) * height / 4
        _disc(planes, strides, int(cx) & ~1, int(cy) & ~1, radius, dot)
        _fill(planes, strides, (0, height - bar, round(width * (index + 1) / total) & ~1, height), white)
        stamp = _text_patch(f"{index / spec.fps:05.2f}s", small)
        _blit(planes, strides, stamp, (width - short // 4) & ~1, (height - short // 10) & ~1)
        for plane, data in zip(frame.planes, planes, strict=True):
            plane.update(bytes(data))
        yield frame, 1 - cy / height


def _cut(src: _Planes, n: int, left: int, dst: VideoPlane) -> bytes:
    """Plane n of the window starting at x=left, laid out with the destination plane's row stride."""
    shift = 0 if n == 0 else 1
    x, w, h = left >> shift, dst.width, dst.height
    stride, data = src.strides[n], src.data[n]
    pad = bytes(dst.line_size - w)
    return pad.join(data[row * stride + x : row * stride + x + w] for row in range(h)) + pad


def _yuv_of(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    planes = _Planes.of(Image.new("RGB", (2, 2), rgb))
    return planes.data[0][0], planes.data[1][0], planes.data[2][0]


def _fill(planes: list[bytearray], strides: list[int], box: tuple[int, int, int, int], yuv: tuple[int, ...]) -> None:
    """Fill an even-aligned rectangle (x0, y0, x1, y1) with one colour."""
    x0, y0, x1, y1 = box
    for n in range(3):
        shift = 0 if n == 0 else 1
        a, b = x0 >> shift, x1 >> shift
        span = bytes([yuv[n]]) * (b - a)
        for row in range(y0 >> shift, y1 >> shift):
            planes[n][row * strides[n] + a : row * strides[n] + b] = span


def _disc(planes: list[bytearray], strides: list[int], cx: int, cy: int, r: int, yuv: tuple[int, ...]) -> None:
    for dy in range(-r, r, 2):
        half = int(math.sqrt(max(0, r * r - (dy + 1) ** 2))) & ~1
        _fill(planes, strides, (cx - half, cy + dy, cx + half, cy + dy + 2), yuv)


def _text_patch(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> _Planes:
    """A small dark box with the text on it, as YUV planes; drawn per frame, but only box-sized."""
    _, _, right, bottom = font.getbbox(text)
    image = Image.new("RGB", ((int(right) + 8) & ~1, (int(bottom) + 6) & ~1), (16, 16, 16))
    ImageDraw.Draw(image).text((4, 3), text, font=font, fill="white")
    return _Planes.of(image)


def _blit(planes: list[bytearray], strides: list[int], patch: _Planes, x: int, y: int) -> None:
    """Copy a patch's planes into the frame at an even (x, y)."""
    for n in range(3):
        shift = 0 if n == 0 else 1
        w, h = patch.width >> shift, patch.height >> shift
        px, py = x >> shift, y >> shift
        src, src_stride, dst_stride = patch.data[n], patch.strides[n], strides[n]
        for row in range(h):
            at = (py + row) * dst_stride + px
            planes[n][at : at + w] = src[row * src_stride : row * src_stride + w]


def _canvas(spec: RenderSpec, canvas_width: int) -> Image.Image:
    """The backdrop (the reference image, or a colour gradient) with the prompt drawn once on it."""
    size = (canvas_width, spec.height)
    if spec.backdrop is not None:
        with Image.open(spec.backdrop) as source:
            canvas = ImageOps.fit(source.convert("RGB"), size)
    else:
        ramp = Image.linear_gradient("L")
        canvas = Image.merge(
            "RGB",
            (
                ramp.rotate(90).resize(size),
                ramp.resize(size).point(lambda v: 60 + v // 2),
                Image.new("L", size, 150 - len(spec.prompt) % 100),
            ),
        )
    short = min(spec.width, spec.height)
    margin = short // 20
    font = ImageFont.load_default(size=max(14, short // 20))
    left = canvas_width - spec.width + margin  # always inside the visible window while panning
    text_width = spec.width - (canvas_width - spec.width) - 2 * margin
    lines = _wrap(spec.prompt, font, text_width - 2 * margin)
    lines += [f"with {' '.join(name.split())[:40]}" for name in spec.characters]
    draw = ImageDraw.Draw(canvas, "RGBA")
    text = "\n".join(lines)
    box = draw.multiline_textbbox((left + margin, margin * 2), text, font=font, spacing=short // 80)
    draw.rounded_rectangle(
        (box[0] - margin // 2, box[1] - margin // 2, box[2] + margin // 2, box[3] + margin // 2),
        radius=margin // 2,
        fill=(0, 0, 0, 140),
    )
    draw.multiline_text((left + margin, margin * 2), text, font=font, fill="white", spacing=short // 80)
    return canvas


def _wrap(prompt: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int) -> list[str]:
    """Greedy word wrap to max_width pixels, at most _MAX_PROMPT_LINES lines, the last one ellipsized."""
    average = max(1.0, font.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    columns = max(8, int(max_width / average))
    lines = textwrap.wrap(" ".join(prompt.split()), width=columns) or [""]
    if len(lines) > _MAX_PROMPT_LINES:
        lines = [*lines[: _MAX_PROMPT_LINES - 1], lines[_MAX_PROMPT_LINES - 1][: columns - 1] + "…"]
    return [line if font.getlength(line) <= max_width else line[: columns - 1] + "…" for line in lines]


def _tile(frame: Image.Image) -> Image.Image:
    height = round(frame.height * _SPRITE_TILE_WIDTH / frame.width)
    return frame.resize((_SPRITE_TILE_WIDTH, height), Image.Resampling.BILINEAR)


def _spritesheet(tiles: dict[int, Image.Image]) -> Image.Image:
    """One tile per second of video, in a grid _SPRITE_COLUMNS wide."""
    ordered = [tiles[key] for key in sorted(tiles)]
    tile_w, tile_h = ordered[0].size
    columns = min(_SPRITE_COLUMNS, len(ordered))
    rows = math.ceil(len(ordered) / columns)
    sheet = Image.new("RGB", (columns * tile_w, rows * tile_h))
    for n, tile in enumerate(ordered):
        sheet.paste(tile, ((n % columns) * tile_w, (n // columns) * tile_h))
    return sheet


def _temp_name(final: Path) -> Path:
    return final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _save_atomic(image: Image.Image, final: Path, format_: str, **params: object) -> None:
    tmp = _temp_name(final)
    try:
        image.save(tmp, format=format_, **params)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
