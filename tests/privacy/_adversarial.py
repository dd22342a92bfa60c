"""Adversarial 1 MB inputs for the scrubber, run by ``test_linear.py`` in a child process.

Each input repeats a prefix that makes one rule start a match attempt, so a rule that scans
ahead unboundedly (or backtracks) from every attempt would be quadratic: hours at 1 MB.
"""

from __future__ import annotations

import json
import sys

MB = 1 << 20

UNITS: dict[str, str] = {
    "plain": "x",
    "url_starts": "a://a:",
    "url_at_signs": "s://u:@",
    "go_dsn": "a:b@",
    "jwt_starts": "eyJ-",
    "kv_pairs": "key=",
    "kv_words": "token-key-pass-",
    "auth_schemes": "Bearer ",
    "digits_spaced": "4 ",
    "digits": "4111",
    "pem_unterminated": "-----BEGIN RSA PRIVATE KEY-----",
    "percent": "%41",
    "colons": ":",
    "quotes": "password='",
    "sk_prefix": "sk-",
}


def inputs() -> dict[str, str]:
    """Every adversarial input, each exactly 1 MiB (plus a real secret at the end)."""
    tail = " postgres://u:Tail5ecretPw@db/x"
    return {name: (unit * (MB // len(unit) + 1))[:MB] + tail for name, unit in UNITS.items()}


def main() -> None:
    import flowtel
    from flowtel._core._scrub import current_scrubber

    flowtel.configure_telemetry(service_name="adversarial", exporter="none", logging=False)
    scrubber = current_scrubber()
    sizes = {}
    for name, text in inputs().items():
        clean = scrubber.scrub_text(text)
        sizes[name] = [len(text), len(clean), "Tail5ecretPw" in clean]
    json.dump(sizes, sys.stdout)


if __name__ == "__main__":
    main()
