"""Delivery of one message over one channel: email (smtplib), webhook (httpx), apprise.

Each `deliver` makes one attempt and raises DeliveryFailed with a short cause that names no
secret; retries with backoff are the notifier's. Blocking work (SMTP, apprise) runs in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path

import httpx

from scraper.alerting.config import AppriseChannel, EmailChannel, WebhookChannel, read_secret
from scraper.alerting.errors import DeliveryFailed
from scraper.alerting.message import Message

SIGNATURE_HEADER = "X-Millwatch-Signature"
USER_AGENT = "millwatch-alerts"


async def deliver(
    name: str, channel: EmailChannel | WebhookChannel | AppriseChannel, message: Message, folder: Path
) -> None:
    """Send `message` once over `channel` (named `name`). Raises DeliveryFailed."""
    try:
        if isinstance(channel, EmailChannel):
            await asyncio.to_thread(_send_email, channel, message, folder)
        elif isinstance(channel, WebhookChannel):
            await _post_webhook(name, channel, message, folder)
        else:
            # apprise has no overall timeout: stop waiting (its thread ends on its own).
            sending = asyncio.to_thread(_notify_apprise, channel, message, folder)
            await asyncio.wait_for(sending, channel.timeout)
    except DeliveryFailed:
        raise
    except ValueError as e:  # a secret that cannot be read: the text names the file or variable
        raise DeliveryFailed(name, str(e)) from None
    except (OSError, smtplib.SMTPException, httpx.HTTPError) as e:
        raise DeliveryFailed(name, _cause(e)) from None


def sign(key: bytes, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def _send_email(channel: EmailChannel, message: Message, folder: Path) -> None:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = channel.from_
    mail["To"] = ", ".join(channel.to)
    mail.set_content(message.text())
    context = ssl.create_default_context(cafile=str(folder / channel.ca_file) if channel.ca_file else None)
    password = read_secret(folder, channel.password_file, channel.password_env, "password")
    smtp: smtplib.SMTP
    if channel.security == "tls":
        smtp = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout, context=context)
    else:
        smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
    with smtp:
        if channel.security == "starttls":
            smtp.starttls(context=context)
        if channel.username is not None and password is not None:
            smtp.login(channel.username, password)
        smtp.send_message(mail)


async def _post_webhook(name: str, channel: WebhookChannel, message: Message, folder: Path) -> None:
    body = json.dumps(message.payload(name), allow_nan=False, sort_keys=True).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    key = read_secret(folder, channel.hmac_key_file, channel.hmac_key_env, "hmac_key")
    if key is not None:
        headers[SIGNATURE_HEADER] = sign(key.encode("utf-8"), body)
    async with httpx.AsyncClient(timeout=channel.timeout, trust_env=False, follow_redirects=False) as client:
        response = await client.post(channel.url, content=body, headers=headers)
    if response.status_code >= 300:
        raise DeliveryFailed(name, f"HTTP {response.status_code}")


def _notify_apprise(channel: AppriseChannel, message: Message, folder: Path) -> None:
    import apprise  # the central extra carries it; imported here so a config without it costs nothing

    text = read_secret(folder, channel.urls_file, channel.urls_env, "urls") or ""
    urls = [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]
    if not urls:
        raise ValueError("no apprise URL in urls_file/urls_env")
    notifier = apprise.Apprise()
    for url in urls:
        if not notifier.add(url):
            # The URL itself carries a token: only its scheme is named.
            raise ValueError(f"unsupported apprise URL ({url.split(':', 1)[0]}://…)")
    if not notifier.notify(title=message.title, body=message.text()):
        raise ValueError("apprise could not deliver to every service (see its log)")


def _cause(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    if isinstance(error, httpx.ConnectError):
        return "connection failed"
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return f"SMTP authentication refused ({error.smtp_code})"
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code}"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text[:200]
