"""What may be shown of a secret: URLs without their passwords, webhooks without their tokens.

Every place that prints or logs a warehouse URL (the ``hei`` banner and summary, ``hei
status``, task logs) goes through ``display_url``; a webhook URL's path and query are its
credentials (Slack and Teams put the token there), so only its scheme and host are shown.
``scrub`` takes known secret values out of free text, such as an exception message about to
be sent to the alert webhook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

from sqlalchemy.engine.url import make_url

HIDDEN = "***"
# Query parameters that carry credentials (libpq's password, sslpassword; tokens, keys).
SECRET_PARAMETER = re.compile(r"pass|secret|token|key|auth", re.IGNORECASE)


def display_url(url: str) -> str:
    """The URL as it may be printed: password hidden, in the user part and in the query."""
    try:
        parsed = make_url(url)
    except Exception:  # whatever it is, it is not shown
        return "<a URL that could not be parsed; not shown>"
    query = {k: HIDDEN if SECRET_PARAMETER.search(k) else v for k, v in parsed.query.items()}
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    return shown.replace(quote(HIDDEN, safe=""), HIDDEN)


def display_location(location: str) -> str:
    """A publish target as it may be printed: a folder as it is, a URL as ``display_url``."""
    return display_url(location) if "://" in location else location


def display_webhook(url: str | None) -> str:
    """Scheme and host of a webhook URL, which is all of it that is not a credential."""
    if not url:
        return "(none)"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" if parts.hostname else "<not a URL; not shown>"


def url_secrets(url: str | None) -> list[str]:
    """The values in a URL that are credentials (its password, secret query values), as they
    are and as they are written in the URL."""
    if not url:
        return []
    try:
        parsed = make_url(url)
    except Exception:  # not an SQLAlchemy URL: the whole of it is the secret
        return [url]
    values = [v for k, v in parsed.query.items() if SECRET_PARAMETER.search(k)]
    flat = [v for value in values for v in ([value] if isinstance(value, str) else value)]
    plain = [s for s in [parsed.password, *flat] if s]
    return sorted({form for s in plain for form in (s, quote(s, safe=""), quote_plus(s))})


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return text
