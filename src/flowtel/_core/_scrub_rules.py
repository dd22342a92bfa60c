"""The value rules of the scrubber: one combined regular expression and its replacement.

Why one expression: every string that leaves the process is scanned, so the scan must be one
pass in C with a Python callback only where something looks like a secret. Each alternative is
anchored by a look-behind that only lets it start at the beginning of a run of its own
characters and every repetition is bounded, so a scan costs O(length x a small constant) on
any input: no input can make it quadratic (``tests/privacy/test_linear.py`` feeds 1 MB
adversarial strings).

Where the shape alone is ambiguous, the callback decides with context: a ``key=value`` pair is
redacted when its key is secret by word (see :mod:`flowtel._core._scrub_keys`), an
``Authorization`` scheme when what follows looks like a credential rather than an English word,
a 12-19 digit number when it has a card issuer's prefix and length and passes the Luhn check, an
``sk-`` string when it is random rather than a model name.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable
from typing import Final

from flowtel.semconv import REDACTED

_REDACTED_OPEN: Final = REDACTED[:-1]

# Words that make a ``key=value`` pair a candidate; the key's words decide (``is_secret``).
_KV_WORDS: Final = (
    r"pass|pwd|secret|token|key|auth|cookie|session|credential|creds|sig|jwt|bearer|card|"
    r"pan|cvv|cvc|ssn|pin|code|otp|dsn|connection|connstr|mnemonic|webhook|sas|csrf|xsrf|"
    r"cc|credit|seed|social|private"
)
# Keys whose value runs to the end of the line (header values with spaces, pass phrases).
_LINE_WORDS: Final = r"authorization|cookie|passphrase|mnemonic|seed[_\-. ]?phrase"
_SCHEMES: Final = (
    r"bearer|basic|digest|token|api-?key|ssws|negotiate|ntlm|genie-?key|splunk|"
    r"sharedaccesssignature|hmac"
)
# Tokens recognised by their vendor prefix (whole match redacted).
_PREFIXED: Final = (
    r"gh[pousr]_[A-Za-z0-9]{20,255}",  # GitHub classic
    r"github_pat_[A-Za-z0-9_]{22,255}",  # GitHub fine-grained
    r"glpat-[A-Za-z0-9_\-]{20,64}",  # GitLab
    r"xox[abposre]-[A-Za-z0-9\-]{10,255}",  # Slack tokens
    r"xapp-\d-[A-Za-z0-9\-]{10,255}",  # Slack app-level tokens
    r"(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,255}",  # Stripe
    r"whsec_[A-Za-z0-9+/=]{20,255}",  # webhook signing secrets (Stripe, Svix)
    r"AIza[0-9A-Za-z_\-]{30,64}",  # Google API keys
    r"GOCSPX-[A-Za-z0-9_\-]{20,64}",  # Google OAuth client secrets
    r"ya29\.[0-9A-Za-z_\-]{20,2048}",  # Google OAuth access tokens
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ABIA|ACCA|ANPA|ANVA|APKA)[A-Z0-9]{16}(?![A-Za-z0-9])",  # AWS
    r"npm_[A-Za-z0-9]{30,64}",  # npm
    r"pypi-[A-Za-z0-9_\-]{50,512}",  # PyPI
    r"rubygems_[a-f0-9]{40,64}",  # RubyGems
    r"oy2[a-z0-9]{43}(?![a-z0-9])",  # NuGet
    r"dckr_pat_[A-Za-z0-9_\-]{20,64}",  # Docker Hub
    r"AKCp[A-Za-z0-9]{60,80}",  # JFrog Artifactory
    r"hf_[A-Za-z0-9]{30,64}",  # Hugging Face
    r"r8_[A-Za-z0-9]{30,64}",  # Replicate
    r"gsk_[A-Za-z0-9]{40,64}",  # Groq
    r"pplx-[A-Za-z0-9]{40,64}",  # Perplexity
    r"nvapi-[A-Za-z0-9_\-]{40,80}",  # NVIDIA
    r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}",  # SendGrid
    r"key-[0-9a-zA-Z]{32}(?![0-9a-zA-Z])",  # Mailgun
    r"[0-9a-f]{32}-us\d{1,2}(?![0-9])",  # Mailchimp
    r"xkeysib-[a-f0-9]{64}-[A-Za-z0-9]{16}",  # Brevo
    r"re_[A-Za-z0-9]{8,12}_[A-Za-z0-9]{16,40}",  # Resend
    r"hv[sbr]\.[A-Za-z0-9_\-]{20,512}",  # HashiCorp Vault
    r"dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{30,64}",  # Doppler
    r"ops_[A-Za-z0-9_\-]{40,1024}",  # 1Password service accounts
    r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",  # Shopify
    r"NRAK-[A-Z0-9]{27}",  # New Relic
    r"lin_api_[A-Za-z0-9]{30,64}",  # Linear
    r"[MNO][A-Za-z\d]{23,27}\.[\w\-]{6}\.[\w\-]{27,40}",  # Discord bot tokens
    r"\d{6,12}:AA[0-9A-Za-z_\-]{30,40}",  # Telegram bot tokens
    r"[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}",  # Azure AD client secrets
)
_HOOKS: Final = (
    r"hooks\.slack\.com/(?:services|workflows|triggers)/|discord(?:app)?\.com/api/webhooks/|"
    r"webhook\.office\.com/webhookb2/|api\.telegram\.org/bot|hooks\.zapier\.com/hooks/catch/"
)

# One cheap guard first: every rule but ``hook`` starts at the beginning of a word, so inside a
# word the scan costs one failed look-behind per character.
_RULES: Final = rf"""
(?<!\w)(?:(?=["']?[\w.\-]{{1,82}}["']?[ \t]{{0,8}}[=:])
 (?:(?P<line>(?<![\w.\-%])
    (?P<line_k>["']?[\w.\-]{{0,40}}?(?i:{_LINE_WORDS})[\w.\-]{{0,20}})
    (?P<line_s>["']?[ \t]{{0,8}}[=:][ \t]{{0,8}})
    (?P<line_v>"[^"\r\n]{{0,1024}}"|'[^'\r\n]{{0,1024}}'|[^\r\n]{{1,1024}}))
|(?P<kv>(?<![\w.\-%])(?P<kv_k>["']?[\w.\-]{{0,40}}?(?i:{_KV_WORDS})[\w.\-]{{0,40}})
    (?P<kv_s>["']?[ \t]{{0,8}}[=:][ \t]{{0,8}})
    (?P<kv_v>"[^"\r\n]{{0,512}}"|'[^'\r\n]{{0,512}}'|[^\s'",;&}}\]\)<>]{{1,512}})))
|(?P<url>(?<![A-Za-z0-9+.\-])(?P<url_s>[A-Za-z][A-Za-z0-9+.\-]{{0,31}}://[^\s:/@?#]{{0,128}}:)
    (?!\d{{1,5}}(?:[/?#\s]|$))(?P<url_p>[^\r\n]{{1,128}})
    (?P<url_h>@(?=[A-Za-z0-9\[\]._%\-]{{1,253}}(?:[:/?#\s"'),;]|$))))
|(?P<auth>(?<![\w\-])(?P<auth_s>(?i:{_SCHEMES})[ \t]{{1,4}})
    (?P<auth_v>[A-Za-z0-9._~+/=\-:]{{6,2048}}))
|(?P<jwt>(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{{5,4096}}
    \.[A-Za-z0-9_\-]{{5,4096}}\.?[A-Za-z0-9_\-]{{0,4096}})
|(?P<sk>(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{{20,255}})
|(?P<tok>(?<![A-Za-z0-9_\-])(?:{"|".join(_PREFIXED)}))
|(?P<card>(?<![\w\-.])\d(?:[ \-]?\d){{11,18}}(?![\w]|[\-.]\d)))
|(?P<hook>(?P<hook_s>{_HOOKS})(?P<hook_v>[A-Za-z0-9_\-/=@.:%]{{8,512}}))
"""

# Go-style DSNs (``user:password@tcp(host:3306)/db``): a pass of its own, run only when the
# text has ``@tcp(`` and the like, because the password may hold ``@`` (the last one counts).
# The passes below run only when a cheap ``in`` test found their marker, so their expressions
# are compiled on first use (through ``re``'s own cache), not at import: process start pays none.
_GO_DSN: Final = r"(?<![\w.\-])(?P<user>[\w.\-]{1,64}:)[^\r\n]{1,128}(?P<host>@(?:tcp|udp|unix)\()"
_GO_MARKERS: Final = ("@tcp(", "@udp(", "@unix(")
_PEM_BEGIN: Final = r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_PEM_END: Final = r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_PERCENT: Final = r"%[0-9A-Fa-f]{2}"
_RUN: Final = r"[^\s\"'<>]+"


@functools.cache
def combined() -> re.Pattern[str]:
    """The combined rule expression, compiled on first use (it costs ms of process start)."""
    return re.compile(_RULES, re.VERBOSE)


def redact_pem(text: str) -> str:
    """Replace PEM/PGP private key blocks (an unterminated block: to the end of the text)."""
    out: list[str] = []
    pos = 0
    pem_begin, pem_end = re.compile(_PEM_BEGIN), re.compile(_PEM_END)
    while True:
        begin = pem_begin.search(text, pos)
        if begin is None:
            break
        out.append(text[pos : begin.start()])
        out.append(REDACTED)
        end = pem_end.search(text, begin.end())
        if end is None:
            return "".join(out)
        pos = end.end()
    out.append(text[pos:])
    return "".join(out)


def redact_go_dsn(text: str) -> str:
    """Replace the password of Go-style MySQL DSNs."""
    if not any(marker in text for marker in _GO_MARKERS):
        return text
    return re.sub(_GO_DSN, lambda m: m["user"] + REDACTED + m["host"], text)


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def card_issuer_ok(digits: str) -> bool:
    """True when ``digits`` has the prefix and length of a card network (IIN ranges)."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or two == 62:
        return 16 <= n <= 19  # Discover, UnionPay
    if 3528 <= four <= 3589:
        return 16 <= n <= 19  # JCB
    if 300 <= int(digits[:3]) <= 305 or two in (36, 38, 39):
        return 14 <= n <= 19  # Diners Club
    if four in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):
        return 12 <= n <= 19  # Maestro
    return False


def looks_like_card(number: str) -> bool:
    """A number is a card when it has an issuer prefix and length and passes Luhn."""
    digits = number.replace(" ", "").replace("-", "")
    if not 12 <= len(digits) <= 19:
        return False
    if number != digits:  # grouped: one kind of separator, groups of 4 (Amex 4-6-5)
        groups = re.split(r"[ \-]", number)
        if len({c for c in number if not c.isdigit()}) != 1 or any(len(g) > 6 for g in groups):
            return False
    return card_issuer_ok(digits) and luhn_ok(digits)


# What follows ``Bearer`` in prose; anything else after it is taken for a token.
_BEARER_PROSE: Final = frozenset(
    {"token", "tokens", "authentication", "auth", "scheme", "header", "credentials", "realm"}
)


def credential_like(scheme: str, value: str) -> bool:
    """True when what follows an auth scheme is a credential, not a word of prose.

    ``Basic usage``, ``Token limit``, ``Bearer tokens`` and ``Digest Authentication`` are prose:
    a credential has a digit or a symbol, or mixes case inside the word. ``Bearer`` is almost
    always followed by a token, so only its few prose words are spared.
    """
    if scheme.strip().lower() == "bearer":
        return value.lower() not in _BEARER_PROSE
    if len(value) < 8 or value.isdigit():
        return False
    if any(c.isdigit() for c in value) or any(c in "+/=_-.~:" for c in value):
        return True
    return len(value) >= 16 and any(c.isupper() for c in value[1:])


def random_sk(value: str) -> bool:
    """``sk-`` keys are random; model names (``sk-llama-3-8b-chat``) are short words."""
    longest = max((len(run) for run in re.split(r"[_\-]", value[3:])), default=0)
    if longest >= 16:
        return True
    return any(c.isupper() for c in value) and any(c.isdigit() for c in value) and longest >= 10


def _quoted(value: str) -> str:
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[0] + REDACTED + value[0]
    return REDACTED


def make_replacer(
    is_secret_key: Callable[[str], bool], rescan: Callable[[str], str]
) -> Callable[[re.Match[str]], str]:
    """The ``re.sub`` callback: decides each candidate with its context.

    ``rescan`` scrubs the value of a pair that is not secret (it may hold a URL with a
    password), so consuming a candidate never hides what is inside it.
    """

    def replace(m: re.Match[str]) -> str:
        rule = m.lastgroup
        if rule == "kv" or rule == "line":
            key, sep, value = m.group(f"{rule}_k", f"{rule}_s", f"{rule}_v")
            if value.lstrip("\"'").startswith(_REDACTED_OPEN):
                return m[0]  # scrubbed already: scrubbing is idempotent
            if is_secret_key(key.strip("\"'")):
                return key + sep + _quoted(value)
            return key + sep + rescan(value)
        if rule == "url":
            return m["url_s"] + REDACTED + m["url_h"]
        if rule == "auth":
            value = m["auth_v"]
            if credential_like(m["auth_s"], value):
                return m["auth_s"] + REDACTED
            return m["auth_s"] + rescan(value)
        if rule == "sk":
            return REDACTED if random_sk(m[0]) else m[0]
        if rule == "hook":
            return m["hook_s"] + REDACTED
        if rule == "card":
            return REDACTED if looks_like_card(m[0]) else m[0]
        return REDACTED  # jwt, tok

    return replace


def scrub_percent_encoded(text: str, scrub: Callable[[str], str]) -> str:
    """Scrub the decoded form of percent-encoded runs (``password%3Dx``, ``Bearer%20x``).

    A run whose decoded form holds a secret is replaced by its scrubbed decoded form; clean
    runs stay as they were.
    """
    if re.search(_PERCENT, text) is None:
        return text

    def run(m: re.Match[str]) -> str:
        raw = m[0]
        if "%" not in raw:
            return raw
        decoded = raw
        for _ in range(3):  # double-encoded forms too
            step = urllib.parse.unquote(decoded)
            if step == decoded:
                break
            decoded = step
        if decoded == raw:
            return raw
        clean = scrub(decoded)
        return raw if clean == decoded else clean

    return re.sub(_RUN, run, text)
