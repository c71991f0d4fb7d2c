"""Is a downloaded video whole? Checked before it goes into the store.

A body cut short without a Content-Length looks like a finished download. A cut MP4
either does not open (its index is at the end) or opens and stops decoding early
(its index is at the front, `+faststart`): so the container is opened, its duration
compared with what the job asked for, and the last second decoded.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ContentIncomplete

__all__ = ["verify_video"]


def verify_video(path: Path, seconds: int) -> float:
    """The video's duration in seconds; `ContentIncomplete` when it is not the whole asked video.

    `seconds` is the length the job asked for (0 when unknown: only decodability is checked).
    Runs PyAV, so call it in a worker thread.
    """
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ContentIncomplete(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            if seconds and abs(duration - seconds) > max(0.5, 0.1 * seconds):
                raise ContentIncomplete(f"{path.name} lasts {duration:.2f} s, the job asked for {seconds} s")
            last_second = max(0.0, duration - 1.0)
            base = float(stream.time_base or 1)
            container.seek(int(last_second / base), stream=stream, backward=True)
            latest = -1.0
            for frame in container.decode(stream):
                if frame.time is not None:
                    latest = max(latest, float(frame.time))
            if latest < last_second:
                raise ContentIncomplete(
                    f"{path.name} stops decoding at {max(latest, 0):.2f} s of {duration:.2f} s: it was cut short"
                )
            return duration
    except ContentIncomplete:
        raise
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        raise ContentIncomplete(f"{path.name} is not a playable video ({type(exc).__name__}: {exc})") from None


def _duration(container: object, stream: object) -> float:
    import av

    total = getattr(container, "duration", None)
    if total:
        return float(total / av.time_base)
    frames, base = getattr(stream, "duration", None), getattr(stream, "time_base", None)
    if frames and base:
        return float(frames * base)
    raise ContentIncomplete("the video does not say how long it is")
