"""Which keys hold secrets: matched by whole words, never by substring.

A key is split into lower-case words at separators (``.``, ``-``, ``_``, spaces) and camelCase
boundaries: ``X-Api-Key`` -> ``x api key``, ``AccountKey`` -> ``account key``,
``code.classname`` -> ``code classname``. Rules then look at words and their neighbours, which
is what lets ``ssn`` match ``user.ssn`` but not ``code.classname``, and ``token`` match
``auth_token`` but not ``max_tokens`` or ``llm.token_count.prompt``.
"""

from __future__ import annotations

import re
from typing import Final

# Compiled on first use through ``re``'s cache (a key's words are memoised by the scrubber).
_CAMEL_LOWER: Final = r"([a-z0-9])([A-Z])"
_CAMEL_UPPER: Final = r"([A-Z]+)([A-Z][a-z])"
_SEPARATORS: Final = r"[^a-z0-9]+"

# A word that is a secret wherever it appears in a key.
_ALWAYS: Final = frozenset(
    {
        "password", "passwd", "pwd", "passphrase", "passcode", "authorization", "credential",
        "credentials", "creds", "signature", "jwt", "bearer", "ssn", "cvv", "cvv2", "cvc",
        "cvc2", "mnemonic", "otp", "totp", "hotp", "connstr", "dsn", "sessionid", "apikey",
        "accesskey", "privatekey", "secretkey", "accountkey", "creditcard", "cardnumber",
        "ccnumber", "ccnum", "sessiontoken", "authtoken", "accesstoken", "refreshtoken",
        "idtoken", "xsrf", "csrf",
    }
)  # fmt: skip
# Word endings that make a compound word secret (``dbpassword``, ``xsrftoken``).
_ENDINGS: Final = ("password", "passwd", "secret", "token", "apikey", "sessionid")
# A word that is secret when it is the whole key or its last word (``pin``, ``user_pin``).
_LAST: Final = frozenset({"pin", "pan", "sig", "pass", "key", "auth", "code"})
# ... and what may precede those last words to keep them secret (``api key``, ``auth code``).
_LAST_QUALIFIED: Final = {
    "key": frozenset(
        {
            "api", "access", "secret", "private", "account", "subscription", "signing",
            "encryption", "master", "client", "app", "application", "auth", "license",
            "licence", "shared", "storage", "service", "admin", "functions", "function",
            "ingest", "ingestion", "deploy", "write", "read", "sas", "session", "webhook",
            "hmac", "consumer", "partner", "integration", "developer", "live", "test", "server",
            "project", "management", "x", "ssh", "gpg", "pgp", "decryption", "crypto", "root",
            "router", "relay", "mailgun", "sendgrid", "stripe", "openai", "anthropic",
        }
    ),
    "code": frozenset(
        {
            "auth", "authorization", "otp", "mfa", "verification", "recovery", "backup",
            "security", "sms", "reset", "access", "pairing", "time", "invite", "activation",
            "confirmation", "login", "2fa", "one",
        }
    ),
    "auth": frozenset({"x", "basic", "proxy", "http", "api", "bearer", "digest", "header"}),
    "pass": frozenset({"x", "db", "user", "admin", "root", "smtp", "mail", "ftp", "proxy", "key"}),
    "sig": frozenset({"x", "url", "request", "hmac", "webhook", "sas", "amz", "goog"}),
    "pin": frozenset({"user", "card", "atm", "sim", "account", "security", "x"}),
    "pan": frozenset({"card", "x", "payment"}),
}  # fmt: skip
# Words that turn a following/preceding secret word into ordinary data.
_TOKEN_HARMLESS_NEXT: Final = frozenset(
    {
        "count", "counts", "type", "types", "usage", "limit", "limits", "length", "len",
        "budget", "estimate", "estimated", "index", "idx", "ids", "id", "logprob", "logprobs",
        "probs", "position", "offset", "total", "rate", "price", "cost", "window", "size",
        "kind", "expiry", "expires", "expiration", "ttl", "exp", "issued", "issuer",
        "endpoint", "url", "uri", "lifetime", "age", "name", "format", "source", "method",
    }
)  # fmt: skip
_SECRET_HARMLESS_NEXT: Final = frozenset(
    {"name", "names", "ref", "arn", "version", "versions", "id", "path", "store", "manager"}
)
_COOKIE_HARMLESS_NEXT: Final = frozenset(
    {"consent", "policy", "banner", "name", "names", "count", "domain", "path"}
)
_PAIRS: Final = frozenset(
    {
        ("session", "id"), ("session", "key"), ("session", "token"), ("session", "secret"),
        ("session", "cookie"), ("credit", "card"), ("card", "number"), ("card", "no"),
        ("card", "num"), ("card", "cvv"), ("card", "cvc"), ("card", "pin"), ("card", "data"),
        ("cc", "number"), ("cc", "num"), ("cc", "no"), ("connection", "string"),
        ("seed", "phrase"), ("webhook", "url"), ("sas", "url"), ("sas", "token"),
        ("private", "key"), ("social", "security"), ("cookie", "header"),
    }
)  # fmt: skip


def key_words(key: str) -> tuple[str, ...]:
    """``key`` as lower-case words (separators and camelCase boundaries split it)."""
    spaced = re.sub(_CAMEL_UPPER, r"\1_\2", re.sub(_CAMEL_LOWER, r"\1_\2", key)).lower()
    return tuple(word for word in re.split(_SEPARATORS, spaced) if word)


def words_are_secret(words: tuple[str, ...]) -> bool:
    """The built-in rules over a key's words."""
    last = len(words) - 1
    for i, word in enumerate(words):
        following = words[i + 1] if i < last else ""
        if word in _ALWAYS:
            return True
        if word == "token" or word == "secret" or word in ("cookie", "cookies"):
            harmless = (
                _TOKEN_HARMLESS_NEXT
                if word == "token"
                else _SECRET_HARMLESS_NEXT
                if word == "secret"
                else _COOKIE_HARMLESS_NEXT
            )
            if following not in harmless:
                return True
            continue
        if word == "secrets":
            return True
        if word.endswith(_ENDINGS) and len(word) > 6:
            return True
        if word in _LAST and i == last and (last == 0 or words[i - 1] in _LAST_QUALIFIED[word]):
            return True
        if (word, following) in _PAIRS:
            return True
        if word == "key" and i > 0 and words[i - 1] in _LAST_QUALIFIED["key"]:
            return True  # "api key id", "private key pem"
    return False
