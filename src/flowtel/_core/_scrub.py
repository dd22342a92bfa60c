"""Secret scrubbing for everything flowtel exports: attributes, arguments, messages, events.

Two layers, because secrets arrive two ways: by *key* (an attribute or argument named
``password``) and inside *text* (``postgres://u:pw@db``, ``Authorization: Bearer ...`` in an
exception message). Values are replaced by :data:`REDACTED`, which never repeats any part of the
secret. Thread-safe and lock-free: a :class:`Scrubber` is immutable once built.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from opentelemetry.util.types import AttributeValue

REDACTED: Final = "[REDACTED]"

# Key fragments that mark a value as secret, matched case-insensitively anywhere in the key
# after normalising separators ("X-Api-Key" -> "x_api_key").
DEFAULT_KEY_PATTERNS: Final[tuple[str, ...]] = (
    r"passw(or)?d",
    r"\bpwd\b|_pwd\b|^pwd",
    r"secret",
    r"(^|_)token(_|$)|(^|_)[a-z]+token(_|$)",
    r"api_?key",
    r"access_?key",
    r"private_?key",
    r"auth(orization)?$|^auth(orization)?\b|authorization",
    r"cookie",
    r"session(_?id)?$|^session",
    r"credential",
    r"signature",
    r"jwt",
    r"bearer",
    r"credit_?card|card_?number|\bpan\b|cvv|cvc",
    r"ssn",
)


# Compiled on first use (functools.cache): compiling them costs milliseconds of process start.
@functools.cache
def _text_rules() -> tuple[tuple[re.Pattern[str], str], ...]:
    return (
        # PEM private keys, whole block.
        (
            re.compile(
                r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
            ),
            REDACTED,
        ),
        # Authorization schemes.
        (
            re.compile(r"(?i)\b(Bearer|Basic|Digest|Token)\s+[A-Za-z0-9._~+/=\-]{6,}"),
            r"\1 " + REDACTED,
        ),
        # JWTs anywhere.
        (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), REDACTED),
        # Credentials in URLs / connection strings: scheme://user:password@host
        (
            re.compile(r"([a-zA-Z][a-zA-Z0-9+.\-]{0,31}://[^\s:/@]{0,256}):[^\s@/]{1,256}@"),
            r"\1:" + REDACTED + "@",
        ),
        # AWS access key ids.
        (re.compile(r"\b(AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"), REDACTED),
        # Well-known token prefixes (GitHub, Slack, Stripe, OpenAI-style, Google).
        (
            re.compile(
                r"\b(gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9\-]{10,}|"
                r"(sk|rk|pk)_(live|test)_[A-Za-z0-9]{10,}|sk-[A-Za-z0-9_\-]{20,}|AIza[0-9A-Za-z_\-]{30,})"
            ),
            REDACTED,
        ),
        # key=value / key: value pairs with a secret-looking key (query strings, headers, reprs).
        (
            re.compile(
                r"(?i)(['\"]?\b[\w\-]{0,40}(?:passw(?:or)?d|pwd|secret|token|api[_\-]?key|access[_\-]?key|"
                r"private[_\-]?key|authorization|cookie|session[_\-]?id|sessionid|credential|signature)"
                r"[\w\-]{0,40}['\"]?\s{0,8}[=:]\s{0,8})(['\"]?)(?!\[REDACTED\])[^\s'\",;&}]+"
            ),
            r"\1\2" + REDACTED,
        ),
    )


@functools.cache
def _card_pattern() -> re.Pattern[str]:
    return re.compile(r"\b(?:\d[ \-]?){12,18}\d\b")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return REDACTED if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def _normalise_key(key: str) -> str:
    return re.sub(r"[\s.\-]+", "_", key.lower())


class Scrubber:
    """Replaces secrets by key and by value shape.

    Args:
        extra_key_patterns: more regular expressions matched against normalised keys.
        extra_value_patterns: more regular expressions whose matches in text are replaced.
        enabled: ``False`` turns scrubbing off entirely (an explicit, documented opt-out).
    """

    __slots__ = ("_enabled", "_extra_values", "_key_cache", "_key_re", "_key_source")

    def __init__(
        self,
        extra_key_patterns: Iterable[str] = (),
        extra_value_patterns: Iterable[str] = (),
        *,
        enabled: bool = True,
    ) -> None:
        self._enabled = enabled
        self._key_source = "|".join((*DEFAULT_KEY_PATTERNS, *extra_key_patterns))
        self._key_re: re.Pattern[str] | None = None  # compiled on first use
        self._extra_values = tuple(re.compile(p) for p in extra_value_patterns)
        self._key_cache: dict[str, bool] = {}

    @property
    def enabled(self) -> bool:
        """Whether this scrubber changes anything."""
        return self._enabled

    def key_is_secret(self, key: str) -> bool:
        """True when values stored under ``key`` must never be exported."""
        if not self._enabled:
            return False
        hit = self._key_cache.get(key)
        if hit is None:
            if self._key_re is None:
                self._key_re = re.compile(self._key_source)
            hit = self._key_re.search(_normalise_key(key)) is not None
            if len(self._key_cache) < 4096:  # bounded: keys are code-defined, but be safe
                self._key_cache[key] = hit
        return hit

    def scrub_text(self, text: str) -> str:
        """Replace secret-shaped substrings of ``text``."""
        if not self._enabled or not text:
            return text
        for pattern, repl in _text_rules():
            text = pattern.sub(repl, text)
        if any(ch.isdigit() for ch in text):
            text = _card_pattern().sub(_mask_card, text)
        for pattern in self._extra_values:
            text = pattern.sub(REDACTED, text)
        return text

    def scrub_value(self, key: str, value: AttributeValue) -> AttributeValue:
        """Scrub one attribute value, by its key first and then by its content."""
        if not self._enabled:
            return value
        if self.key_is_secret(key):
            return REDACTED
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, Sequence) and value and isinstance(value[0], str):
            return [self.scrub_text(v) for v in value if isinstance(v, str)]
        return value

    def scrub_attributes(
        self, attributes: Mapping[str, AttributeValue]
    ) -> dict[str, AttributeValue]:
        """Return a scrubbed copy of ``attributes``."""
        return {k: self.scrub_value(k, v) for k, v in attributes.items()}


_current: Scrubber = Scrubber()


def current_scrubber() -> Scrubber:
    """The scrubber installed by ``configure_telemetry()`` (a default one before that)."""
    return _current


def set_scrubber(scrubber: Scrubber) -> None:
    """Install ``scrubber`` process-wide (called by ``configure_telemetry()``)."""
    global _current
    _current = scrubber
