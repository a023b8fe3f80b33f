"""The remedy catalogue: several equivalent options, not only money (source 002).

Equivalence is by value to the customer: a voucher or a discount can only be spent with us, so it is
worth more on paper than a refund of the same good will. Quoting is pure, but the catalogue is
configuration that changes, so the workflow asks an activity for a quote and records the offer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.events import RemedyOption
from domain.intake import Jurisdiction, Severity, SubjectKind
from domain.values import MONEY_MAX, Money
from domain.vocabulary import RemedyKind

CURRENCY: dict[Jurisdiction, str] = {
    Jurisdiction.ID: "IDR", Jurisdiction.GB: "GBP", Jurisdiction.US: "USD", Jurisdiction.AU: "AUD",
    Jurisdiction.CA: "CAD", Jurisdiction.DE: "EUR", Jurisdiction.FR: "EUR", Jurisdiction.IE: "EUR",
    Jurisdiction.IN: "INR", Jurisdiction.JP: "JPY", Jurisdiction.MY: "MYR", Jurisdiction.NL: "EUR",
    Jurisdiction.NZ: "NZD", Jurisdiction.PH: "PHP", Jurisdiction.SG: "SGD", Jurisdiction.TH: "THB",
    Jurisdiction.VN: "VND",
}

#: What a complaint is worth when the order's value is unknown, in minor units.
GOODWILL_BASE: dict[str, int] = {
    "IDR": 25_000_000, "GBP": 2_500, "USD": 3_000, "AUD": 4_500, "CAD": 4_000, "EUR": 3_000, "INR": 250_000,
    "JPY": 4_500, "MYR": 14_000, "NZD": 5_000, "PHP": 170_000, "SGD": 4_000, "THB": 100_000, "VND": 75_000_000,
}

DEFAULT_KINDS: dict[SubjectKind, tuple[RemedyKind, ...]] = {
    SubjectKind.product: (RemedyKind.replacement, RemedyKind.repair, RemedyKind.refund),
    SubjectKind.order: (RemedyKind.voucher, RemedyKind.discount, RemedyKind.refund),
    SubjectKind.service: (RemedyKind.service_credit, RemedyKind.voucher, RemedyKind.discount),
    SubjectKind.payment: (RemedyKind.refund, RemedyKind.service_credit, RemedyKind.voucher),
}


@dataclass(frozen=True)
class Catalogue:
    """Percentages applied to the base value: by severity (how much good will) and by kind (equivalence)."""

    severity_percent: dict[Severity, int] = field(default_factory=lambda: {
        Severity.low: 100, Severity.medium: 110, Severity.high: 125, Severity.critical: 150,
    })
    kind_percent: dict[RemedyKind, int] = field(default_factory=lambda: {
        RemedyKind.refund: 100, RemedyKind.replacement: 100, RemedyKind.repair: 100,
        RemedyKind.service_credit: 110, RemedyKind.voucher: 120, RemedyKind.discount: 120,
    })

    def quote(
        self,
        *,
        kinds: list[RemedyKind] | None,
        default: RemedyKind | None,
        subject_kind: SubjectKind,
        subject_title: str,
        value: Money | None,
        severity: Severity,
        jurisdiction: Jurisdiction,
    ) -> tuple[list[RemedyOption], str]:
        """Options A, B, C... and the id of the one that applies if the customer does not choose."""
        chosen = list(dict.fromkeys(kinds or DEFAULT_KINDS[subject_kind]))
        if default is not None and default not in chosen:  # the assessor's default is always on the menu
            chosen.append(default)
        currency = value.currency if value else CURRENCY[jurisdiction]
        base = value.amount_minor if value else GOODWILL_BASE.get(currency, 3_000)
        options = []
        for index, kind in enumerate(chosen):
            # Capped at what Money holds: a huge order is quoted at the ceiling, not refused.
            amount = min(base * self.severity_percent[severity] * self.kind_percent[kind] // 10_000, MONEY_MAX)
            money = Money(amount_minor=amount, currency=currency)
            options.append(RemedyOption(id=chr(ord("A") + index), kind=kind,
                                        description=describe(kind, money, subject_title), value=money))
        fallback = default or next((k for k in chosen if k is not RemedyKind.refund), chosen[0])
        default_id = next(o.id for o in options if o.kind is fallback)
        return options, default_id


def describe(kind: RemedyKind, value: Money, title: str) -> str:
    return {
        RemedyKind.voucher: f"A voucher worth {value} for your next order",
        RemedyKind.replacement: f"A replacement for '{title}', sent at our cost (worth {value})",
        RemedyKind.repair: f"A repair of '{title}' at our cost (worth {value})",
        RemedyKind.discount: f"A discount of {value} on your next order or renewal",
        RemedyKind.service_credit: f"A service credit of {value} on your account",
        RemedyKind.refund: f"A refund of {value}",
    }[kind]
