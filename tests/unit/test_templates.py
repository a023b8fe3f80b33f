"""Every message to the customer, in every language we have: complete, rendering on every path, saying what
it must (in that language), and refusing what it cannot word. Server-less: `make unit`.

The structural checks run for every folder under activities/message_templates/, so a new language is tested
as soon as its folder exists; the wording checks (thanks, apology, stay/leave) know the languages in WORDS."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jinja2 import meta

from activities import templates as tpl
from activities.templates import TEMPLATES, Rendered, RenderError, language_for, languages, render
from domain.events import RemedyOption
from domain.intake import Channel
from domain.values import Money
from domain.vocabulary import CustomerChoice, RemedyKind, Rung

JAKARTA = ZoneInfo("Asia/Jakarta")
RESPOND_BY = datetime(2026, 12, 7, 17, 0, tzinfo=JAKARTA)
EXPIRES_AT = datetime(2026, 12, 21, 23, 59, tzinfo=JAKARTA)
ANSWER_BY = datetime(2026, 12, 28, 17, 0, tzinfo=JAKARTA)
DUE_AT = datetime(2027, 1, 5, 17, 0, tzinfo=JAKARTA)
PAGE = "https://example.com/c/C-1001?t=abc"

COMMON: dict[str, Any] = {
    "customer_name": "Siti Rahmawati", "complaint_id": "C-1001", "subject_title": "Late delivery", "page_url": None,
}
OPTIONS: list[dict[str, Any]] = [
    {"id": "A", "kind": "voucher", "description": "A voucher worth IDR 540,000.00 for your next order",
     "value": {"amount_minor": 54_000_000, "currency": "IDR"}},
    {"id": "B", "kind": "discount", "description": "A discount of IDR 540,000.00 on your next order or renewal",
     "value": {"amount_minor": 54_000_000, "currency": "IDR"}},
    {"id": "C", "kind": "refund", "description": "A refund of IDR 450,000.00",
     "value": {"amount_minor": 45_000_000, "currency": "IDR"}},
]
APOLOGY_TEXT = "Paket Anda seharusnya tiba 2 hari kerja setelah pembayaran; ternyata butuh 9 hari."
EXPLANATION_TEXT = "Estimasi 2 hari kerja dihitung sejak pembayaran dikonfirmasi, yaitu 12 November."
NOTICE = "We are still waiting for the courier's report on where the parcel went."

#: Wording a language must use, for the languages we know. A new language is still checked structurally.
WORDS: dict[str, dict[str, str]] = {
    "id": {"thanks": "terima kasih", "sorry": "maaf", "stay": "tetap", "leave": "berhenti",
           "penalty": "tanpa denda", "month": "Desember"},
    "en": {"thanks": "thank", "sorry": "sorry", "stay": "stay", "leave": "leave",
           "penalty": "without any penalty", "month": "December"},
}


def variables(template: str, **overrides: Any) -> dict[str, Any]:
    """Sample variables for ``template``, on its plainest path."""
    own: dict[str, dict[str, Any]] = {
        "acknowledgement": {"channel": "social", "respond_by": RESPOND_BY},
        "move_request": {"to_rung": "email"},
        "apology": {"apology_text": None, "options": OPTIONS, "default_option": "B", "expires_at": EXPIRES_AT,
                    "explanation": None},
        "explanation": {"sop_reference": "SOP-DEL-03 (Pengiriman)", "clause": "Pengiriman 2 hari kerja",
                        "explanation_text": None, "default_option": "stay", "expires_at": EXPIRES_AT},
        "follow_up": {"answer_by": ANSWER_BY},
        "extension_notice": {"notice": NOTICE, "due_at": DUE_AT},
    }
    return {**COMMON, **own[template], **overrides}


#: Every path through every template: (template, the variables that choose the path).
CASES: list[tuple[str, dict[str, Any]]] = [
    *[("acknowledgement", {"channel": c, "respond_by": r, "page_url": p})
      for c in ("social", "email", "phone", "web", "in_person") for r in (RESPOND_BY, None) for p in (None, PAGE)],
    *[("move_request", {"to_rung": r, "page_url": p}) for r in ("email", "phone", "meeting") for p in (None, PAGE)],
    *[("apology", {"apology_text": t, "page_url": p}) for t in (None, APOLOGY_TEXT) for p in (None, PAGE)],
    # Partially valid: the apology also explains the part where the agreement was followed.
    *[("apology", {"explanation": {"sop_reference": "KT-200 manual, section 4", "clause": c, "text": t}})
      for c in (None, "Warranty 2.1") for t in (None, "The filter keeps limescale out.")],
    *[("explanation", {"clause": c, "explanation_text": t, "default_option": d, "page_url": p})
      for c in (None, "Pengiriman 2 hari kerja") for t in (None, EXPLANATION_TEXT) for d in ("stay", "leave")
      for p in (None, PAGE)],
    *[("follow_up", {"page_url": p}) for p in (None, PAGE)],
    *[("extension_notice", {"page_url": p}) for p in (None, PAGE)],
]


def case_id(case: tuple[str, dict[str, Any]]) -> str:
    template, chosen = case
    return template + "-" + "-".join("none" if v is None else str(v)[:8] for v in chosen.values())


def test_the_languages_are_folders_named_by_a_primary_subtag() -> None:
    assert {"id", "en"} <= set(languages())
    for language in languages():
        assert re.fullmatch(r"[a-z]{2,3}", language), f"{language!r}: a folder is named by a primary BCP 47 subtag"


@pytest.mark.parametrize("language", languages())
def test_every_language_has_every_template_and_no_other(language: str) -> None:
    folder = tpl.MESSAGES / language
    present = {p.name.removesuffix(tpl.SUFFIX) for p in folder.glob("*" + tpl.SUFFIX)}
    assert set(TEMPLATES) - present == set(), f"{language}: templates missing"
    assert present - set(TEMPLATES) == set(), f"{language}: templates no one renders (not in TEMPLATES)"


@pytest.mark.parametrize("language", languages())
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_a_template_uses_exactly_its_declared_variables(language: str, template: str) -> None:
    """Each declared variable is worded in every language (none silently dropped), and no template relies on a
    variable the caller is not told to give."""
    env = tpl._environment(language)
    source = (tpl.MESSAGES / language / (template + tpl.SUFFIX)).read_text("utf-8")
    used = meta.find_undeclared_variables(env.parse(source)) - set(env.globals)
    assert used == TEMPLATES[template], f"{language}/{template}"


@pytest.mark.parametrize("language", languages())
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_path_renders(language: str, case: tuple[str, dict[str, Any]]) -> None:
    template, chosen = case
    given = variables(template, **chosen)
    rendered = render(template, language, given)

    assert isinstance(rendered, Rendered)
    assert (rendered.template, rendered.language) == (template, language)
    assert rendered.subject.strip() and "\n" not in rendered.subject
    assert not rendered.subject.lower().startswith("subject:")
    for text in (rendered.subject, rendered.body):
        assert "{{" not in text and "{%" not in text and "{#" not in text and "}}" not in text
    assert "C-1001" in rendered.body, "the complaint id is in every message"
    assert "C-1001" in rendered.subject
    assert rendered.body.startswith(rendered.body.lstrip()) and rendered.body.endswith("\n")
    assert "\n\n\n" not in rendered.body and not re.search(r"[ \t]$", rendered.body, re.M)
    assert "Siti Rahmawati" in rendered.body
    if given["page_url"]:
        assert PAGE in rendered.body.splitlines(), "a link on a line of its own: no punctuation a client takes for it"
    else:
        assert "http" not in rendered.body


@pytest.mark.parametrize("language", languages())
def test_an_apology_thanks_lists_the_options_evenly_and_says_what_applies(language: str) -> None:
    formats = tpl._formats(language)
    body = render("apology", language, variables("apology")).body
    if language in WORDS:
        assert WORDS[language]["thanks"] in body.lower()
        assert WORDS[language]["sorry"] in body.lower()
    lines = [line for line in body.splitlines() if re.match(r"[A-C]\. ", line)]
    assert len(lines) == len(OPTIONS) >= 2, "every option on a line of its own"
    for line, option in zip(lines, OPTIONS, strict=True):
        assert line.startswith(option["id"] + ". ")
        assert line.endswith(": " + formats.money(option["value"])), "each option shows its value, the same way"
    assert len({re.sub(r"^[A-C]\. .*: ", "", line) for line in lines}) == 2  # the values, not a fixed text
    expiry = formats.datetime(EXPIRES_AT)
    default_line = next(line for line in body.splitlines() if expiry in line)
    assert re.search(r"\bB\b", default_line), "the default option is named with the expiry"


@pytest.mark.parametrize("language", languages())
def test_a_partially_valid_apology_also_explains_the_rules_that_were_followed(language: str) -> None:
    plain = render("apology", language, variables("apology")).body
    partial = render("apology", language, variables("apology", explanation={
        "sop_reference": "KT-200 manual, section 4", "clause": "Warranty 2.1", "text": None})).body
    assert "KT-200 manual, section 4" in partial and "Warranty 2.1" in partial
    assert "KT-200" not in plain
    assert partial.count("A.") == plain.count("A.")  # the same options, evenly


@pytest.mark.parametrize("language", languages())
def test_the_agents_own_words_replace_the_standard_apology(language: str) -> None:
    standard = render("apology", language, variables("apology")).body
    own = render("apology", language, variables("apology", apology_text=APOLOGY_TEXT)).body
    assert APOLOGY_TEXT in own and APOLOGY_TEXT not in standard
    assert len(own.splitlines()) == len(standard.splitlines())  # the rest of the message is unchanged


@pytest.mark.parametrize("language", languages())
@pytest.mark.parametrize("default", ["stay", "leave"])
def test_an_explanation_cites_the_sop_and_offers_both_ways_evenly(language: str, default: str) -> None:
    given = variables("explanation", default_option=default, explanation_text=EXPLANATION_TEXT)
    body = render("explanation", language, given).body
    assert "SOP-DEL-03 (Pengiriman)" in body and "Pengiriman 2 hari kerja" in body and EXPLANATION_TEXT in body
    assert tpl._formats(language).datetime(EXPIRES_AT) in body
    if language in WORDS:
        words = WORDS[language]
        choices = [line.lower() for line in body.splitlines() if re.match(r"[12]\. ", line)]
        assert len(choices) == 2 and words["stay"] in choices[0] and words["leave"] in choices[1]
        assert words["penalty"] in body
        assert words["thanks"] in body.lower()
        assert words["sorry"] not in body.lower(), "firm and kind: no apology when the rules were followed"


@pytest.mark.parametrize("language", languages())
def test_the_default_of_an_explanation_is_worded_differently_for_stay_and_leave(language: str) -> None:
    stay = render("explanation", language, variables("explanation", default_option="stay")).body
    leave = render("explanation", language, variables("explanation", default_option=CustomerChoice.leave)).body
    assert stay != leave


@pytest.mark.parametrize("language", [lang for lang in languages() if lang in WORDS])
@pytest.mark.parametrize("template", sorted(set(TEMPLATES) - {"apology"}))
def test_only_the_apology_apologises(language: str, template: str) -> None:
    body = render(template, language, variables(template)).body.lower()
    assert WORDS[language]["sorry"] not in body and "apolog" not in body


@pytest.mark.parametrize("language", languages())
def test_an_extension_notice_gives_the_reason_and_the_new_date(language: str) -> None:
    body = render("extension_notice", language, variables("extension_notice")).body
    assert NOTICE in body and tpl._formats(language).date(DUE_AT) in body


@pytest.mark.parametrize("language", languages())
def test_a_follow_up_asks_for_a_rating_by_a_date(language: str) -> None:
    body = render("follow_up", language, variables("follow_up")).body
    assert "1" in body and "5" in body and tpl._formats(language).date(ANSWER_BY) in body


@pytest.mark.parametrize("language", languages())
def test_an_acknowledgement_promises_a_date_only_when_there_is_one(language: str) -> None:
    date = tpl._formats(language).date(RESPOND_BY)
    assert date in render("acknowledgement", language, variables("acknowledgement")).body
    without = render("acknowledgement", language, variables("acknowledgement", respond_by=None)).body
    assert "2026" not in without


@pytest.mark.parametrize("language", languages())
def test_move_requests_differ_by_rung(language: str) -> None:
    rendered = [render("move_request", language, variables("move_request", to_rung=r)) for r in Rung
                if r is not Rung.public]
    assert len({r.subject for r in rendered}) == len({r.body for r in rendered}) == 3


def test_domain_models_and_enums_are_accepted_as_they_are() -> None:
    """The workflow may pass its own values: RemedyOption and Money models, StrEnum members."""
    options = [RemedyOption(id="A", kind=RemedyKind.replacement, description="A replacement",
                            value=Money(amount_minor=45_000_000, currency="IDR")),
               RemedyOption(id="B", kind=RemedyKind.service_credit, description="A credit",
                            value=Money(amount_minor=49_500_000, currency="IDR"))]
    body = render("apology", "id", variables("apology", options=options, default_option="A")).body
    assert "A. Barang pengganti, dikirim atas biaya kami: Rp450.000" in body
    assert "B. Saldo layanan di akun Anda: Rp495.000" in body
    ack = render("acknowledgement", "en", variables("acknowledgement", channel=Channel.email)).body
    assert "Thank you for your email" in ack


def test_an_unknown_remedy_kind_falls_back_to_its_description() -> None:
    options = [{**OPTIONS[0], "kind": "gift", "description": "A gift hamper"}, OPTIONS[1]]
    body = render("apology", "en", variables("apology", options=options)).body
    assert "A. A gift hamper: IDR540,000" in body


# -- what cannot be worded is refused, by name -----------------------------------------------------------------


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_a_variable_left_out_is_an_error_naming_it(template: str) -> None:
    for name in sorted(TEMPLATES[template]):
        given = variables(template)
        del given[name]
        with pytest.raises(RenderError, match=rf"\b{name}\b"):
            render(template, "id", given)


def test_a_variable_left_out_of_an_option_is_an_error_naming_it() -> None:
    options = [{k: v for k, v in OPTIONS[0].items() if k != "value"}, OPTIONS[1]]
    with pytest.raises(RenderError, match="value"):
        render("apology", "en", variables("apology", options=options))


def test_an_unknown_template_or_language_is_a_clear_error() -> None:
    with pytest.raises(RenderError, match=r"unknown template 'welcome'.*acknowledgement"):
        render("welcome", "id", COMMON)
    with pytest.raises(RenderError, match=r"unknown language 'fr'.*\ben\b"):
        render("apology", "fr", variables("apology"))
    with pytest.raises(RenderError, match="unknown language"):
        render("apology", "../id", variables("apology"))
    with pytest.raises(RenderError, match="unknown language"):
        render("apology", "id-ID", variables("apology"))  # a tag goes through language_for first


@pytest.mark.parametrize("language", languages())
def test_values_a_template_cannot_word_are_refused(language: str) -> None:
    with pytest.raises(RenderError, match="default option Z"):
        render("apology", language, variables("apology", default_option="Z"))
    with pytest.raises(RenderError, match="maybe"):
        render("explanation", language, variables("explanation", default_option="maybe"))
    with pytest.raises(RenderError, match="letter"):
        render("move_request", language, variables("move_request", to_rung="letter"))
    with pytest.raises(RenderError, match="fax"):
        render("acknowledgement", language, variables("acknowledgement", channel="fax"))
    with pytest.raises(RenderError, match="aware"):
        render("follow_up", language, variables("follow_up", answer_by=datetime(2026, 12, 28, 17, 0)))  # noqa: DTZ001
    with pytest.raises(RenderError, match="amount_minor"):
        bad = [{**OPTIONS[0], "value": {"amount_minor": "540000", "currency": "IDR"}}, OPTIONS[1]]
        render("apology", language, variables("apology", options=bad))


@pytest.mark.parametrize(("requested", "default", "expected"), [
    ("id-ID", "en", "id"), ("id", "en", "id"), ("ID", "en", "id"), ("id_ID", "en", "id"),
    ("EN", "id", "en"), ("en-GB", "id", "en"), ("en-Latn-US", "id", "en"),
    ("fr", "id", "id"), ("fr-FR", "en", "en"), (None, "id", "id"), ("", "id", "id"), ("  ", "en", "en"),
    ("fr", "de", "en"), (None, "xx", "en"), ("fr", "ID-id", "id"),
])
def test_language_for(requested: str | None, default: str, expected: str) -> None:
    assert language_for(requested, default) == expected


# -- dates and money, as the language writes them ----------------------------------------------------------------


def test_dates_are_written_in_the_language_and_in_their_own_zone() -> None:
    ind, eng = tpl._formats("id"), tpl._formats("en")
    assert ind.date(RESPOND_BY) == "Senin, 7 Desember 2026"
    assert eng.date(RESPOND_BY) == "Monday 7 December 2026"
    assert ind.datetime(EXPIRES_AT) == "Senin, 21 Desember 2026 pukul 23.59 WIB"
    assert eng.datetime(EXPIRES_AT).startswith("Monday 21 December 2026 at 23:59")
    # 23:30 UTC on the 6th is the 7th in Jakarta: the date is the one the moment's own zone reads.
    late = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    assert ind.date(late.astimezone(JAKARTA)) == "Senin, 7 Desember 2026"
    assert ind.date(late) == "Minggu, 6 Desember 2026"
    assert ind.date(datetime(2026, 12, 7, 9, 0, tzinfo=timezone(timedelta(hours=7)))) == "Senin, 7 Desember 2026"
    assert ind.date("2026-12-07T09:00:00+07:00") == "Senin, 7 Desember 2026"  # as JSON carries it
    body = render("follow_up", "id", variables("follow_up")).body
    assert "Desember" in body and "December" not in body


@pytest.mark.parametrize(("language", "money", "expected"), [
    ("id", {"amount_minor": 45_000_000, "currency": "IDR"}, "Rp450.000"),  # IDR 450,000.00: the domain's units
    ("id", {"amount_minor": 45_000_050, "currency": "IDR"}, "Rp450.000,50"),  # sen are never rounded away
    ("en", {"amount_minor": 45_000_000, "currency": "IDR"}, "IDR450,000"),
    ("en", {"amount_minor": 2_550, "currency": "GBP"}, "£25.50"),
    ("en", {"amount_minor": 3_000, "currency": "USD"}, "US$30.00"),
    ("id", {"amount_minor": 3_000, "currency": "USD"}, "US$30,00"),
    ("en", {"amount_minor": 4_500, "currency": "JPY"}, "JP¥4,500"),  # no minor units
    ("id", {"amount_minor": 75_000_000, "currency": "VND"}, "₫75.000.000"),
    ("id", Money(amount_minor=45_000_000, currency="IDR"), "Rp450.000"),
])
def test_money_is_written_in_the_language(language: str, money: Any, expected: str) -> None:
    assert tpl._formats(language).money(money).replace("\xa0", " ") == expected


def test_money_means_what_the_domain_means() -> None:
    """amount_minor is in the domain's minor units (Money's own str), whatever digits Babel shows."""
    for currency, amount in [("IDR", 45_000_000), ("JPY", 4_500), ("USD", 3_000), ("VND", 75_000_000)]:
        money = Money(amount_minor=amount, currency=currency)
        domain_digits = re.sub(r"[^0-9]", "", str(money).split(".")[0])
        assert re.sub(r"[^0-9]", "", tpl._formats("en").money(money).split(".")[0]) == domain_digits


# -- shipped with the code ---------------------------------------------------------------------------------------


def test_every_template_file_is_declared_package_data() -> None:
    """The Docker image installs the project (not the source tree): what pyproject does not declare is not there."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text("utf-8"))
    setuptools = pyproject["tool"]["setuptools"]
    assert "activities" in setuptools["packages"]
    globs = setuptools["package-data"]["activities"]
    package = tpl.MESSAGES.parent
    files = [PurePosixPath(p.relative_to(package).as_posix()) for p in tpl.MESSAGES.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert any(file.match(glob) for glob in globs), f"{file} is not in [tool.setuptools.package-data]"
