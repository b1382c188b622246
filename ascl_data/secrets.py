"""Secrets never reach a dataset, cache or log: one `scrub` for every text that is stored or logged.

Why a scrubber and not only care: a server's error body may echo the API key it was sent (a 401 that says "invalid
key sk-..."), a model may repeat a token it saw, an exception may print a URL with `?api_key=`. So every stored
text passes through `scrub`, which replaces

- the values of secrets this process knows: keys a backend read from its `api_key_env` (`register_secret`), and
  the values of environment variables whose names say they hold one (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, ...);
- the user and password of a URL (`https://user:pass@host/...` keeps `https://[REDACTED]@host/...`);
- known token shapes: OpenAI `sk-...`, Anthropic `sk-ant-...`, Hugging Face `hf_...`, GitHub `ghp_...` /
  `github_pat_...`, AWS access key ids and secret keys, `Bearer ...` headers, and `api_key=...` / `"token": "..."`
  pairs in URLs, JSON and YAML

with `[REDACTED]`. `install_log_scrubbing` makes every log record of the process pass through it as well.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

#: env var names whose values are secrets (their values are scrubbed wherever they appear)
_SECRET_ENV_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|ACCESS_KEY)", re.IGNORECASE)
_MIN_SECRET_LEN = 8  # shorter values ("EMPTY", "1") would redact ordinary words

# token shapes; each match is replaced whole
_START = r"(?<![A-Za-z0-9_\-])"  # a token starts a word: "task-..." holds no "sk-" key
_TOKEN_PATTERNS = [
    re.compile(_START + r"sk-ant-[A-Za-z0-9_\-]{8,}"),  # Anthropic
    re.compile(_START + r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI (sk-proj-, sk-svcacct-, legacy sk-)
    re.compile(_START + r"hf_[A-Za-z0-9]{16,}"),  # Hugging Face
    re.compile(_START + r"github_pat_[A-Za-z0-9_]{20,}"),  # GitHub fine-grained
    re.compile(_START + r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub classic
    re.compile(_START + r"(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),  # AWS access key id
    re.compile(_START + r"xox[abprs]-[A-Za-z0-9\-]{10,}"),  # Slack
]
# the literal each token shape starts with (keep in step with the list above): a text without one skips the seven
# scans, a tenth of their cost, and most texts (every teacher answer is scrubbed) have none
_TOKEN_HINT = re.compile(r"sk-|hf_|github_pat_|gh[pousr]_|AKIA|ASIA|xox[abprs]-")
# `Bearer <token>` and `Basic <token>`: keep the scheme, drop the credential
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
# key=value / "key": "value" / key: value, with a secret-sounding key (URLs, JSON, YAML, logs); the key has no
# open-ended prefix, so a long run of word characters costs linear time, not quadratic
_KEY_VALUE = re.compile(
    r"""(?P<key>(?:api[_\-]?key|apikey|access[_\-]?token|auth[_\-]?token|\btoken|secret[_\-]?key|"""
    r"""client[_\-]?secret|aws_secret_access_key|authorization)["']?)"""
    r"""(?P<sep>\s*[:=]\s*["']?)(?!(?:Bearer|Basic|Token)\s)(?P<value>[^\s"'&,;}{\]]{6,})""",
    re.IGNORECASE,
)

# the userinfo of a URL (`scheme://user:pass@` or `scheme://token@`): a scheme, then no `/`, space or `@` before the @
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")

_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret's value (e.g. the key a backend read from its `api_key_env`) so `scrub` removes it."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _registered.add(value)
        install_log_scrubbing()


_env_seen: tuple[tuple[Any, Any], ...] | None = None
_env_values: frozenset[str] = frozenset()


def _env_secrets() -> frozenset[str]:
    """The values of secret-named environment variables, scanned again only when the environment changed: `scrub`
    runs on every stored text (each teacher answer, each rejection), and the scan was half its cost."""
    global _env_seen, _env_values
    seen = tuple(os.environ._data.items())  # type: ignore[attr-defined]  # the raw dict: a C-speed copy to compare
    with _lock:
        if seen != _env_seen:
            _env_values = frozenset(
                v for k, v in os.environ.items()
                if _SECRET_ENV_NAME.search(k) and len(v) >= _MIN_SECRET_LEN and " " not in v
            )
            _env_seen = seen
        return _env_values


def _known_values(extra: Iterable[str]) -> list[str]:
    values = {v for v in extra if v and len(v) >= _MIN_SECRET_LEN} | _env_secrets()
    with _lock:
        values |= _registered
    return sorted(values, key=len, reverse=True)  # longest first: a key that contains another is removed whole


def scrub(text: str | None, extra_secrets: Iterable[str] = ()) -> str | None:
    """`text` with every known secret value and token shape replaced by `[REDACTED]` (None stays None)."""
    if not text:
        return text
    for value in _known_values(extra_secrets):
        if value in text:
            text = text.replace(value, REDACTED)
    if "@" in text and "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    if _TOKEN_HINT.search(text):
        for pattern in _TOKEN_PATTERNS:
            text = pattern.sub(REDACTED, text)
    folded = text.casefold()  # what IGNORECASE matches: "Baſic" is "basic" to it
    if any(word in folded for word in ("bearer", "basic", "token")):
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    lowered = text.lower()
    if not any(word in lowered for word in ("key", "token", "secret", "authorization")):
        return text  # the common case, and the key=value scan is the slow one
    return _KEY_VALUE.sub(
        lambda m: m.group(0) if m.group("value") == REDACTED else f"{m.group('key')}{m.group('sep')}{REDACTED}", text
    )


def scrub_json(value: Any, extra_secrets: Iterable[str] = ()) -> Any:
    """`scrub` applied to every string inside a JSON-like value (dicts, lists); other values are returned as is."""
    if isinstance(value, str):
        return scrub(value, extra_secrets)
    if isinstance(value, dict):
        return {k: scrub_json(v, extra_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, extra_secrets) for v in value]
    return value


def contains_secret(text: str | None, extra_secrets: Iterable[str] = ()) -> bool:
    """True when `scrub` would change `text` (for checks of what is about to be stored)."""
    return bool(text) and scrub(text, extra_secrets) != text


_installed = False


def install_log_scrubbing() -> None:
    """Scrub every log record this process makes, from any logger (the openai and httpx clients' too): the record
    factory renders the message and replaces it with its scrubbed text. Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
            return record
        record.msg, record.args = scrub(message), None
        return record

    logging.setLogRecordFactory(factory)
