"""Secret scrubbing for every string flowtel lets leave the process.

Two layers, because secrets arrive two ways: by *key* (an attribute, argument, log extra or
header named ``password``; see :mod:`flowtel._core._scrub_keys`, which matches whole words) and
inside *text* (``postgres://u:pw@db``, ``Authorization: Bearer ...`` in an exception message;
see :mod:`flowtel._core._scrub_rules`, one combined linear-time pass). Values are replaced by
:data:`REDACTED`, which never repeats any part of the secret.

One :class:`Scrubber` is built by ``configure_telemetry()`` from ``scrub``, ``scrub_patterns``
(more value patterns) and ``scrub_keys`` (more key patterns) and installed with
:func:`set_scrubber`; every output reads it through :func:`current_scrubber`. Thread-safe: a
scrubber is immutable once built (its caches only memoise pure functions).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from opentelemetry.util.types import AttributeValue

from flowtel.semconv import REDACTED

__all__ = ["REDACTED", "Scrubber", "current_scrubber", "set_scrubber"]

_MIN_SECRET_CHARS: Final = 4  # "pin=1" is the shortest shape worth a scan
_KEY_CACHE_MAX: Final = 4096
_TEXT_CACHE_MAX: Final = 4096
_TEXT_CACHE_MAX_CHARS: Final = 256  # long texts rarely repeat; caching them would pin memory


class Scrubber:
    """Replaces secrets by key and by value shape.

    Args:
        extra_key_patterns: regular expressions for more secret keys. One matches a key when it
            matches the whole key, or whole words of it (case-insensitive; the key's words are
            joined by ``_``, so ``employee_id`` matches ``employeeId`` and ``x.employee-id``).
        extra_value_patterns: regular expressions whose matches in any text are replaced.
        enabled: ``False`` turns scrubbing off entirely (an explicit, documented opt-out).
    """

    __slots__ = (
        "_enabled",
        "_extra_keys",
        "_extra_values",
        "_key_cache",
        "_replace",
        "_text_cache",
    )

    def __init__(
        self,
        extra_key_patterns: Iterable[str] = (),
        extra_value_patterns: Iterable[str] = (),
        *,
        enabled: bool = True,
    ) -> None:
        self._enabled = enabled
        keys = tuple(extra_key_patterns)
        self._extra_keys: tuple[re.Pattern[str], re.Pattern[str]] | None = (
            (
                re.compile("|".join(f"(?:{p})" for p in keys), re.IGNORECASE),
                re.compile(
                    "(?:^|_)(?:" + "|".join(f"(?:{p})" for p in keys) + ")(?:_|$)", re.IGNORECASE
                ),
            )
            if keys
            else None
        )
        values = tuple(extra_value_patterns)
        self._extra_values = re.compile("|".join(f"(?:{p})" for p in values)) if values else None
        self._key_cache: dict[str, bool] = {}
        self._text_cache: dict[str, str] = {}
        self._replace: Callable[[re.Match[str]], str] | None = None  # built on the first scan

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
            # The rules load on the first key or text that is not cached (not at process start).
            from flowtel._core._scrub_keys import key_words, words_are_secret

            words = key_words(key)
            hit = words_are_secret(words)
            if not hit and self._extra_keys is not None:
                whole, by_words = self._extra_keys
                hit = (
                    whole.fullmatch(key) is not None or by_words.search("_".join(words)) is not None
                )
            if len(self._key_cache) < _KEY_CACHE_MAX:  # keys are code-defined; bound anyway
                self._key_cache[key] = hit
        return hit

    def _scan(self, text: str) -> str:
        """The built-in value rules (no user patterns), for a whole text or a part of it."""
        if len(text) < _MIN_SECRET_CHARS:
            return text
        from flowtel._core import _scrub_rules as rules

        replace = self._replace
        if replace is None:  # two threads may both build one: the same pure function
            replace = self._replace = rules.make_replacer(self.key_is_secret, self._scan)
        return rules.combined().sub(replace, text)

    def scrub_text(self, text: str) -> str:
        """Replace secret-shaped substrings of ``text``: built-in rules, then user patterns.

        Short texts are memoised (bounded): span names, operation names and attribute values
        repeat, and a dictionary hit costs less than one scan.
        """
        if not self._enabled or len(text) < _MIN_SECRET_CHARS:
            return text
        if len(text) > _TEXT_CACHE_MAX_CHARS:
            return self._scrub_text(text)
        hit = self._text_cache.get(text)
        if hit is None:
            hit = self._scrub_text(text)
            if len(self._text_cache) >= _TEXT_CACHE_MAX:
                self._text_cache.clear()  # bounded: a burst of unique values must not grow memory
            self._text_cache[text] = hit
        return hit

    def _scrub_text(self, text: str) -> str:
        from flowtel._core import _scrub_rules as rules

        if "PRIVATE KEY" in text:
            text = rules.redact_pem(text)
        text = rules.redact_go_dsn(text)
        text = self._scan(text)
        if "%" in text:
            text = rules.scrub_percent_encoded(text, self._scan)
        if self._extra_values is not None:
            text = self._extra_values.sub(REDACTED, text)
        return text

    def scrub_key(self, key: str) -> str:
        """An attribute or field *name* as it may be exported (names can carry secrets too)."""
        return self.scrub_text(key)

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

    def scrub_data(self, value: object, *, by_key: bool = True, depth: int = 0) -> object:
        """A copy of JSON-like ``value`` with every string (mapping keys too) scrubbed.

        With ``by_key``, values under secret keys are replaced whole. Probe bodies pass
        ``by_key=False``: their keys are check and operation names the service chose.
        """
        if not self._enabled:
            return value
        if isinstance(value, str):
            return self.scrub_text(value)
        if depth > 16 and isinstance(value, Mapping | list | tuple):
            return REDACTED  # bounded walk: never return what was not read
        if isinstance(value, Mapping):
            return {
                (self.scrub_key(k) if isinstance(k, str) else k): REDACTED
                if by_key and isinstance(k, str) and self.key_is_secret(k)
                else self.scrub_data(v, by_key=by_key, depth=depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub_data(v, by_key=by_key, depth=depth + 1) for v in value]
        return value

    def scrub_attributes(
        self, attributes: Mapping[str, AttributeValue]
    ) -> dict[str, AttributeValue]:
        """Return a scrubbed copy of ``attributes`` (names and values)."""
        return {self.scrub_key(k): self.scrub_value(k, v) for k, v in attributes.items()}


_current: Scrubber = Scrubber()


def current_scrubber() -> Scrubber:
    """The scrubber installed by ``configure_telemetry()`` (a default one before that)."""
    return _current


def set_scrubber(scrubber: Scrubber) -> None:
    """Install ``scrubber`` process-wide (called by ``configure_telemetry()``)."""
    global _current
    _current = scrubber
