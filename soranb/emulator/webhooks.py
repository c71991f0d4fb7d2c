"""Webhooks: `video.completed` and `video.failed` events, signed as the API signs them, delivered with retries.

Deliveries go only to the endpoint URLs the operator configured (`--webhook-url`,
`SORANB_EMULATOR_WEBHOOK_URLS`); nothing a client sends can add one, and redirects are never followed.
Each event is signed per Standard Webhooks, as the SDK's `client.webhooks.unwrap` expects: headers
`webhook-id`, `webhook-timestamp` and `webhook-signature` = `v1,` + base64 HMAC-SHA256 of
`"{id}.{timestamp}.{body}"` keyed with the secret's bytes (base64 after `whsec_`).

A job's status is derived from the clock, so nothing "happens" when a job ends: a watcher thread
looks at the open jobs a few times a second. A claim file per job (created exclusively) makes each
event go out once, also with two emulator processes on one state folder or after a restart.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from soranb.emulator.jobs import Job, JobTable

__all__ = ["WebhookNotifier", "check_webhook_secret", "check_webhook_urls", "sign"]

log = logging.getLogger("soranb.emulator")

SCAN_INTERVAL_S = 0.2
DELIVERY_TIMEOUT_S = 10.0
_CLAIM = "webhook.claimed"


def check_webhook_urls(urls: Iterable[str]) -> tuple[str, ...]:
    """The endpoint URLs, each an absolute http(s) URL without credentials; ValueError says which is not."""
    checked = []
    for url in urls:
        url = url.strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL {url!r} is not an http or https URL with a host")
        if parts.username or parts.password:
            raise ValueError("a webhook URL must not carry a user name or password")
        checked.append(url)
    return tuple(checked)


def check_webhook_secret(secret: str) -> str:
    """A secret as the API hands them out: `whsec_` + base64 of at least 16 bytes."""
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith("whsec_") or len(key) < 16:
        raise ValueError(
            "the webhook secret must be 'whsec_' followed by base64 of at least 16 bytes, e.g. "
            "python -c \"import base64, os; print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
        )
    return secret


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class WebhookNotifier:
    """Watches the job table and delivers one signed event per finished job to every configured URL."""

    def __init__(self, table: JobTable, urls: tuple[str, ...], secret: str, retry_delays: tuple[float, ...]) -> None:
        self.table = table
        self.urls = urls
        self.secret = secret
        self.retry_delays = retry_delays
        self._done: set[str] = set()
        self._scanning = threading.Lock()  # one look at a time: the watcher's, or a caller's
        self._sending: list[Future[None]] = []  # deliveries handed to the pool and not yet seen to end
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="soranb-webhook")
        self._thread = threading.Thread(target=self._watch, name="soranb-webhooks", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def scan(self) -> None:
        """One look at every job: claim and send the event of each one that has finished."""
        with self._scanning:
            self._sending = [future for future in self._sending if not future.done()]
            now = self.table.config.clock()
            for job in self.table.all():
                if job.id in self._done:
                    continue
                state = self.table.state(job, now)
                if state.status not in ("completed", "failed"):
                    continue
                self._done.add(job.id)
                if self._claim(job):
                    event = self._event(job, state.status)
                    for url in self.urls:
                        self._sending.append(self._pool.submit(self._deliver, url, event))

    def settle(self, timeout: float = 30.0) -> bool:
        """Wait until every event sent by the looks so far was delivered or given up; False on timeout.

        A caller that drives `scan` itself (a test) learns here, without guessing a time, that nothing
        more is on its way.
        """
        with self._scanning:  # a look under way hands out its deliveries first
            sending = list(self._sending)
        return not wait(sending, timeout).not_done

    def _watch(self) -> None:
        while not self._stop.wait(SCAN_INTERVAL_S):
            try:
                self.scan()
            except Exception:  # one bad look must not end the watcher
                log.exception("webhook scan failed")

    def _claim(self, job: Job) -> bool:
        """True for exactly one process and one look: an exclusively created marker in the job's folder."""
        media = self.table.media_dir(job.id)
        try:
            media.mkdir(parents=True, exist_ok=True)
            os.close(os.open(media / _CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        except OSError:  # deleted meanwhile
            return False
        return True

    def _event(self, job: Job, status: str) -> bytes:
        event = {
            "id": "evt_" + secrets.token_hex(16),
            "object": "event",
            "created_at": int(self.table.config.clock()),
            "type": f"video.{status}",
            "data": {"id": job.id},
        }
        return json.dumps(event).encode()

    def _deliver(self, url: str, body: bytes) -> None:
        """POST the event until the endpoint answers 2xx, waiting `retry_delays` between attempts."""
        import httpx2

        webhook_id = json.loads(body)["id"]
        delays = (0.0, *self.retry_delays)
        with httpx2.Client(timeout=DELIVERY_TIMEOUT_S, follow_redirects=False) as http:
            for attempt, delay in enumerate(delays, 1):
                if delay and self._stop.wait(delay):
                    return
                timestamp = int(time.time())  # real time: receivers check it against their own clock
                headers = {
                    "content-type": "application/json",
                    "user-agent": "soranb-emulator-webhooks",
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(timestamp),
                    "webhook-signature": sign(self.secret, webhook_id, timestamp, body),
                }
                try:
                    status = http.post(url, content=body, headers=headers).status_code
                except httpx2.HTTPError as exc:
                    status, reason = None, type(exc).__name__
                else:
                    reason = f"HTTP {status}"
                if status is not None and 200 <= status < 300:
                    log.info("webhook %s delivered to %s (attempt %d)", webhook_id, _host(url), attempt)
                    return
                log.warning(
                    "webhook %s to %s failed (%s), attempt %d of %d",
                    webhook_id,
                    _host(url),
                    reason,
                    attempt,
                    len(delays),
                )


def _host(url: str) -> str:
    """Only the endpoint's scheme, host and port go into the log (a path may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
