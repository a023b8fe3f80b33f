"""The embedded stack's mail server: a real SMTP server (aiosmtpd) on 127.0.0.1 that accepts mail to any
address and keeps every message it accepts in a Maildir. It is the development stack's catch-all: the
messages the workers send to customers land here, and so do replies to ``complaints+<token>@`` addresses
(send one with any mail program, or ``python -m smtplib``). ``complaints mail`` lists them.

The Maildir holds personal data (customers' addresses and words): it lives under the stack's data folder,
readable by its owner only.

For tests, :class:`MailStore` can refuse (550) or defer (451) the next messages, or store one and then
answer 451 anyway, as a relay whose acknowledgement is lost after delivery: the sender retries, and the box
holds two copies with the same Message-ID.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import logging
import mailbox
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from settings import DEFAULT_MAIL_DOMAIN, DEV_SMTP_PORT

if TYPE_CHECKING:
    from aiosmtpd.controller import Controller

Action = Literal["refuse", "defer", "store_then_defer"]


class MailStore:
    """The aiosmtpd handler: every message accepted goes into the Maildir at ``path``. It runs on the
    server's own thread; the controls below may be called from any thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.maildir = mailbox.Maildir(path, factory=None, create=True)  # new/ cur/ tmp/ too, if path is new
        for folder in (path, path / "new", path / "cur", path / "tmp"):
            folder.mkdir(mode=0o700, exist_ok=True)
        path.chmod(0o700)
        self._plan: deque[Action] = deque()
        self._lock = threading.Lock()

    # --- controls (tests) ---------------------------------------------------------------------------------

    def refuse_next(self, count: int = 1) -> None:
        """The next ``count`` messages are refused at RCPT: 550, a permanent failure."""
        self._add("refuse", count)

    def defer_next(self, count: int = 1) -> None:
        """The next ``count`` messages are deferred at DATA, not stored: 451, try again later."""
        self._add("defer", count)

    def defer_after_storing_next(self, count: int = 1) -> None:
        """The next ``count`` messages are stored, then answered 451 all the same (a lost acknowledgement)."""
        self._add("store_then_defer", count)

    def _add(self, action: Action, count: int) -> None:
        with self._lock:
            self._plan.extend([action] * count)

    def _take(self, *wanted: Action) -> Action | None:
        with self._lock:
            if self._plan and self._plan[0] in wanted:
                return self._plan.popleft()
            return None

    # --- aiosmtpd hooks -----------------------------------------------------------------------------------

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self._take("refuse"):
            return "550 5.1.1 Mailbox unavailable (refused as the test asked)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        action = self._take("defer", "store_then_defer")
        if action == "defer":
            return "451 4.3.0 Try again later (deferred as the test asked)"
        key = self._store(envelope.mail_from, envelope.rcpt_tos, envelope.original_content or envelope.content)
        if action == "store_then_defer":
            return "451 4.3.0 Try again later (stored, then deferred as the test asked)"
        return f"250 2.0.0 Ok: queued as {key}"

    def _store(self, mail_from: str, rcpt_tos: list[str], content: bytes | str) -> str:
        raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else bytes(content)
        # As a delivery agent files it: the envelope first (where it came from, whom it was for), then the
        # message as received, with Unix line ends.
        envelope = f"Return-Path: <{mail_from}>\n" + "".join(f"Delivered-To: {rcpt}\n" for rcpt in rcpt_tos)
        with self._lock:
            return self.maildir.add(envelope.encode("utf-8", "surrogateescape") + raw.replace(b"\r\n", b"\n"))


@dataclass
class MailServer:
    """A running embedded mail server: where it listens, its Maildir, and the store's controls."""

    host: str
    port: int
    maildir: Path
    store: MailStore
    controller: Controller | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def refuse_next(self, count: int = 1) -> None:
        self.store.refuse_next(count)

    def defer_next(self, count: int = 1) -> None:
        self.store.defer_next(count)

    def defer_after_storing_next(self, count: int = 1) -> None:
        self.store.defer_after_storing_next(count)

    def messages(self) -> list[EmailMessage]:
        """Every message in the Maildir, in the order they arrived."""
        return [message for _key, _at, message in read_maildir(self.maildir)]

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def read_maildir(path: Path) -> list[tuple[str, datetime, EmailMessage]]:
    """The messages of a Maildir, oldest first: (key, when it was delivered, the parsed message)."""
    box = mailbox.Maildir(path, factory=None, create=False)
    found = []
    for key in box.keys():
        with contextlib.suppress(KeyError, FileNotFoundError):  # removed while we read
            delivered = datetime.fromtimestamp(box.get_message(key).get_date(), UTC)
            message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            found.append((key, delivered, message))
    return sorted(found, key=lambda item: (item[1], item[0]))


def start_mail_server(maildir: Path, *, host: str = "127.0.0.1", port: int = DEV_SMTP_PORT,
                      hostname: str = DEFAULT_MAIL_DOMAIN) -> MailServer:
    """Start the server on ``port`` (0, or taken: a free one the OS picks), storing into ``maildir``."""
    from aiosmtpd.controller import Controller

    # aiosmtpd logs every SMTP line at INFO: addresses and AUTH exchanges do not belong in the stack's log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    store = MailStore(maildir)
    last: OSError | None = None
    for attempt in range(5):
        chosen = _free_port(host, port if attempt == 0 else 0)
        controller = Controller(store, hostname=host, port=chosen, server_hostname=hostname, ready_timeout=10)
        try:
            controller.start()
        except OSError as error:  # taken between asking and binding: another
            last = error
            with contextlib.suppress(Exception):
                controller.stop(no_assert=True)
            controller.loop.close()
            continue
        return MailServer(host=host, port=chosen, maildir=maildir, store=store, controller=controller)
    raise OSError(f"the mail server found no port to listen on: {last}")


@contextlib.contextmanager
def mail_server(maildir: Path, *, host: str = "127.0.0.1", port: int = DEV_SMTP_PORT,
                hostname: str = DEFAULT_MAIL_DOMAIN) -> Iterator[MailServer]:
    """:func:`start_mail_server`, stopped on exit (also on error and Ctrl-C)."""
    server = start_mail_server(maildir, host=host, port=port, hostname=hostname)
    try:
        yield server
    finally:
        server.stop()


def _free_port(host: str, preferred: int) -> int:
    """``preferred`` if nothing listens there, else a free port the OS picks (aiosmtpd's controller needs
    the number before it binds, and takes its whole start timeout to report a port that is taken)."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free port")


@contextlib.contextmanager
def mail_server_process(maildir: Path, *, host: str = "127.0.0.1") -> Iterator[tuple[str, int]]:
    """The same server in a process of its own (``python -m dev.mailserver``), as a relay is in production: for a
    benchmark, whose measured process must not also serve SMTP. Yields (host, port); no controls (refuse_next...).
    Stopped on exit."""
    import subprocess
    import sys

    from dev.stack import die_with_parent

    child = subprocess.Popen([sys.executable, "-m", "dev.mailserver", str(maildir), host],
                             cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.PIPE,
                             stdin=subprocess.PIPE, preexec_fn=die_with_parent)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().decode().strip()
        if not line.isdigit():
            raise RuntimeError(f"the mail server process did not start (exit code {child.poll()})")
        yield host, int(line)
    finally:
        if child.stdin is not None:
            child.stdin.close()  # its end of the pipe: it stops
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def main() -> None:
    """``python -m dev.mailserver MAILDIR [HOST]``: serve on a free port, print it, stop when stdin closes."""
    import sys

    maildir, host = Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    server = start_mail_server(maildir, host=host, port=0)
    print(server.port, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
