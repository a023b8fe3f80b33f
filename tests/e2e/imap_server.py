"""A real IMAP server for the inbox's tests: Debian's Dovecot 2.3 (``apt-get install -y dovecot-imapd``),
started in the foreground with a configuration of its own in a scratch directory, listening on 127.0.0.1 on a
free port, with one passwd-file user and STARTTLS under a certificate made here. Nothing of the system's
Dovecot is used or touched (not /etc/dovecot, not /run/dovecot, not a system service).

Dovecot never runs a mail process as root: run as root (as CI does), the mailbox belongs to ``nobody`` and
lives in a directory of its own under the system's temporary directory (pytest's are closed to other users),
removed when the server stops. Run as anyone else, every Dovecot process is that user and everything lives
in the scratch directory.

What the tests do to the mailbox besides the inbox under test (deliver, read flags, empty it) is done here
with the standard library's imaplib, as a delivery agent or a mail program would."""

from __future__ import annotations

import contextlib
import datetime
import grp
import imaplib
import ipaddress
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOST = "127.0.0.1"
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


@dataclass(frozen=True)
class Certificate:
    """A self-signed server certificate (and its key) for 127.0.0.1 and localhost."""

    pem: bytes
    key_pem: bytes = field(repr=False)

    def trusting(self) -> ssl.SSLContext:
        """A client context that verifies the server against this certificate only (and is as strict as
        newer Pythons are by default)."""
        context = ssl.create_default_context(cadata=self.pem.decode("ascii"))
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        return context


def make_certificate(names: tuple[str, ...] = (HOST, "localhost")) -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "complaints test IMAP server")])
    now = datetime.datetime.now(datetime.UTC)
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption()))


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def dovecot_binary() -> str:
    found = shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")
    if found is None:
        pytest.fail("dovecot is not installed: the IMAP inbox's tests run a real Dovecot 2.3 "
                    "(apt-get install -y dovecot-imapd)")
    return found


def dovecot_version(binary: str) -> str:
    return subprocess.run([binary, "--version"], capture_output=True, text=True, check=True,
                          timeout=30).stdout.split()[0]


@dataclass
class Dovecot:
    """A running server and its one user, with a mail program's view of the user's INBOX."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    certificate: Certificate
    root: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        logs = [self.root / "dovecot.log", self.root / "stderr.log"]
        return "\n".join(p.read_text("utf-8", "replace") for p in logs if p.exists())

    @contextlib.contextmanager
    def session(self, *, readonly: bool = False) -> Iterator[imaplib.IMAP4]:
        """Logged in over STARTTLS, INBOX selected (examined if ``readonly``)."""
        imap = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            imap.starttls(self.certificate.trusting())
            imap.login(self.user, self.password)
            status, _ = imap.select("INBOX", readonly=readonly)
            assert status == "OK"
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def deliver(self, message: EmailMessage) -> tuple[str, bytes]:
        """APPEND ``message`` to INBOX, unflagged: its UID and the bytes delivered."""
        raw = message.as_bytes(policy=SMTP)
        with self.session() as imap:
            status, data = imap.append("INBOX", "", "", raw)  # no flags; the date: now
        assert status == "OK", data
        found = _APPENDUID.search(data[0] or b"")
        assert found, f"no APPENDUID in {data!r}"
        return found.group(1).decode(), raw

    def flags(self, uid: str) -> set[str]:
        """The message's flags, \\Recent aside (it says which session saw the message first, not what was
        done to it)."""
        with self.session(readonly=True) as imap:
            status, data = imap.uid("FETCH", uid, "(FLAGS)")
        assert status == "OK" and data and data[0], f"no message with UID {uid}: {data!r}"
        assert isinstance(data[0], bytes)
        return {f.decode() for f in imaplib.ParseFlags(data[0])} - {"\\Recent"}

    def empty(self) -> None:
        with self.session() as imap:
            status, data = imap.uid("SEARCH", "ALL")
            assert status == "OK"
            uids = (data[0] or b"").split()
            if uids:
                imap.uid("STORE", b",".join(uids).decode(), "+FLAGS.SILENT", "(\\Deleted)")
                imap.expunge()


def _config(root: Path, mail: Path, port: int, uid: int, gid: int, internal: tuple[str, str], login_user: str,
            as_root: bool) -> str:
    # Dovecot 2.3's settings (2.4 renamed many: disable_plaintext_auth became auth_allow_cleartext, ...).
    unprivileged = "" if as_root else """
service imap-login {
  chroot =
}
service anvil {
  chroot =
}"""
    return f"""# Written by tests/e2e/imap_server.py for one test run: a throwaway server.
instance_name = complaints-test-{port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
default_internal_user = {internal[0]}
default_internal_group = {internal[1]}
default_login_user = {login_user}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
auth_mechanisms = plain
disable_plaintext_auth = no
auth_failure_delay = 0
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{mail}/%u/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
# No auth penalty (anvil delaying every login from an address after a wrong password from it, up to 15 s):
# without its socket the auth process keeps none, and a test of a wrong password slows no other test.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}{unprivileged}
"""


@contextlib.contextmanager
def dovecot(root: Path, user: str = "replies", *, start_timeout: float = 20) -> Iterator[Dovecot]:
    """A Dovecot of its own under ``root``, stopped (and its mailbox removed) on leaving, whatever happened."""
    binary = dovecot_binary()
    version = dovecot_version(binary)
    if not version.startswith("2.3."):
        pytest.fail(f"the test IMAP server's configuration is written for Dovecot 2.3 (Debian bookworm's "
                    f"dovecot-imapd), not {version}")
    root.mkdir(parents=True, exist_ok=True)
    as_root = os.geteuid() == 0
    mail_owner = pwd.getpwnam("nobody") if as_root else pwd.getpwuid(os.geteuid())
    # Run as root, the login processes refuse to be root, the mail processes too: both are nobody.
    mail = Path(tempfile.mkdtemp(prefix="complaints-test-imap-")) if as_root else root / "mail"
    process: subprocess.Popen[bytes] | None = None
    try:
        if as_root:
            os.chown(mail, mail_owner.pw_uid, mail_owner.pw_gid)
            internal, login_user = ("root", "root"), "nobody"
        else:
            mail.mkdir()
            internal, login_user = (mail_owner.pw_name, grp.getgrgid(mail_owner.pw_gid).gr_name), mail_owner.pw_name
        certificate = make_certificate()
        (root / "cert.pem").write_bytes(certificate.pem)
        (root / "key.pem").touch(mode=0o600)
        (root / "key.pem").write_bytes(certificate.key_pem)
        password = secrets.token_urlsafe(18)
        (root / "users").touch(mode=0o600)
        (root / "users").write_text(f"{user}:{{PLAIN}}{password}\n", encoding="utf-8")
        conf = root / "dovecot.conf"
        for attempt in range(3):  # the free port may be taken before Dovecot binds it: then another
            port = free_port()
            (root / "dovecot.log").unlink(missing_ok=True)
            conf.write_text(_config(root, mail, port, mail_owner.pw_uid, mail_owner.pw_gid, internal, login_user,
                                    as_root), encoding="utf-8")
            with open(root / "stderr.log", "wb") as stderr:
                process = subprocess.Popen([binary, "-F", "-c", str(conf)], stdin=subprocess.DEVNULL,
                                           stdout=stderr, stderr=stderr, start_new_session=True)
            server = Dovecot(HOST, port, user, password, certificate, root, process)
            try:
                _wait_until_serving(server, start_timeout)
            except RuntimeError:
                _stop(process)
                process = None
                if attempt == 2 or "Address already in use" not in server.log():
                    raise
            else:
                break
        yield server
    finally:
        if process is not None:
            _stop(process)
        if as_root:
            shutil.rmtree(mail, ignore_errors=True)


def _wait_until_serving(server: Dovecot, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"dovecot exited ({server.process.returncode}) on starting:\n{server.log()}")
        try:
            greeting = imaplib.IMAP4(server.host, server.port, timeout=2)
        except (OSError, imaplib.IMAP4.abort):
            if time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not serve {server.host}:{server.port} within {timeout} s:\n"
                                   f"{server.log()}") from None
            time.sleep(0.05)
        else:
            greeting.logout()
            return


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate the master (it stops its own processes), kill it if it lingers, then whatever of its
    session is left (its processes and no one else's: it was started in a session of its own)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
