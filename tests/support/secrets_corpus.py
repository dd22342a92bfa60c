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

__all__ = ["HARMLESS", "SECRETS", "HarmlessValue", "SecretShape", "changed", "leaks", "needles"]


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


_MORE: tuple[SecretShape, ...] = (
    # Cloud connection strings, SAS signatures, OAuth client secrets.
    SecretShape(
        "azure_storage_connection_string",
        "AZURE_STORAGE_CONNECTION_STRING",
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Eby8vdM02xNOcqFlqUwJPLlm"
        "EtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;EndpointSuffix=x",
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq",
    ),
    SecretShape(
        "azure_service_bus_connection_string",
        "servicebus_connection_string",
        "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;"
        "SharedAccessKey=kq7Y0bX8W2nM5vR3tL9pQ1sZ4cE6hJ0aB2dF8gK3mN0=",
        "kq7Y0bX8W2nM5vR3tL9pQ1sZ4cE6hJ0aB2dF8gK3mN0",
    ),
    SecretShape(
        "azure_sas_sig",
        "sas_url",
        "GET https://acme.blob.core.windows.net/c/b?sv=2022-11-02&sp=r&se=2030-01-01"
        "&sig=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA%3D%3D",
        "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA",
    ),
    SecretShape(
        "google_oauth_client_secret",
        "google_client_secret",
        "oauth client 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 rejected",
        "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",
    ),
    SecretShape(
        "azure_ad_client_secret",
        "azure_client_secret",
        "aad login with r5T8Q~Xy7vW2pLm9Nq4Rs6Tu1Vw3Xy5Za8Bc0De failed",
        "r5T8Q~Xy7vW2pLm9Nq4Rs6Tu1Vw3Xy5Za8Bc0De",
    ),
    SecretShape(
        "client_secret_json",
        "oauth_body",
        '{"client_id": "app", "client_secret": "9aB8cD7eF6gH5iJ4kL3m"}',
        "9aB8cD7eF6gH5iJ4kL3m",
        '{"client_id": "app", "client_secret": "9aB8cD7eF6gH5iJ4kL3m"}',
    ),
    # PGP and other private key blocks.
    SecretShape(
        "pgp_private_key_block",
        "pgp_private_key",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGSecretPgpBodyQx7\n"
        "-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBGSecretPgpBodyQx7",
    ),
    SecretShape(
        "openssh_private_key",
        "ssh_private_key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAASecretSsh\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNzaC1rZXktdjEAAAASecretSsh",
    ),
    SecretShape(
        "truncated_ec_private_key",
        "signing_key",
        "loaded -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBtruncatedSecretEc",
        "MHcCAQEEIBtruncatedSecretEc",
    ),
    SecretShape(
        "gcp_service_account_json",
        "service_account",
        '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0SecretGcp'
        '\\n-----END PRIVATE KEY-----\\n"',
        "MIIEvQIBADANBgkqhkiG9w0SecretGcp",
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0SecretGcp\n-----END PRIVATE KEY-----",
    ),
    # Forges: fine-grained GitHub tokens, OAuth tokens, GitLab.
    SecretShape(
        "github_fine_grained_pat",
        "github_token",
        "clone with github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO failed",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO",
    ),
    SecretShape(
        "github_oauth_token",
        "gh_oauth",
        "oauth gho_16C7e42F292c6912E7710c838347Ae178B4b expired",
        "gho_16C7e42F292c6912E7710c838347Ae178B4b",
    ),
    SecretShape(
        "gitlab_pat",
        "gitlab_token",
        "push glpat-xYz123AbC456dEf789Gh denied",
        "glpat-xYz123AbC456dEf789Gh",
    ),
    # Chat webhooks and app tokens, bot tokens.
    SecretShape(
        "slack_webhook",
        "slack_webhook_url",
        "POST https://hooks.slack.com/services/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 404",
        "Qw3rTy8uIo9pAs5dFg7hJk2L",
    ),
    SecretShape(
        "discord_webhook",
        "discord_webhook_url",
        "POST https://discord.com/api/webhooks/123456789012345678/AbCdEf-GhIjKlMnOpQrStUvWx9 429",
        "AbCdEf-GhIjKlMnOpQrStUvWx9",
    ),
    SecretShape(
        "teams_webhook",
        "teams_webhook_url",
        "POST https://acme.webhook.office.com/webhookb2/8f1c2a3e@ab/IncomingWebhook/4a5b6c7d8e9fTm/x",
        "4a5b6c7d8e9fTm",
    ),
    SecretShape(
        "slack_app_token",
        "slack_app_token",
        "socket mode xapp-1-A012345BCDE-1234567890123-abcdef0123456789abcdef0123456789 refused",
        "xapp-1-A012345BCDE-1234567890123-abcdef0123456789abcdef0123456789",
    ),
    SecretShape(
        "slack_user_token",
        "slack_user_token",
        "slack xoxp-2048-1234567890-0987654321-abcdefABCDEF99 rejected",
        "xoxp-2048-1234567890-0987654321-abcdefABCDEF99",
    ),
    SecretShape(
        "telegram_bot_token",
        "telegram_bot_token",
        "GET https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getMe",
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
    ),
    SecretShape(
        "discord_bot_token",
        "discord_bot",
        "bot login MTA0NTY3ODkwMTIzNDU2Nzg5.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 failed",
        "MTA0NTY3ODkwMTIzNDU2Nzg5.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ),
    # Webhook signing secrets.
    SecretShape(
        "stripe_webhook_secret",
        "stripe_webhook",
        "verify with whsec_5a8D3f9G2h7J4k1L6m0N8p3Q5r2S9t7U failed",
        "whsec_5a8D3f9G2h7J4k1L6m0N8p3Q5r2S9t7U",
    ),
    SecretShape(
        "github_webhook_signature",
        "X-Hub-Signature-256",
        "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b",
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b",
    ),
    SecretShape(
        "webhook_secret_pair",
        "webhook_secret",
        "config webhook_secret=wh_s3cr3t_9Kq2Lm7Np4 loaded",
        "wh_s3cr3t_9Kq2Lm7Np4",
    ),
    # E-mail API keys.
    SecretShape(
        "sendgrid_key",
        "sendgrid_key",
        "mail via 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 failed",
        "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",
    ),
    SecretShape(
        "mailgun_key",
        "mailgun_key",
        "mailgun key-3ax6xnjp29jd6fds4gc373sgvjxteol0 invalid",
        "key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
    ),
    SecretShape(
        "mailchimp_key",
        "mailchimp_key",
        "list sync with 0cd79e048c07dd7753eda83d7c58dfe0-us14 denied",
        "0cd79e048c07dd7753eda83d7c58dfe0-us14",
    ),
    SecretShape(
        "brevo_key",
        "brevo_key",
        "smtp xkeysib-d80b891baf90d0d3bf16295d06910bf3f5fb85967f532f3ab3cc2d0b698d5c7e-"
        "N2AHRQ73l5PuXay1 refused",
        "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",
    ),
    SecretShape(
        "postmark_server_token",
        "X-Postmark-Server-Token",
        "X-Postmark-Server-Token: 9d2f3c4b-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "9d2f3c4b-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
    ),
    # Package-registry tokens.
    SecretShape(
        "npm_token",
        "npm_token",
        "publish npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 forbidden",
        "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    ),
    SecretShape(
        "npmrc_auth_token",
        "npmrc",
        "//registry.npmjs.org/:_authToken=npm-legacy-0a1b2c3d9z",
        "npm-legacy-0a1b2c3d9z",
        "//registry.npmjs.org/:_authToken=npm-legacy-0a1b2c3d9z",
    ),
    SecretShape(
        "pypi_token",
        "pypi_token",
        "upload with pypi-AgEIcHlwaS5vcmcCJGE0ZjYwOTM3LTQ5ZjctNGE4Ni05ZDg5LTM2ZDU1ZWY0SecretPart ok",
        "pypi-AgEIcHlwaS5vcmcCJGE0ZjYwOTM3LTQ5ZjctNGE4Ni05ZDg5LTM2ZDU1ZWY0SecretPart",
    ),
    SecretShape(
        "rubygems_key",
        "gem_key",
        "gem push rubygems_41ba4ea5ee874ae7689447ab57a683536c4499d863386ce1 denied",
        "rubygems_41ba4ea5ee874ae7689447ab57a683536c4499d863386ce1",
    ),
    SecretShape(
        "docker_hub_pat",
        "docker_token",
        "docker login -p dckr_pat_2b3e36beeb386dfdaacb9b46004ccb7c failed",
        "dckr_pat_2b3e36beeb386dfdaacb9b46004ccb7c",
    ),
    SecretShape(
        "nuget_key",
        "nuget_key",
        "nuget push oy2tnzekjcbhgkwjbbcicecexm8eygpnnhccfs4gignsuv denied",
        "oy2tnzekjcbhgkwjbbcicecexm8eygpnnhccfs4gignsuv",
    ),
    # Model-hub and model-provider tokens.
    SecretShape(
        "huggingface_token",
        "hf_token",
        "download with hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567 failed",
        "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567",
    ),
    SecretShape(
        "anthropic_key",
        "anthropic_api_key",
        "messages call with sk-ant-api03-AbCdEf123456GhIjKl789012MnOpQr345678StUv-xyzAA failed",
        "sk-ant-api03-AbCdEf123456GhIjKl789012MnOpQr345678StUv-xyzAA",
    ),
    SecretShape(
        "replicate_token",
        "replicate_token",
        "predict with r8_AbC123dEf456GhI789jKl012MnO345pQr678 failed",
        "r8_AbC123dEf456GhI789jKl012MnO345pQr678",
    ),
    SecretShape(
        "groq_key",
        "groq_key",
        "chat with 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 failed",
        "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",
    ),
    SecretShape(
        "openrouter_key",
        "openrouter_key",
        "route with 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",
        "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",
    ),
    # Secret-store tokens.
    SecretShape(
        "vault_token",
        "vault_token",
        "vault read with hvs.CAESIJ1b2c3d4e5f6g7h8i9j0kAbCdEfGhIjKlMnOp denied",
        "hvs.CAESIJ1b2c3d4e5f6g7h8i9j0kAbCdEfGhIjKlMnOp",
    ),
    SecretShape(
        "doppler_token",
        "doppler_token",
        "doppler dp.pt.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd revoked",
        "dp.pt.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd",
    ),
    SecretShape(
        "onepassword_token",
        "op_service_account_token",
        "op read with ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSJ9abcdefghij failed",
        "ops_eyJzaWduSW5BZGRyZXNzIjoibXkuMXBhc3N3b3JkLmNvbSJ9abcdefghij",
    ),
    # URL passwords with separators inside (the tail after the separator must not leak).
    SecretShape(
        "url_password_with_at",
        "db_url",
        "cannot reach postgres://svc:Hx3@Tl7Qv9Zk@db.internal:5432/app",
        "Tl7Qv9Zk",
        "postgres://svc:Hx3@Tl7Qv9Zk@db.internal:5432/app",
    ),
    SecretShape(
        "url_password_with_slash",
        "redis_url",
        "redis://default:Ab3/Yv8Rq2Wn@cache:6379/0 timed out",
        "Yv8Rq2Wn",
        "redis://default:Ab3/Yv8Rq2Wn@cache:6379/0",
    ),
    SecretShape(
        "url_password_with_space",
        "mongo_url",
        "mongodb://root:Mq4 Zr8Ty6Nx@mongo:27017/admin unreachable",
        "Zr8Ty6Nx",
        "mongodb://root:Mq4 Zr8Ty6Nx@mongo:27017/admin",
    ),
    SecretShape(
        "url_password_with_comma",
        "bus_url",
        "amqp://bus:Lp9,Wd4Hs7Qe@rabbit:5672/ refused",
        "Wd4Hs7Qe",
        "amqp://bus:Lp9,Wd4Hs7Qe@rabbit:5672/",
    ),
    SecretShape(
        "url_password_with_semicolon",
        "replica_url",
        "postgresql://ro:Vb6;Xn2Ce8Pt@replica:5432/db lagging",
        "Xn2Ce8Pt",
        "postgresql://ro:Vb6;Xn2Ce8Pt@replica:5432/db",
    ),
    SecretShape(
        "url_password_with_ampersand",
        "git_remote",
        "fetch https://deploy:Kj5&Rm3Gz9Yu@git.example.com/repo.git failed",
        "Rm3Gz9Yu",
        "https://deploy:Kj5&Rm3Gz9Yu@git.example.com/repo.git",
    ),
    # Go-style MySQL DSNs.
    SecretShape(
        "go_mysql_dsn",
        "mysql_dsn",
        "open app:Sq3lPassW9@tcp(127.0.0.1:3306)/shop?parseTime=true: refused",
        "Sq3lPassW9",
        "app:Sq3lPassW9@tcp(127.0.0.1:3306)/shop?parseTime=true",
    ),
    SecretShape(
        "go_mysql_dsn_with_at",
        "orders_dsn",
        "open root:Gm7Dsn@Pw4xQz9@tcp(mysql:3306)/orders failed",
        "Pw4xQz9",
        "root:Gm7Dsn@Pw4xQz9@tcp(mysql:3306)/orders",
    ),
    # Non-standard auth schemes and vendor API-key headers.
    SecretShape(
        "apikey_scheme",
        "upstream_auth",
        "sent ApiKey ak_live_9f8e7d6c5b4a3 upstream",
        "ak_live_9f8e7d6c5b4a3",
        "ApiKey ak_live_9f8e7d6c5b4a3",
    ),
    SecretShape(
        "okta_ssws",
        "okta_auth",
        "okta call SSWS 00QCjAl4MlV-WPXM0yE3mVB6sFMqXbBB6e7fQ0Lk0s unauthorized",
        "00QCjAl4MlV-WPXM0yE3mVB6sFMqXbBB6e7fQ0Lk0s",
        "SSWS 00QCjAl4MlV-WPXM0yE3mVB6sFMqXbBB6e7fQ0Lk0s",
    ),
    SecretShape(
        "datadog_api_key_header",
        "DD-API-KEY",
        "DD-API-KEY: 5f4dcc3b5aa765d61d8327deb882cf99",
        "5f4dcc3b5aa765d61d8327deb882cf99",
    ),
    SecretShape(
        "azure_functions_key_header",
        "x-functions-key",
        "x-functions-key: Fk9Lw2Qp7Rt4Vz1Xc6Bn3Mj8",
        "Fk9Lw2Qp7Rt4Vz1Xc6Bn3Mj8",
    ),
    SecretShape(
        "apim_subscription_key_header",
        "Ocp-Apim-Subscription-Key",
        "Ocp-Apim-Subscription-Key: 7c2e9a41b3d84f6e8a1b2c3d4e5f6a7b",
        "7c2e9a41b3d84f6e8a1b2c3d4e5f6a7b",
    ),
    SecretShape(
        "gitlab_private_token_header",
        "PRIVATE-TOKEN",
        "PRIVATE-TOKEN: Pt5Yh8Jn2Kc6Wq9Xz3",
        "Pt5Yh8Jn2Kc6Wq9Xz3",
    ),
    SecretShape(
        "shopify_token",
        "shopify_token",
        "admin api 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 forbidden",
        "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",
    ),
    SecretShape(
        "proxy_authorization",
        "Proxy-Authorization",
        "Proxy-Authorization: Basic cHJveHk6cHJveHlQYXNzOTk=",
        "cHJveHk6cHJveHlQYXNzOTk=",
    ),
    SecretShape(
        "bearer_lowercase",
        "upstream_header",
        "retrying with bearer Lc7Tk2Pq9Wm4Zx",
        "Lc7Tk2Pq9Wm4Zx",
        "bearer Lc7Tk2Pq9Wm4Zx",
    ),
    SecretShape(
        "rails_token_scheme",
        "rails_auth",
        "Token token=Tk3Ab9Cd5Ef1Gh7",
        "Tk3Ab9Cd5Ef1Gh7",
        "Token token=Tk3Ab9Cd5Ef1Gh7",
    ),
    # Query keys key, auth, pass, code, sig, pin.
    SecretShape(
        "query_key",
        "geo_url",
        "GET /v1/geo?key=Qk7Wm2Xp9Ln4Rt6Zv1&q=berlin",
        "Qk7Wm2Xp9Ln4Rt6Zv1",
        "/v1/geo?key=Qk7Wm2Xp9Ln4Rt6Zv1&q=berlin",
    ),
    SecretShape(
        "query_auth",
        "feed_url",
        "GET /feed?auth=Au8Jk3Lp5Mn7Qr2&page=2",
        "Au8Jk3Lp5Mn7Qr2",
        "/feed?auth=Au8Jk3Lp5Mn7Qr2&page=2",
    ),
    SecretShape(
        "query_pass",
        "login_url",
        "GET /login?user=bob&pass=Pa5sW0rdQ9x",
        "Pa5sW0rdQ9x",
        "/login?user=bob&pass=Pa5sW0rdQ9x",
    ),
    SecretShape(
        "query_code",
        "callback",
        "GET /oauth/callback?code=4/0AX4XfWh7Kq9Lm2Np5Rt&state=af0ifjsldkj",
        "4/0AX4XfWh7Kq9Lm2Np5Rt",
        "/oauth/callback?code=4/0AX4XfWh7Kq9Lm2Np5Rt&state=af0ifjsldkj",
    ),
    SecretShape(
        "query_sig",
        "media_url",
        "GET /media/1.jpg?expires=1700000000&sig=Zx8Cv5Bn2Mq7Wl4",
        "Zx8Cv5Bn2Mq7Wl4",
        "/media/1.jpg?expires=1700000000&sig=Zx8Cv5Bn2Mq7Wl4",
    ),
    SecretShape(
        "query_pin",
        "verify_url",
        "POST /card/verify?pin=739184&last4=0005",
        "739184",
        "/card/verify?pin=739184&last4=0005",
    ),
    # Passphrases.
    SecretShape(
        "passphrase",
        "passphrase",
        "passphrase: correct horse battery staple",
        "horse battery staple",
        "correct horse battery staple",
    ),
    SecretShape(
        "seed_phrase",
        "seed_phrase",
        "seed_phrase=abandon ability able about above absent absorb abstract",
        "absorb abstract",
        "abandon ability able about above absent absorb abstract",
    ),
    SecretShape(
        "gpg_passphrase_env",
        "GPG_PASSPHRASE",
        "GPG_PASSPHRASE=Tr1cky Phrase Nine",
        "Tr1cky Phrase",
        "Tr1cky Phrase Nine",
    ),
    # Percent-encoded forms, as HTTP clients log them.
    SecretShape(
        "percent_encoded_password",
        "form_body",
        "POST /login body=user%3Dbob%26password%3DPc7Enc0ded%21x",
        "Pc7Enc0ded",
        "user%3Dbob%26password%3DPc7Enc0ded%21x",
    ),
    SecretShape(
        "percent_encoded_bearer",
        "logged_headers",
        "headers=Authorization%3A%20Bearer%20Pe9Tok3nAbCdEf12345",
        "Pe9Tok3nAbCdEf12345",
        "Authorization%3A%20Bearer%20Pe9Tok3nAbCdEf12345",
    ),
    SecretShape(
        "percent_encoded_url_password",
        "next_url",
        "GET /sso?next=postgres%3A%2F%2Fapp%3APgEnc9Pw%40db%3A5432%2Fx",
        "PgEnc9Pw",
        "postgres%3A%2F%2Fapp%3APgEnc9Pw%40db%3A5432%2Fx",
    ),
    SecretShape(
        "percent_encoded_api_key",
        "redirect",
        "GET /x?redirect=%2Fcb%3Fapi_key%3DAk4Enc8Kq2Wz",
        "Ak4Enc8Kq2Wz",
        "%2Fcb%3Fapi_key%3DAk4Enc8Kq2Wz",
    ),
    SecretShape(
        "double_percent_encoded_token",
        "return_to",
        "GET /x?u=%252Fcb%253Ftoken%253DDb1Enc5Tk9Qz",
        "Db1Enc5Tk9Qz",
        "%252Fcb%253Ftoken%253DDb1Enc5Tk9Qz",
    ),
    # More cloud and identity shapes.
    SecretShape(
        "aws_session_token",
        "aws_session_token",
        "aws_session_token=FwoGZXIvYXdzEJr//////////wEaDHs3cr3tS3ss10nT0k3n",
        "FwoGZXIvYXdzEJr",
        "FwoGZXIvYXdzEJr//////////wEaDHs3cr3tS3ss10nT0k3n",
    ),
    SecretShape(
        "google_oauth_access_token",
        "google_access_token",
        "calendar call ya29.a0AfH6SMBx7Kq2Lm9Np4Rt6Zv1Xc3Bn8Mj5Qw unauthorized",
        "ya29.a0AfH6SMBx7Kq2Lm9Np4Rt6Zv1Xc3Bn8Mj5Qw",
    ),
    SecretShape(
        "sentry_dsn_key",
        "SENTRY_DSN",
        "SENTRY_DSN=https://9f8e7d6c5b4a39f8e7d6c5b4a3@o123.ingest.sentry.io/456",
        "9f8e7d6c5b4a39f8e7d6c5b4a3",
        "https://9f8e7d6c5b4a39f8e7d6c5b4a3@o123.ingest.sentry.io/456",
    ),
    SecretShape(
        "api_key_camel_json",
        "apiKey",
        '{"apiKey": "Jk2Lm4Np6Qr8St0Uv"}',
        "Jk2Lm4Np6Qr8St0Uv",
    ),
    SecretShape(
        "refresh_token_repr",
        "refresh_token",
        "{'refresh_token': 'Rf5Tk8Lm2Qp9Wz3'}",
        "Rf5Tk8Lm2Qp9Wz3",
    ),
    # Cards with an issuer prefix, and a card under its key.
    SecretShape("amex_grouped", "card", "amex 3714 496353 98431 declined", "3714 496353 98431"),
    SecretShape("visa_dashed", "cc", "visa 4012-8888-8888-1881 ok", "4012-8888-8888-1881"),
    SecretShape(
        "card_under_key",
        "cc_number",
        "charged cc_number=6011111111111117",
        "6011111111111117",
    ),
    SecretShape("ssn_pair", "ssn", "lookup ssn=078-05-1120 done", "078-05-1120"),
)

SECRETS = SECRETS + _MORE


@dataclass(frozen=True, slots=True)
class HarmlessValue:
    """A value that looks a little like a secret but is useful data: it must come out unchanged.

    ``text`` is placed as free text and stored under ``key``; both must be exported verbatim.
    Texts hold no quote, backslash or non-ASCII character, so every output shows them as is.
    """

    name: str
    key: str
    text: str


def _record_ids() -> tuple[HarmlessValue, ...]:
    """Ids of every length from 1 to 20 digits; the 13-19 digit ones pass the Luhn check but
    carry no card issuer prefix (about one random id in ten passes Luhn)."""
    ids = (
        "6", "82", "960", "1181", "75908", "830166", "9131860", "19139099", "760308246",
        "8281948219", "99351819093", "178657975432", "7834788783848", "83726167513613",
        "941252427316723", "1861221387837576", "73830640037614365", "865294130787161682",
        "9496685027390000954", "11858369492359722032",
    )  # fmt: skip
    return tuple(
        HarmlessValue(f"id_{len(i)}_digits", "app.record_id", f"record {i} stored") for i in ids
    )


HARMLESS: tuple[HarmlessValue, ...] = (
    HarmlessValue("max_tokens", "gen_ai.request.max_tokens", "max_tokens=4096"),
    HarmlessValue(
        "token_usage",
        "llm.usage.prompt_tokens",
        "prompt_tokens=1234 completion_tokens=567 total_tokens=1801",
    ),
    HarmlessValue("token_count", "llm.token_count.prompt", "llm.token_count.prompt=812"),
    HarmlessValue("input_tokens", "gen_ai.usage.input_tokens", "input_tokens: 2048"),
    HarmlessValue("token_limit_prose", "message", "Token limit exceeded: 8192 tokens requested"),
    HarmlessValue("basic_prose", "message", "Basic usage of the client is in the README"),
    HarmlessValue("digest_prose", "message", "Digest authentication is not supported here"),
    HarmlessValue("bearer_prose", "message", "Bearer tokens are described in RFC 6750"),
    HarmlessValue("basic_auth_prose", "message", "Use Basic Authentication only over TLS"),
    HarmlessValue("token_refresh_prose", "message", "Token refresh scheduled in 300 seconds"),
    HarmlessValue("password_prose", "message", "Please enter your password to continue"),
    HarmlessValue("session_prose", "message", "session expired after 30 minutes of inactivity"),
    HarmlessValue("model_gpt", "gen_ai.request.model", "gpt-4o-mini-2024-07-18"),
    HarmlessValue("model_claude", "gen_ai.response.model", "claude-3-5-sonnet-20241022"),
    HarmlessValue("model_sk_prefix", "gen_ai.request.model", "sk-llama-3-8b-instruct-v2"),
    HarmlessValue("model_hf_path", "gen_ai.request.model", "meta-llama/Llama-3.1-8B-Instruct"),
    HarmlessValue(
        "sha256",
        "artifact.digest",
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    ),
    HarmlessValue("md5", "file.md5", "md5=5d41402abc4b2a76b9719d911017c592"),
    HarmlessValue("commit_sha", "vcs.revision", "commit 3f786850e387550fdab836ed7e6dc881de23001b"),
    HarmlessValue("short_sha", "vcs.short_revision", "deployed a1b2c3d to prod"),
    HarmlessValue("trace_id", "linked.trace_id", "trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
    HarmlessValue("span_id", "linked.span_id", "span_id=00f067aa0ba902b7"),
    HarmlessValue(
        "traceparent",
        "http.request.header.traceparent",
        "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ),
    HarmlessValue("uuid", "request.id", "request 3fa85f64-5717-4562-b3fc-2c963f66afa6"),
    HarmlessValue("iso_timestamp", "event.time", "at 2024-05-09T07:29:33.186Z"),
    HarmlessValue("epoch_seconds", "event.ts", "ts=1715239773"),
    HarmlessValue("epoch_millis", "event.ts_ms", "ts_ms=1715239773186"),
    HarmlessValue("visa_prefix_wrong_length", "app.snowflake", "snowflake 42536593687780063"),
    HarmlessValue("code_classname", "code.classname", "code.classname=OrderService"),
    HarmlessValue("code_function", "code.function", "code.function=checkout.charge"),
    HarmlessValue("code_filepath", "code.filepath", "code.filepath=/srv/app/orders.py"),
    HarmlessValue("status_code", "http.response.status_code", "http.response.status_code=503"),
    HarmlessValue("cache_key", "cache_key", "cache_key=user:42:profile"),
    HarmlessValue("primary_key", "db.primary_key", "primary_key=order_id"),
    HarmlessValue(
        "url_with_port",
        "url.full",
        "https://example.com:8443/api/v1/orders?page=2&sort=created_at",
    ),
    HarmlessValue("email", "support.contact", "contact support@example.com for help"),
    HarmlessValue("ssh_url", "vcs.repository", "ssh://git@github.com/acme/repo.git"),
    HarmlessValue("route_tokens", "http.route", "GET /api/v1/users/{user_id}/tokens"),
    HarmlessValue("passport_flag", "kyc.passport_checked", "passport_checked=true"),
    HarmlessValue("bypass_cache", "cache.bypass", "bypass_cache=true"),
    HarmlessValue("cookie_banner", "ui.cookie_consent", "cookie banner dismissed"),
    HarmlessValue("auth_latency", "message", "auth service latency p99=120ms"),
    HarmlessValue("semver", "service.build", "v1.2.3-rc.1+build.5"),
    HarmlessValue("ipv6", "server.address", "2001:db8::8a2e:370:7334"),
    HarmlessValue("price", "order.total", "price=19.99 currency=EUR"),
    *_record_ids(),
)


def changed(blobs: bytes | str | Iterable[bytes | str]) -> list[str]:
    """Names of the harmless values whose text does *not* occur verbatim in ``blobs``.

    Every harmless value was placed in the output, so a missing one was altered: a false
    positive of the scrubber.
    """
    text = _joined(blobs)
    return [h.name for h in HARMLESS if h.text not in text]


def _joined(blobs: bytes | str | Iterable[bytes | str]) -> str:
    if isinstance(blobs, bytes | str):
        blobs = [blobs]
    return "\n".join(
        b.decode("utf-8", "replace") if isinstance(b, bytes) else b for b in blobs
    ).replace("\\/", "/")


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
    text = _joined(blobs)
    found = [s.name for s in SECRETS if s.needle in text]
    if "4111111111111111" in text and "credit_card_spaced" not in found:
        found.append("credit_card_spaced")
    return found
