"""The demo's customer: answers as a real one would, by replying to our email over SMTP, and on the page
over HTTP, following the link in the message they received. Nothing here reaches into the system: only the
mail server's Maildir (their inbox), SMTP and HTTP."""

from __future__ import annotations

import asyncio
import http.cookiejar
import re
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import make_msgid

from dev.mailserver import MailServer

_LINK = re.compile(r"https?://[^\s]+/r/[A-Za-z0-9_.-]+")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def received(mail: MailServer, complaint_id: str, key: str, timeout: float = 60) -> EmailMessage:
    """The message of ``key`` (``acknowledgement``, ``apology``, ``follow_up``...) the customer received."""
    deadline = time.monotonic() + timeout
    while True:
        for message in mail.messages():
            if message["X-Complaint-Id"] == complaint_id and f".{key}-" in str(message["Message-ID"]):
                return message
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {key} message for {complaint_id} after {timeout} s")
        await asyncio.sleep(0.2)


def reply(mail: MailServer, to: EmailMessage, text: str) -> str:
    """Reply to ``to`` as a mail program does (to its Reply-To, threaded); returns the reply's Message-ID."""
    message = EmailMessage()
    message["From"] = str(to["To"])
    message["To"] = str(to["Reply-To"])
    message["Subject"] = "Re: " + str(to["Subject"])
    message["Message-ID"] = make_msgid(domain="mail.example.co.id")
    message["In-Reply-To"] = str(to["Message-ID"])
    message["References"] = " ".join(filter(None, [str(to["References"] or ""), str(to["Message-ID"])])).strip()
    message.set_content(text)
    with smtplib.SMTP(mail.host, mail.port, timeout=30) as smtp:
        smtp.send_message(message)
    return str(message["Message-ID"])


def link_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = _LINK.search(str(body.get_content()))
    if found is None:
        raise LookupError(f"no page link in {message['Message-ID']}")
    return found.group(0)


def answer_on_page(url: str, fields: dict[str, str]) -> tuple[int, str]:
    """Open the page, then send its form with ``fields``, as a browser would (its cookie, its hidden token):
    the status and text of the page that answers."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(url, timeout=30) as page:
        html = page.read().decode()
    token = _CSRF.search(html)
    if token is None:
        raise LookupError("the page has no form")
    body = urllib.parse.urlencode({"csrf": token.group(1), **fields}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with opener.open(request, timeout=60) as answered:
            return answered.status, answered.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
