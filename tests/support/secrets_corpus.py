"""A corpus of secret shapes that must never leave the process in clear.

Each :class:`SecretShape` says how a secret typically shows up in free text (``text``: a log
line, an exception message, a URL), the key it is usually stored under (``key``) and the part
that must never be exported (``needle``). Tests place every shape in span names, attributes,
recorded arguments, return values, exception messages, log records and Sentry events, then scan
what reached the collector / console / Sentry with :func:`leaks`.

Import it from any test::

    from tests.support.secrets_corpus import SECRETS, leaks
    assert leaks(raw_bytes) == []

The values are synthetic (well-known documentation examples or random-looking strings); none is
a real credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["SECRETS", "SecretShape", "leaks", "needles"]


@dataclass(frozen=True, slots=True)
class SecretShape:
    """One kind of secret: where it hides in text, the key it lives under, what must not leak."""

    name: str
    key: str
    text: str
    needle: str
    stored: str = ""
    """What is stored under ``key`` (default: the needle alone, e.g. a bare password)."""

    def __post_init__(self) -> None:
        if self.needle not in self.text:
            raise ValueError(f"{self.name}: needle must occur in text")
        if self.needle not in self.value:
            raise ValueError(f"{self.name}: needle must occur in the stored value")

    @property
    def value(self) -> str:
        """The value a program would store under ``key``."""
        return self.stored or self.needle


_PEM_BODY = "MIIEowIBAAKCAQEAq8pRvxKSecretPemBodyZ9"

SECRETS: tuple[SecretShape, ...] = (
    SecretShape("password", "password", "login failed password=Hunter2-Pw!x", "Hunter2-Pw!x"),
    SecretShape("passwd", "passwd", "passwd: Tr0ub4dor-and-3", "Tr0ub4dor-and-3"),
    SecretShape("pwd", "db_pwd", "connect with pwd=Pwd-77zq-Secret", "Pwd-77zq-Secret"),
    SecretShape(
        "api_key", "api_key", "retry with api_key=AKx9f8e7d6c5b4a3z1", "AKx9f8e7d6c5b4a3z1"
    ),
    SecretShape(
        "x_api_key_header",
        "X-Api-Key",
        "X-Api-Key: 9f8e7d6c5b4a3f2e1d0cxk",
        "9f8e7d6c5b4a3f2e1d0cxk",
    ),
    SecretShape(
        "authorization_bearer",
        "Authorization",
        "Authorization: Bearer abcDEF123456ghiJKL789mno",
        "abcDEF123456ghiJKL789mno",
    ),
    SecretShape(
        "authorization_basic",
        "authorization",
        "Authorization: Basic dXNlcjpodW50ZXIyLXNlY3JldA==",
        "dXNlcjpodW50ZXIyLXNlY3JldA==",
    ),
    SecretShape(
        "cookie", "Cookie", "Cookie: sessionid=s3ss10nV4lu3abcXY; theme=dark", "s3ss10nV4lu3abcXY"
    ),
    SecretShape(
        "set_cookie",
        "Set-Cookie",
        "Set-Cookie: auth_token=tok9988776655aabbQ; HttpOnly",
        "tok9988776655aabbQ",
    ),
    SecretShape(
        "client_secret",
        "client_secret",
        "oauth client_secret=cs_8f7e6d5c4b3a2f1eZZ rejected",
        "cs_8f7e6d5c4b3a2f1eZZ",
    ),
    SecretShape(
        "private_key_pem",
        "private_key",
        f"key:\n-----BEGIN RSA PRIVATE KEY-----\n{_PEM_BODY}\n-----END RSA PRIVATE KEY-----\n",
        _PEM_BODY,
    ),
    SecretShape(
        "aws_access_key_id",
        "aws_access_key_id",
        "using AKIAIOSFODNN7EXAMPLE now",
        "AKIAIOSFODNN7EXAMPLE",
    ),
    SecretShape(
        "aws_secret_access_key",
        "aws_secret_access_key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    SecretShape(
        "jwt",
        "id_token",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
        "eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlF",
    ),
    SecretShape(
        "postgres_url",
        "database_url",
        "cannot reach postgres://app:pgS3cretPw@db.internal:5432/orders",
        "pgS3cretPw",
        "postgres://app:pgS3cretPw@db.internal:5432/orders",
    ),
    SecretShape(
        "redis_url",
        "cache_url",
        "redis://:r3disPassW0rd@cache:6379/0 down",
        "r3disPassW0rd",
        "redis://:r3disPassW0rd@cache:6379/0",
    ),
    SecretShape(
        "amqp_url",
        "broker_url",
        "amqp://guest:rabbitPw9xy@mq:5672/ refused",
        "rabbitPw9xy",
        "amqp://guest:rabbitPw9xy@mq:5672/",
    ),
    SecretShape(
        "session_id",
        "session_id",
        "session_id=9a8b7c6d5e4f3a2b1c0dQQ expired",
        "9a8b7c6d5e4f3a2b1c0dQQ",
    ),
    SecretShape(
        "credit_card_spaced",
        "card_number",
        "charged card 4111 1111 1111 1111 ok",
        "4111 1111 1111 1111",
    ),
    SecretShape("credit_card_plain", "pan", "pan 5500005555555559 declined", "5500005555555559"),
    SecretShape(
        "github_token",
        "gh_token",
        "push with ghp_16C7e42F292c6912E7710c838347Ae178B4a failed",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    ),
    SecretShape(
        "slack_token",
        "slack_token",
        "slack xoxb-2048-1234567890-abcdefABCDEF rejected",
        "xoxb-2048-1234567890-abcdefABCDEF",
    ),
    SecretShape(
        "stripe_key",
        "stripe_key",
        "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc denied",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    SecretShape(
        "access_token_query",
        "callback_url",
        "GET https://api.example/cb?access_token=at998877aabbccDD&x=1",
        "at998877aabbccDD",
        "https://api.example/cb?access_token=at998877aabbccDD&x=1",
    ),
    SecretShape(
        "openai_key",
        "openai_key",
        "model call with sk-proj-abcdefghijklmnopqrstuvwx123456 failed",
        "sk-proj-abcdefghijklmnopqrstuvwx123456",
    ),
    SecretShape(
        "google_api_key",
        "google_key",
        "maps key AIzaSyA1234567890abcdefghijklmnopqrstu invalid",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
    ),
)


def needles() -> list[str]:
    """Every string that must never appear in exported telemetry."""
    out = [s.needle for s in SECRETS]
    out.append("4111111111111111")  # the spaced card number, normalised
    return out


def leaks(blobs: bytes | str | Iterable[bytes | str]) -> list[str]:
    """Names of the shapes whose needle occurs in ``blobs`` (empty when nothing leaked).

    Bytes are searched as UTF-8 and also after JSON-style escaping of ``/`` is undone, so a
    protobuf payload, an OTLP/JSON body, a console line or a Sentry envelope can all be passed.
    """
    if isinstance(blobs, bytes | str):
        blobs = [blobs]
    text = "\n".join(
        b.decode("utf-8", "replace") if isinstance(b, bytes) else b for b in blobs
    ).replace("\\/", "/")
    found = [s.name for s in SECRETS if s.needle in text]
    if "4111111111111111" in text and "credit_card_spaced" not in found:
        found.append("credit_card_spaced")
    return found
