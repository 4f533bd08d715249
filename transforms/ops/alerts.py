"""Telling people: failed runs and data-quality warnings, to the log and to a webhook.

Deployers point ``HEI_ALERT_WEBHOOK_URL`` at Teams, Slack or any service that accepts a JSON
POST (``{"title": ..., "text": ...}``). Without it, alerts are logged only. A webhook that is
down must never fail the pipeline, so delivery errors are logged, not raised. The URL's path
holds the webhook's token, so only its scheme and host are ever logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from transforms.core.redaction import display_webhook

log = logging.getLogger(__name__)


def send_alert(webhook_url: str | None, title: str, lines: list[str]) -> bool:
    """Log the alert and POST it to the webhook if one is set; True if it was delivered."""
    log.warning("ALERT %s: %s", title, " | ".join(lines))
    if not webhook_url:
        return False
    body = json.dumps({"title": title, "text": "\n".join(lines)}).encode()
    try:
        request = urllib.request.Request(
            webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        # ValueError: not a URL urllib can open; its message would quote the whole URL
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else type(exc).__name__
        log.error(
            "could not deliver alert to the webhook at %s: %s", display_webhook(webhook_url), reason
        )
        return False
