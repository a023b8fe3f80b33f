"""Credentials: short-lived signed tokens (JWT, EdDSA or ES256) naming a subject and its role.

A deployment plugs in its identity provider by trusting the provider's public keys (its JWKS) in
COMPLAINTS_TRUSTED_ISSUERS; the embedded stack has a development issuer of its own (``complaints token
issue``). Tokens travel in a Temporal header (:data:`HEADER`), set by the clients' interceptor, and are
verified by the worker before a decision is accepted; the log records the principal and the token's
sha256, never the token.

Verification takes the time it is given (``workflow.now()`` in a workflow), never the wall clock.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from domain.principals import ISSUER_PATTERN, SUBJECT_PATTERN, SYSTEM, Principal, Role, credential_hash

#: The Temporal header that carries a caller's token (a JSON string). An identifier, as the ``temporal``
#: CLI's ``--headers KEY=VALUE`` requires.
HEADER = "complaints_token"
TRUSTED_ENV = "COMPLAINTS_TRUSTED_ISSUERS"
TOKEN_ENV = "COMPLAINTS_TOKEN"
ISSUER_KEY_ENV = "COMPLAINTS_ISSUER_KEY_FILE"
AUDIENCE = "complaints"
ALGORITHMS = ("EdDSA", "ES256")
#: Tokens are short-lived: one valid for longer than this is refused, whoever signed it.
MAX_LIFETIME = timedelta(hours=24)
#: Clocks disagree a little between the issuer and the worker.
LEEWAY = timedelta(seconds=60)


class Unauthenticated(Exception):
    """No credential, or one that does not prove who the caller is: nothing is accepted from it."""


@dataclass(frozen=True)
class IssuerKey:
    """A signing key of an issuer this project runs itself (the embedded stack's, the suite's)."""

    issuer: str
    private: Ed25519PrivateKey
    kid: str

    @classmethod
    def generate(cls, issuer: str) -> IssuerKey:
        return cls(issuer, Ed25519PrivateKey.generate(), secrets.token_hex(4))

    def to_json(self) -> str:
        raw = self.private.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
        return json.dumps({"issuer": self.issuer, "kid": self.kid, "ed25519": raw.hex()})

    @classmethod
    def from_json(cls, text: str) -> IssuerKey:
        data = json.loads(text)
        return cls(data["issuer"], Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data["ed25519"])), data["kid"])

    @classmethod
    def from_file(cls, path: str | Path) -> IssuerKey:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def trusted(self, roles: list[str] | None = None) -> dict[str, Any]:
        """This issuer's entry for COMPLAINTS_TRUSTED_ISSUERS; with ``roles``, it is believed for those only."""
        entry: dict[str, Any] = {"issuer": self.issuer, "jwks": {"keys": [self.public_jwk()]}}
        return {**entry, "roles": roles} if roles is not None else entry

    def issue(self, subject: str, role: str, *, ttl: timedelta = timedelta(hours=1), now: datetime | None = None,
              audience: str = AUDIENCE, **claims: Any) -> str:
        """A signed token for ``subject`` in ``role``, valid for ``ttl`` from ``now``."""
        now = now or datetime.now(UTC)
        body = {"iss": self.issuer, "sub": subject, "role": role, "aud": audience, "iat": int(now.timestamp()),
                "nbf": int(now.timestamp()), "exp": int((now + ttl).timestamp()), "jti": secrets.token_hex(8),
                **claims}
        return jwt.encode(body, self.private, algorithm="EdDSA", headers={"kid": self.kid})


@dataclass(frozen=True)
class Issuer:
    """An identity provider the workers trust: its name (the ``iss`` claim), public keys (a JWKS), the
    audience its tokens must name, which claim holds the complaints role, and, if it is trusted for some roles
    only (the customer gateway's issuer: ``customer``), which."""

    name: str
    keys: tuple[jwt.PyJWK, ...]
    audience: str = AUDIENCE
    role_claim: str = "role"
    roles: frozenset[str] | None = None

    def key_for(self, kid: str | None) -> jwt.PyJWK | None:
        for key in self.keys:
            if kid is None or key.key_id == kid:
                return key
        return None


@dataclass(frozen=True)
class TrustedIssuers:
    """The worker's configuration of whom to believe (COMPLAINTS_TRUSTED_ISSUERS, a JSON list of
    ``{"issuer", "jwks", "audience"?, "role_claim"?, "roles"?}``, inline or ``@/path/to/file.json``)."""

    issuers: Mapping[str, Issuer] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> TrustedIssuers:
        text = text.strip()
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        entries = json.loads(text) if text else []
        if isinstance(entries, dict):
            entries = [entries]
        issuers = {}
        for entry in entries:
            keys = tuple(jwt.PyJWK(k) for k in entry["jwks"]["keys"] if k.get("use", "sig") == "sig")
            roles = entry.get("roles")
            if roles is not None and (not isinstance(roles, list) or not all(r in Role.__members__ for r in roles)):
                raise ValueError(f"issuer {entry['issuer']!r}: roles must be a list of roles ({', '.join(Role)})")
            issuers[entry["issuer"]] = Issuer(entry["issuer"], keys, entry.get("audience", AUDIENCE),
                                              entry.get("role_claim", "role"),
                                              frozenset(roles) if roles is not None else None)
        return cls(issuers)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TrustedIssuers:
        return cls.parse(environ.get(TRUSTED_ENV, ""))

    @classmethod
    def of(cls, *keys: IssuerKey) -> TrustedIssuers:
        return cls.parse(json.dumps([k.trusted() for k in keys]))

    def verify(self, token: object, now: datetime) -> Principal:
        """The principal ``token`` proves at ``now``, or :class:`Unauthenticated` saying why not."""
        if not isinstance(token, str) or not token:
            raise Unauthenticated(f"no credential: send a token in the {HEADER!r} header")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("the credential is not a well-formed token") from None
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise Unauthenticated(f"token algorithm {algorithm!r} is not accepted (EdDSA or ES256)")
        issuer = self.issuers.get(str(unverified.get("iss")))
        if issuer is None:
            raise Unauthenticated(f"the token's issuer {str(unverified.get('iss'))[:80]!r} is not trusted")
        key = issuer.key_for(header.get("kid"))
        if key is None:
            raise Unauthenticated(f"issuer {issuer.name!r} has no key {header.get('kid')!r}")
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], audience=issuer.audience, issuer=issuer.name,
                                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                         "require": ["iss", "sub", "aud", "exp", "iat"]})
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature does not verify") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is refused: {error}") from None
        _check_times(claims, now)
        principal = _principal(claims, issuer.role_claim, token)
        if issuer.roles is not None and principal.role.value not in issuer.roles:
            raise Unauthenticated(f"issuer {issuer.name!r} is trusted only for the role(s) "
                                  f"{', '.join(sorted(issuer.roles))}, not {principal.role.value}")
        return principal

    def read(self, token: str) -> Principal:
        """The principal a token names, without checking it: for a decision already accepted (and verified)
        whose handler runs again on replay, which must not depend on today's keys or clock."""
        claims = jwt.decode(token, options={"verify_signature": False})
        issuer = self.issuers.get(str(claims.get("iss")))
        return _principal(claims, issuer.role_claim if issuer else "role", token)


def _check_times(claims: Mapping[str, Any], now: datetime) -> None:
    def at(name: str) -> datetime:
        value = claims[name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise Unauthenticated(f"the token's {name} is not a time")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):  # out of range, NaN, infinity
            raise Unauthenticated(f"the token's {name} is not a time") from None

    expires, issued = at("exp"), at("iat")
    if now >= expires + LEEWAY:
        raise Unauthenticated(f"the token expired at {expires.isoformat()}")
    if "nbf" in claims and now + LEEWAY < at("nbf"):
        raise Unauthenticated(f"the token is not valid before {at('nbf').isoformat()}")
    if now + LEEWAY < issued:
        raise Unauthenticated("the token was issued in the future")
    if expires - issued > MAX_LIFETIME:
        raise Unauthenticated(f"the token lives longer than {MAX_LIFETIME} (short-lived tokens only)")


def _principal(claims: Mapping[str, Any], role_claim: str, token: str) -> Principal:
    role = claims.get(role_claim)
    if role == SYSTEM:
        raise Unauthenticated("'system' is the workflow itself: no caller can hold it")
    if not isinstance(role, str) or role not in {r.value for r in Role}:
        raise Unauthenticated(f"the token's {role_claim!r} claim is not a role (" + ", ".join(Role) + ")")
    subject, issuer = str(claims.get("sub", "")), str(claims.get("iss", ""))
    if not SUBJECT_PATTERN.fullmatch(subject):
        raise Unauthenticated("the token's subject is not a plain id (letters, digits, . _ @ -, at most 64)")
    if not ISSUER_PATTERN.fullmatch(issuer) or ";" in issuer:
        raise Unauthenticated("the token's issuer is not a plain URL or name")
    return Principal(issuer=issuer, subject=subject, role=Role(role), credential_sha256=credential_hash(token))
