"""Scrubbing twice changes nothing more than scrubbing once.

Text is scrubbed at more than one layer (when an exception is recorded, when a span is exported,
when the console prints it), so the scrubber must leave its own output alone: no ``]]``, no
second redaction eating the text around a marker.
"""

from __future__ import annotations

import pytest

from flowtel._core._scrub import Scrubber

from ..support.secrets_corpus import HARMLESS, SECRETS, HarmlessValue, SecretShape


@pytest.mark.parametrize("shape", SECRETS, ids=lambda s: s.name)
def test_scrubbed_secret_text_is_a_fixed_point(shape: SecretShape) -> None:
    """scrub(scrub(x)) == scrub(x) for every secret shape, inside a sentence."""
    scrubber = Scrubber(())
    text = f"request failed: {shape.text} (retrying)"
    once = scrubber.scrub_text(text)
    assert scrubber.scrub_text(once) == once


@pytest.mark.parametrize("value", HARMLESS, ids=lambda v: v.name)
def test_harmless_values_are_a_fixed_point(value: HarmlessValue) -> None:
    """Harmless values pass unchanged, and so do they a second time."""
    scrubber = Scrubber(())
    text = value.text
    assert scrubber.scrub_text(scrubber.scrub_text(text)) == text
