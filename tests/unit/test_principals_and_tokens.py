"""Who may decide what, and what proves who a caller is: the permission table, `authorise`, recorded actors,
and the signed tokens a worker believes (or refuses, saying why)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.principals import PERMISSIONS, Forbidden, Principal, RecordedActor, Role, authorise
from identity.tokens import LEEWAY, MAX_LIFETIME, IssuerKey, TrustedIssuers, Unauthenticated

ISSUER = "https://idp.example.test"
CREDENTIAL = hashlib.sha256(b"a token").hexdigest()
KEY = IssuerKey.generate(ISSUER)
TRUSTED = TrustedIssuers.of(KEY)
NOW = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
#: A supervisor's claims, for tokens built by hand rather than by an IssuerKey.
CLAIMS = {"iss": ISSUER, "sub": "ana", "role": "supervisor", "aud": "complaints",
          "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 600}


def principal(role: str, subject: str = "ana", issuer: str = ISSUER) -> Principal:
    return Principal(issuer=issuer, subject=subject, role=Role(role), credential_sha256=CREDENTIAL)


def refusal(token: object, now: datetime = NOW, trusted: TrustedIssuers = TRUSTED) -> str:
    with pytest.raises(Unauthenticated) as error:
        trusted.verify(token, now)
    return str(error.value)


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload's claims changed and its header and signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body = base64.urlsafe_b64encode(json.dumps({**claims, **changes}).encode()).rstrip(b"=").decode()
    return ".".join((header, body, signature))


# --- the permission table ---------------------------------------------------------------------------------

UPDATES = ("assess", "choose_remedy", "choose_option", "move_offline", "log_message", "record_follow_up",
           "record_churn", "withdraw", "escalate", "extend_deadline", "close", "apologise_for_conduct")
ACTIONS = (*UPDATES, "submit")
CUSTOMER_MAY = {"choose_remedy", "choose_option", "record_follow_up", "withdraw", "log_message"}
AGENT_MAY = {"move_offline", "log_message", "assess", "apologise_for_conduct", "escalate", "record_churn",
             "choose_remedy", "choose_option", "record_follow_up", "withdraw", "submit"}
#: Pinned here on purpose (not derived from PERMISSIONS): a change to who may do what must change this test.
ALLOWED: dict[str, set[str]] = {
    "customer": CUSTOMER_MAY,
    "agent": AGENT_MAY,
    "supervisor": AGENT_MAY | {"close", "extend_deadline"},
    "intake": {"submit"},
    "auditor": set(),
}


def test_the_table_knows_no_action_beyond_the_updates_and_submit() -> None:
    assert set().union(*PERMISSIONS.values()) <= set(ACTIONS)
    assert [role.value for role in PERMISSIONS] == list(ALLOWED)


@pytest.mark.parametrize("role,action", [(role, action) for role in ALLOWED for action in ACTIONS])
def test_each_role_may_do_exactly_what_the_table_says(role: str, action: str) -> None:
    caller = principal(role, "C1" if role == "customer" else "ana")
    if action in ALLOWED[role]:
        assert authorise(caller, action, customer_id="C1").startswith(f"{caller.name};iss={ISSUER};cred=")
        return
    may = [r for r in ALLOWED if action in ALLOWED[r]]
    with pytest.raises(Forbidden) as error:
        authorise(caller, action, customer_id="C1")
    assert str(error.value) == f"{caller.name} may not {action}: it needs the role " + " or ".join(may)
    assert error.value.required == may


def test_only_a_supervisor_may_close_and_an_auditor_may_decide_nothing() -> None:
    with pytest.raises(Forbidden, match=r"agent:ana may not close: it needs the role supervisor$"):
        authorise(principal("agent"), "close", customer_id="C1")
    with pytest.raises(Forbidden, match=r"needs the role agent or supervisor or intake$"):
        authorise(principal("auditor"), "submit", customer_id="C1")
    with pytest.raises(Forbidden, match=r"needs the role \(none: nobody may\)") as error:
        authorise(principal("supervisor"), "reopen", customer_id="C1")
    assert error.value.required == []


# --- customers, and decisions made on their behalf --------------------------------------------------------


def test_a_customer_acts_only_on_their_own_complaint() -> None:
    assert authorise(principal("customer", "C1"), "withdraw", customer_id="C1") == principal("customer", "C1").actor()
    with pytest.raises(Forbidden, match="customer:C2 is not this complaint's customer") as error:
        authorise(principal("customer", "C2"), "withdraw", customer_id="C1")
    assert error.value.required == ["customer"]


def test_a_customer_may_log_only_messages_whose_sender_is_the_customer() -> None:
    customer = principal("customer", "C1")
    for sender in (None, "customer"):
        assert authorise(customer, "log_message", customer_id="C1", sender=sender) == customer.actor()
    with pytest.raises(Forbidden, match="customer:C1 may log only the customer's own messages"):
        authorise(customer, "log_message", customer_id="C1", sender="agent")


@pytest.mark.parametrize("role", ["agent", "supervisor"])
@pytest.mark.parametrize("by", [None, "customer", "customer:C1"])
def test_staff_making_a_customer_decision_is_recorded_on_the_customers_behalf(role: str, by: str | None) -> None:
    caller = principal(role)
    actor = authorise(caller, "choose_remedy", customer_id="C1", by=by)
    assert actor == caller.actor("customer:C1")
    assert actor.endswith(";for=customer:C1")


def test_an_agent_logging_a_message_is_on_behalf_only_when_by_names_the_customer() -> None:
    agent = principal("agent")
    assert authorise(agent, "log_message", customer_id="C1", by="customer").endswith(";for=customer:C1")
    assert authorise(agent, "log_message", customer_id="C1", by="customer:C1").endswith(";for=customer:C1")
    assert authorise(agent, "log_message", customer_id="C1") == agent.actor()
    assert ";for=" not in authorise(agent, "log_message", customer_id="C1", by="agent:ana")


@pytest.mark.parametrize("role,subject,action,by", [
    ("agent", "ana", "choose_remedy", "supervisor:budi"),
    ("agent", "ana", "log_message", "system"),
    ("agent", "ana", "assess", "agent:bob"),
    ("agent", "ana", "assess", "customer"),
    ("agent", "ana", "choose_remedy", "customer:C2"),
    ("supervisor", "budi", "close", "agent"),
    ("customer", "C1", "withdraw", "customer:C2"),
])
def test_by_naming_anyone_but_the_caller_or_their_customer_is_forbidden(role: str, subject: str, action: str,
                                                                       by: str) -> None:
    with pytest.raises(Forbidden) as error:
        authorise(principal(role, subject), action, customer_id="C1", by=by)
    assert str(error.value) == f"'by' names {by!r}, but the authenticated caller is {role}:{subject}"


@pytest.mark.parametrize("role,subject,action,by", [
    ("agent", "ana", "assess", "agent"), ("agent", "ana", "assess", "agent:ana"),
    ("supervisor", "budi", "close", "supervisor:budi"), ("customer", "C1", "choose_option", "customer"),
])
def test_by_restating_the_caller_is_fine(role: str, subject: str, action: str, by: str) -> None:
    caller = principal(role, subject)
    assert authorise(caller, action, customer_id="C1", by=by) == caller.actor()


# --- actors as the log records them -----------------------------------------------------------------------


@pytest.mark.parametrize("issuer", [ISSUER, "https://idp.example.test/realms/x?tenant=a=b"])
@pytest.mark.parametrize("on_behalf_of", [None, "customer:C1"])
def test_a_recorded_actor_reads_back_the_principal_that_made_it(issuer: str, on_behalf_of: str | None) -> None:
    read = RecordedActor.parse(principal("agent", issuer=issuer).actor(on_behalf_of))
    assert (read.name, read.issuer, read.credential_sha256, read.on_behalf_of) == (
        "agent:ana", issuer, CREDENTIAL, on_behalf_of)
    assert read.authenticated
    assert read.describe() == "agent:ana" + (" for customer:C1" if on_behalf_of else "") + f" ({issuer})"


@pytest.mark.parametrize("text", ["system", "agent:ana"])
def test_a_legacy_actor_reads_as_unauthenticated(text: str) -> None:
    read = RecordedActor.parse(text)
    assert (read.name, read.issuer, read.credential_sha256, read.on_behalf_of) == (text, None, None, None)
    assert not read.authenticated
    assert read.describe() == text


# --- tokens -----------------------------------------------------------------------------------------------


def test_a_good_token_proves_its_principal_and_the_hash_of_the_credential() -> None:
    token = KEY.issue("ana", "agent", now=NOW)
    assert TRUSTED.verify(token, NOW) == Principal(issuer=ISSUER, subject="ana", role=Role.agent,
                                                   credential_sha256=hashlib.sha256(token.encode()).hexdigest())


@pytest.mark.parametrize("token", [None, "", 42, b"header.payload.signature"])
def test_no_credential_is_refused(token: object) -> None:
    assert refusal(token) == "no credential: send a token in the 'complaints_token' header"


@pytest.mark.parametrize("token", ["not a token", "a.b.c", "Bearer " + KEY.issue("ana", "agent")])
def test_garbage_is_not_a_well_formed_token(token: str) -> None:
    assert refusal(token) == "the credential is not a well-formed token"


def test_a_token_expired_beyond_the_leeway_is_refused_and_within_it_accepted() -> None:
    expired = KEY.issue("ana", "agent", ttl=timedelta(hours=1), now=NOW - timedelta(hours=1) - LEEWAY)
    assert refusal(expired) == "the token expired at 2025-03-14T09:29:00+00:00"  # now is exactly exp + LEEWAY
    just = KEY.issue("ana", "agent", ttl=timedelta(hours=1), now=NOW - timedelta(hours=1) - LEEWAY / 2)
    assert TRUSTED.verify(just, NOW).subject == "ana"


def test_a_token_not_yet_valid_or_issued_in_the_future_is_refused() -> None:
    later = NOW + timedelta(minutes=10)
    assert refusal(KEY.issue("ana", "agent", now=later)).startswith("the token is not valid before 2025-03-14T09:40")
    backdated_nbf = KEY.issue("ana", "agent", now=later, nbf=int(NOW.timestamp()))
    assert refusal(backdated_nbf) == "the token was issued in the future"


def test_a_token_living_longer_than_the_maximum_is_refused() -> None:
    assert TRUSTED.verify(KEY.issue("ana", "agent", ttl=MAX_LIFETIME, now=NOW), NOW).role is Role.agent
    long_lived = KEY.issue("ana", "agent", ttl=timedelta(hours=25), now=NOW)
    assert refusal(long_lived) == f"the token lives longer than {MAX_LIFETIME} (short-lived tokens only)"


def test_a_tampered_payload_does_not_verify() -> None:
    token = KEY.issue("ana", "agent", now=NOW)
    assert refusal(tampered(token, role="supervisor")) == "the token's signature does not verify"


def test_a_token_signed_by_another_key_of_the_same_issuer_name_is_refused() -> None:
    impostor = IssuerKey(ISSUER, Ed25519PrivateKey.generate(), KEY.kid)
    assert refusal(impostor.issue("ana", "supervisor", now=NOW)) == "the token's signature does not verify"
    no_kid = jwt.encode(CLAIMS, impostor.private, algorithm="EdDSA")
    assert refusal(no_kid) == "the token's signature does not verify"
    other_kid = IssuerKey(ISSUER, Ed25519PrivateKey.generate(), "other-kid").issue("ana", "agent", now=NOW)
    assert refusal(other_kid) == f"issuer {ISSUER!r} has no key 'other-kid'"


def test_a_token_from_an_untrusted_issuer_or_for_another_audience_is_refused() -> None:
    stranger = IssuerKey.generate("https://elsewhere.test").issue("ana", "agent", now=NOW)
    assert refusal(stranger) == "the token's issuer 'https://elsewhere.test' is not trusted"
    assert refusal(KEY.issue("ana", "agent", now=NOW, audience="other")) == (
        "the token is refused: Audience doesn't match")


def test_the_role_claim_must_be_a_role_and_never_system() -> None:
    assert refusal(KEY.issue("ana", "system", now=NOW)) == "'system' is the workflow itself: no caller can hold it"
    assert refusal(KEY.issue("ana", "admin", now=NOW)) == (
        "the token's 'role' claim is not a role (customer, agent, supervisor, intake, auditor)")


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm,secret", [("none", None), ("HS256", "secret")])
def test_only_asymmetric_algorithms_are_accepted(algorithm: str, secret: str | None) -> None:
    token = jwt.encode(CLAIMS, secret, algorithm=algorithm, headers={"kid": KEY.kid})
    assert refusal(token) == f"token algorithm {algorithm!r} is not accepted (EdDSA or ES256)"


@pytest.mark.parametrize("subject", ["ana;iss=evil", "a" * 65, "ana bob"])
def test_a_subject_that_is_not_a_plain_id_is_refused(subject: str) -> None:
    assert refusal(KEY.issue(subject, "agent", now=NOW)).startswith("the token's subject is not a plain id")


def test_time_comes_only_from_the_now_it_is_given() -> None:
    past = datetime(2020, 1, 1, 12, tzinfo=UTC)
    token = KEY.issue("ana", "agent", now=past)
    assert TRUSTED.verify(token, past).subject == "ana"
    assert TRUSTED.verify(token, past + timedelta(minutes=59)).subject == "ana"
    assert refusal(token, now=datetime.now(UTC)).startswith("the token expired at 2020-01-01T13:00:00")


def test_a_list_valued_role_claim_is_refused_as_not_a_role() -> None:
    assert "is not a role" in refusal(KEY.issue("ana", ["supervisor"], now=NOW))  # type: ignore[arg-type]


def test_a_subject_with_a_trailing_newline_is_refused_as_not_a_plain_id() -> None:
    assert refusal(KEY.issue("ana\n", "agent", now=NOW)).startswith("the token's subject is not a plain id")


def test_an_exp_beyond_any_date_is_refused_as_not_a_time() -> None:
    assert "exp" in refusal(KEY.issue("ana", "agent", now=NOW, exp=10**20))


# --- trusted issuers, reading without verifying, and issuer keys --------------------------------------------


def test_trusted_issuers_parse_a_list_a_single_object_or_a_file(tmp_path: Path) -> None:
    other = IssuerKey.generate("https://second.test")
    both = json.dumps([KEY.trusted(), other.trusted()])
    (tmp_path / "trusted.json").write_text(both, encoding="utf-8")
    for trusted in (TrustedIssuers.parse(both), TrustedIssuers.parse(f"  @{tmp_path / 'trusted.json'}\n")):
        assert trusted.verify(KEY.issue("ana", "agent", now=NOW), NOW).issuer == ISSUER
        assert trusted.verify(other.issue("bo", "intake", now=NOW), NOW).issuer == "https://second.test"
    single = TrustedIssuers.parse(json.dumps(KEY.trusted()))
    assert single.verify(KEY.issue("ana", "agent", now=NOW), NOW).subject == "ana"
    assert refusal(KEY.issue("ana", "agent", now=NOW), trusted=TrustedIssuers.parse("")).endswith("is not trusted")


def test_an_issuer_entry_may_name_its_audience_and_role_claim() -> None:
    entry = {**KEY.trusted(), "audience": "helpdesk", "role_claim": "complaints_role"}
    trusted = TrustedIssuers.parse(json.dumps([entry]))
    token = KEY.issue("ana", "auditor", now=NOW, audience="helpdesk", complaints_role="supervisor")
    assert trusted.verify(token, NOW).role is Role.supervisor
    assert refusal(KEY.issue("ana", "agent", now=NOW), trusted=trusted).endswith("Audience doesn't match")


def test_read_names_the_principal_without_checking_signature_or_time() -> None:
    expired = KEY.issue("ana", "agent", now=datetime(2020, 1, 1, tzinfo=UTC))
    assert refusal(expired).startswith("the token expired")
    assert TRUSTED.read(expired) == Principal(issuer=ISSUER, subject="ana", role=Role.agent,
                                              credential_sha256=hashlib.sha256(expired.encode()).hexdigest())
    forged = tampered(KEY.issue("ana", "agent", now=NOW), role="supervisor")
    assert TRUSTED.read(forged).role is Role.supervisor


def test_an_issuer_key_survives_a_round_trip_through_json() -> None:
    restored = IssuerKey.from_json(KEY.to_json())
    assert (restored.issuer, restored.kid, restored.public_jwk()) == (KEY.issuer, KEY.kid, KEY.public_jwk())
    assert set(json.loads(KEY.to_json())) == {"issuer", "kid", "ed25519"}
    token = restored.issue("C1", "customer", now=NOW)
    assert TrustedIssuers.parse(json.dumps(KEY.trusted())).verify(token, NOW) == Principal(
        issuer=ISSUER, subject="C1", role=Role.customer, credential_sha256=hashlib.sha256(token.encode()).hexdigest())
