"""Standard wording: short, professional, warm (sources 002 and 003). Operators may give their own."""

from __future__ import annotations

from datetime import datetime

from domain.vocabulary import Rung


def acknowledgement(complaint_id: str, title: str, respond_by: datetime | None) -> str:
    by = f" We will respond by {respond_by:%d %B %Y}." if respond_by else ""
    return (f"Thank you for telling us about '{title}'. We have received your complaint {complaint_id} and "
            f"a person is looking into it.{by}")


def contact_request(to: Rung) -> str:
    return {
        Rung.email: "We would like to help you properly and privately: please send us your email address "
                    "or a direct message, and we will continue there.",
        Rung.phone: "It may be quicker to talk: may we call you? Please tell us a number and a good time.",
        Rung.meeting: "We would like to meet you in person to put this right. When and where suits you?",
    }.get(to, "")


def apology(title: str | None) -> str:
    what = f"'{title}'" if title else "this"
    return (f"We are sorry: {what} was not what we promised. Thank you for telling us, it helps us "
            "improve. Please choose the option that suits you best.")


def explanation(sop_reference: str, clause: str | None) -> str:
    at_stake = f" ({clause})" if clause else ""
    return (f"We have looked carefully at what happened. Our agreement{at_stake} works as set out in "
            f"{sop_reference}, and in this case it was followed. We are glad to walk you through it again "
            "and to help you make the most of it, or, if it no longer suits you, to help you leave without "
            "any penalty.")


def own_apology(text: str, title: str | None) -> str | None:
    """An apology's text if an agent wrote it, None if it is :func:`apology`'s standard wording (which each
    message and page words afresh in the customer's language)."""
    return None if text == apology(title) else text


def own_explanation(text: str, sop_reference: str, clause: str | None) -> str | None:
    """An explanation's text if an agent wrote it, None if it is :func:`explanation`'s standard wording."""
    return None if text == explanation(sop_reference, clause) else text
