"""The emulator's job table: jobs on disk, their status derived from the clock, renders in threads.

A job is one JSON file written once at creation (`jobs/{key}.json`); its media
live in `media/{key}/`. The key is the emulator's own `video_` + hex; the id the API shows is the key
itself, or, with `id_style="gateway"`, the key wrapped as LiteLLM's proxy wraps an upstream id
(`video_` + base64 of `litellm:...;video_id:{key};...`, with `+` and `=`), so a client is tested with
long opaque ids while no id from a URL ever becomes a file name. Nothing about a job's progress is stored: status and
progress are computed from `created_ts`, the job's duration and the clock, so
a restarted process, or a second one on the same folder, sees the same job
advance. The only thing written later is `media/{id}/rendered.json`, the
marker that the video exists, which also decides `completed_at`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import secrets
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from soranb.catalog import parse_size
from soranb.emulator.config import EmulatorConfig
from soranb.emulator.render import RenderSpec, render_media
from soranb.files import write_bytes_whole

__all__ = ["Job", "JobState", "JobTable"]

log = logging.getLogger("soranb.emulator")

QUEUED_SHARE = 0.05  # the first 5 % of a job's duration it waits in the queue
MODERATION_FAIL_SHARE = 0.3  # a blocked prompt fails this far into the job
RENDER_WAIT_HINT_S = 0.5  # the poll hint while the duration has passed but the video is still rendering
# What LiteLLM's proxy wraps around an upstream id; `~~~` makes a `+` in the base64, the length a `=`.
_GATEWAY_HEAD = "litellm:custom_llm_provider:openai;model_id:emulator~~~sora-2-gateway-" + "0" * 40
_GATEWAY_DEPLOYMENT = "soranb-emulator-" + "f" * 48 + "-abc"


@dataclass(frozen=True)
class Job:
    """What was asked for, and when; immutable once written."""

    id: str
    model: str
    prompt: str
    size: str
    seconds: int
    created_ts: float
    duration: float  # clock seconds from creation to the end of generation
    order_key: int  # wall nanoseconds at creation: a stable tie-break for jobs created in one clock tick
    blocked: bool = False
    remixed_from_video_id: str | None = None
    reference: str | None = None  # file name of the backdrop image inside the job's media folder
    kind: str = "create"  # "create", "remix", "extend" or "edit"
    source: str | None = None  # file name of the source MP4 (extend, edit) inside the job's media folder
    source_seconds: int = 0  # how much of `seconds` the source fills (extend)
    source_video_id: str | None = None  # the video extended or edited, when it was one of ours
    characters: tuple[str, ...] = ()  # names of the characters the video features


@dataclass(frozen=True)
class JobState:
    """What a job looks like at one instant."""

    status: str
    progress: int
    completed_at: int | None = None
    expires_at: int | None = None
    error: dict[str, str] | None = None
    wait_s: float | None = None  # clock seconds until the next status change, for open jobs


class JobTable:
    """All jobs in one state folder; safe to share the folder between processes."""

    def __init__(self, config: EmulatorConfig, state_dir: Path) -> None:
        self.config = config
        self.jobs_dir = state_dir / "jobs"
        self.media_root = state_dir / "media"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.media_root.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="soranb-render")
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._cache: dict[str, Job] = {}  # job files never change once written: read each once

    # -- jobs -------------------------------------------------------------------------------------

    def create(
        self,
        *,
        model: str,
        prompt: str,
        size: str,
        seconds: int,
        reference: tuple[bytes, str] | None = None,
        remixed_from_video_id: str | None = None,
        kind: str = "create",
        source: Path | None = None,
        source_seconds: int = 0,
        source_video_id: str | None = None,
        characters: tuple[str, ...] = (),
        generated_seconds: int | None = None,
    ) -> Job:
        """Write a new job (and its reference image, as bytes and a file suffix, or a copy of the source
        video it extends or edits) and start its render. `generated_seconds` is the part that is new,
        which decides how long the job takes (default: all of `seconds`)."""
        job_id = self.public_id("video_" + secrets.token_hex(24))
        reference_name = source_name = None
        media = self.media_dir(job_id)
        if reference is not None:
            data, suffix = reference
            reference_name = "reference" + suffix
            media.mkdir(parents=True, exist_ok=True)
            write_bytes_whole(media / reference_name, data)
        if source is not None:  # a copy: the source may be deleted or expire while this job renders
            source_name = "source.mp4"
            media.mkdir(parents=True, exist_ok=True)
            tmp = media / f".{source_name}.{secrets.token_hex(4)}.tmp"
            shutil.copyfile(source, tmp)
            os.replace(tmp, media / source_name)
        blocked = any(word in prompt.lower() for word in self.config.moderation_words)
        job = Job(
            id=job_id,
            model=model,
            prompt=prompt,
            size=size,
            seconds=seconds,
            created_ts=self.config.clock(),
            duration=self.config.job_duration(model, size, seconds if generated_seconds is None else generated_seconds),
            order_key=time.time_ns(),
            blocked=blocked,
            remixed_from_video_id=remixed_from_video_id,
            reference=reference_name,
            kind=kind,
            source=source_name,
            source_seconds=source_seconds,
            source_video_id=source_video_id,
            characters=tuple(characters),
        )
        write_bytes_whole(self._job_path(job_id), json.dumps(asdict(job)).encode())
        if not blocked:
            self.ensure_render(job)
        return job

    def public_id(self, key: str) -> str:
        """The id the API shows for the job stored under `key`."""
        if self.config.id_style != "gateway":
            return key
        text = f"{_GATEWAY_HEAD};video_id:{key};deployment_id:{_GATEWAY_DEPLOYMENT}"
        return "video_" + base64.b64encode(text.encode()).decode()

    def key(self, job_id: str) -> str | None:
        """The storage key of the job the API calls `job_id` (None: not an id this emulator made)."""
        key = job_id
        if self.config.id_style == "gateway":
            try:
                text = base64.b64decode(job_id.removeprefix("video_"), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            key = text.partition(";video_id:")[2].partition(";")[0]
        return key if _valid_id(key) and self.public_id(key) == job_id else None

    def get(self, job_id: str) -> Job | None:
        if self.key(job_id) is None:
            return None
        path = self._job_path(job_id)
        if not path.exists():  # deleted, perhaps by another process
            self._cache.pop(job_id, None)
            return None
        if (cached := self._cache.get(job_id)) is not None:
            return cached
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        known = {f.name for f in fields(Job)}
        values = {key: value for key, value in data.items() if key in known}
        values["characters"] = tuple(values.get("characters", ()))
        job = Job(**values)
        self._cache[job_id] = job
        return job

    def all(self) -> list[Job]:
        """Every job, oldest first."""
        paths = self.jobs_dir.glob("video_*.json")
        jobs = [job for path in paths if (job := self.get(self.public_id(path.stem))) is not None]
        return sorted(jobs, key=lambda job: (job.created_ts, job.order_key, job.id))

    def delete(self, job_id: str) -> bool:
        if self.key(job_id) is None:
            return False
        self._cache.pop(job_id, None)
        try:
            self._job_path(job_id).unlink()
        except FileNotFoundError:
            return False
        shutil.rmtree(self.media_dir(job_id), ignore_errors=True)
        return True

    def media_dir(self, job_id: str) -> Path:
        return self.media_root / self._checked_key(job_id)

    def reference_path(self, job: Job) -> Path | None:
        return self.media_dir(job.id) / job.reference if job.reference else None

    # -- status -----------------------------------------------------------------------------------

    def state(self, job: Job, now: float | None = None) -> JobState:
        """The job's status at `now` (default: the clock), starting its render if it should be running."""
        now = self.config.clock() if now is None else now
        elapsed = now - job.created_ts
        queued_until = job.duration * QUEUED_SHARE
        end = job.created_ts + job.duration
        if job.blocked and elapsed >= job.duration * MODERATION_FAIL_SHARE:
            error = {
                "code": "moderation_blocked",
                "message": "Your request was blocked by our moderation system.",
            }
            return JobState("failed", _progress(job.duration * MODERATION_FAIL_SHARE, job.duration), error=error)
        if job.blocked:
            fail_at = job.created_ts + job.duration * MODERATION_FAIL_SHARE
            if elapsed < queued_until:
                return JobState("queued", 0, wait_s=fail_at - now)
            return JobState("in_progress", _progress(elapsed, job.duration), wait_s=fail_at - now)
        render = self._render_marker(job)
        if render is None:
            self.ensure_render(job)  # after a restart, the first look at a job restarts its render
        elif "error" in render:
            error = {
                "code": "internal_error",
                "message": "The video could not be generated. Please try again.",
            }
            return JobState("failed", 99, error=error)
        if elapsed < queued_until:
            return JobState("queued", 0, wait_s=end - now)
        if elapsed < job.duration:
            return JobState("in_progress", _progress(elapsed, job.duration), wait_s=end - now)
        if render is None:
            return JobState("in_progress", 99, wait_s=RENDER_WAIT_HINT_S)
        completed_at = int(max(end, float(render["rendered_at"])))
        return JobState(
            "completed",
            100,
            completed_at=completed_at,
            expires_at=int(completed_at + self.config.expires_after_s),
        )

    def video_object(self, job: Job, state: JobState | None = None) -> dict[str, Any]:
        """The job as the Videos API shows it."""
        state = self.state(job) if state is None else state
        return {
            "id": job.id,
            "object": "video",
            "model": job.model,
            "status": state.status,
            "progress": state.progress,
            "created_at": int(job.created_ts),
            "completed_at": state.completed_at,
            "expires_at": state.expires_at,
            "prompt": job.prompt,
            "size": job.size,
            "seconds": str(job.seconds),
            "remixed_from_video_id": job.remixed_from_video_id,
            "error": state.error,
        }

    # -- rendering --------------------------------------------------------------------------------

    def ensure_render(self, job: Job) -> None:
        """Start rendering the job's media in a thread, unless done or already under way here."""
        with self._lock:
            if job.id in self._inflight:
                return
            self._inflight.add(job.id)
        try:
            self._executor.submit(self._render, job)
        except RuntimeError:  # shut down
            with self._lock:
                self._inflight.discard(job.id)

    def wait_for_renders(self, timeout: float = 60.0) -> None:
        """Block until no render runs in this process (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.02)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _render(self, job: Job) -> None:
        media = self.media_dir(job.id)
        try:
            if self._render_marker(job) is not None or not self._job_path(job.id).exists():
                return
            media.mkdir(parents=True, exist_ok=True)
            # An OS lock (flock): it dies with its process, so a restarted kernel takes over at once.
            lock = FileLock(media / ".render.lock", blocking=False)
            try:
                lock.acquire()
            except Timeout:
                return  # another process renders it; a later status check retries if that one dies
            try:
                if self._render_marker(job) is not None:
                    return  # the other process finished between our first look and our lock
                width, height = parse_size(job.size)
                spec = RenderSpec(
                    width,
                    height,
                    job.seconds,
                    job.prompt,
                    self.reference_path(job),
                    source=self.media_dir(job.id) / job.source if job.source else None,
                    source_seconds=job.source_seconds,
                    edit=job.kind == "edit",
                    characters=job.characters,
                )
                started = time.perf_counter()
                marker: dict[str, Any]
                try:
                    render_media(spec, media)
                    marker = {"rendered_at": self.config.clock()}
                    log.debug("rendered %s in %.2f s", job.id, time.perf_counter() - started)
                except Exception as exc:
                    if not self._job_path(job.id).exists():
                        return  # deleted while rendering
                    log.exception("render of %s failed", job.id)
                    marker = {"error": type(exc).__name__}
                write_bytes_whole(media / "rendered.json", json.dumps(marker).encode())
                if job.source:  # the marker makes the render final: the source copy is never read again
                    (media / job.source).unlink(missing_ok=True)
            finally:
                lock.release()
            if not self._job_path(job.id).exists():  # deleted while rendering
                shutil.rmtree(media, ignore_errors=True)
        except OSError:
            if self._job_path(job.id).exists():
                log.exception("render of %s could not write its files", job.id)
            else:  # deleted while rendering: leave nothing behind
                shutil.rmtree(media, ignore_errors=True)
        finally:
            with self._lock:
                self._inflight.discard(job.id)

    def _render_marker(self, job: Job) -> dict[str, Any] | None:
        try:
            marker: dict[str, Any] = json.loads((self.media_dir(job.id) / "rendered.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return marker  # authoritative: expired media are deleted, the job stays completed

    def _job_path(self, job_id: str) -> Path:
        return self.jobs_dir / f"{self._checked_key(job_id)}.json"

    def _checked_key(self, job_id: str) -> str:
        """The key of `job_id`, which must be one of ours: never a path from a URL."""
        key = self.key(job_id)
        if key is None:
            raise ValueError(f"not a job id of this emulator: {job_id[:60]!r}")
        return key


def _progress(elapsed: float, duration: float) -> int:
    """1..99 across the in-progress part of the job."""
    queued = duration * QUEUED_SHARE
    share = (elapsed - queued) / max(1e-9, duration - queued)
    return max(1, min(99, int(share * 100)))


def _valid_id(job_id: str) -> bool:
    """Ids come from URLs: only ever our own shape, so they are safe as file names."""
    hex_part = job_id.removeprefix("video_")
    return len(job_id) == 54 and job_id.startswith("video_") and all(c in "0123456789abcdef" for c in hex_part)
