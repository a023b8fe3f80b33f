"""Every message to a customer, in the customer's language, from template files.

Where the templates live: ``activities/message_templates/<language>/<template>.txt.j2``, inside the
``activities`` package (resolved from this file, not from the working directory), and declared as package
data in pyproject.toml (``[tool.setuptools.package-data]``), so they are there in a clean clone, in an editable
or a wheel install, and in the Docker image (which copies ``activities/`` and installs the project).

A language is a folder named by its primary BCP 47 subtag (``id``, ``en``), holding one file per template in
TEMPLATES and, optionally, ``language.toml``: the Babel locale that formats its dates and amounts, and its
date patterns (CLDR), e.g.::

    locale = "id_ID"
    date = "EEEE, d MMMM y"                    # Senin, 7 Desember 2026
    datetime = "EEEE, d MMMM y 'pukul' HH.mm z"  # Senin, 7 Desember 2026 pukul 14.30 WIB

Without it, the folder name is the locale and Babel's own "full" formats are used. Adding a language is
adding a folder: no code changes (tests/unit/test_templates.py checks that it is complete).

A template file is plain text (Jinja2, no HTML escaping, undefined variables are errors): its first line is
``Subject: ...``, then a blank line, then the body. Subject and body are rendered separately, so a variable
with a line break cannot spill into the subject; the subject is then folded to one line, and the body's
blank-line runs left by conditional blocks are folded to one blank line.

A template may refuse variables it cannot word with ``{{ fail("why") }}`` (a RenderError).

Filters, each in the template's language: ``date`` and ``datetime`` (an aware datetime, written in its own
time zone; an ISO 8601 string with an offset is accepted too) and ``money`` (a mapping or object with
``amount_minor`` and ``currency``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, TemplateSyntaxError
from jinja2.exceptions import UndefinedError
from pydantic import BaseModel, ConfigDict

from domain.values import _ZERO_DECIMAL  # what `amount_minor` counts in: the domain's rule, one place

#: The folder of languages, each a folder of templates.
MESSAGES = Path(__file__).resolve().parent / "message_templates"
SUFFIX = ".txt.j2"
SETTINGS = "language.toml"
FALLBACK = "en"

#: Every message gets these.
COMMON = frozenset({"customer_name", "complaint_id", "subject_title", "page_url"})

#: Template name -> the variables it requires.
TEMPLATES: dict[str, frozenset[str]] = {
    "acknowledgement": COMMON | {"channel", "respond_by"},
    "move_request": COMMON | {"to_rung"},
    "apology": COMMON | {"apology_text", "options", "default_option", "expires_at", "explanation"},
    "explanation": COMMON | {"sop_reference", "clause", "explanation_text", "default_option", "expires_at"},
    "follow_up": COMMON | {"answer_by"},
    "extension_notice": COMMON | {"notice", "due_at"},
}

_SUBJECT = re.compile(r"Subject:[ \t]*")
_BLANK_RUNS = re.compile(r"\n{3,}")


class RenderError(ValueError):
    """A message that cannot be written: an unknown template or language, a variable missing or of the wrong
    kind, or a template file that is not laid out as ``Subject: ...``, a blank line, the body."""


class Rendered(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    template: str
    #: The language actually used (a folder that exists).
    language: str
    subject: str
    #: Plain text, ready for an email body.
    body: str


@cache
def _languages() -> tuple[str, ...]:
    if not MESSAGES.is_dir():
        return ()
    return tuple(sorted(p.name for p in MESSAGES.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))))


def languages() -> list[str]:
    """The languages with templates: the folders under message_templates/."""
    return list(_languages())


def _primary(tag: str | None) -> str:
    """The primary subtag of a BCP 47 tag ("en-GB" -> "en"), lower-cased; "" if there is none."""
    return re.split(r"[-_]", (tag or "").strip(), maxsplit=1)[0].lower()


def language_for(requested: str | None, default: str) -> str:
    """The supported language a BCP 47 tag names ("id-ID" -> "id", "EN" -> "en"), else ``default`` if it is
    supported, else "en"."""
    supported = _languages()
    for candidate in (_primary(requested), _primary(default)):
        if candidate in supported:
            return candidate
    return FALLBACK


# -- formatting in the template's language -------------------------------------------------------------------


@dataclass(frozen=True)
class _Formats:
    locale: Locale
    date_pattern: str
    datetime_pattern: str

    def date(self, moment: Any) -> str:
        return format_date(_aware(moment), self.date_pattern, locale=self.locale)

    def datetime(self, moment: Any) -> str:
        at = _aware(moment)
        return format_datetime(at, self.datetime_pattern, tzinfo=at.tzinfo, locale=self.locale)

    def money(self, money: Any) -> str:
        amount, currency = _field(money, "amount_minor"), _field(money, "currency")
        if not isinstance(amount, int) or isinstance(amount, bool) or not isinstance(currency, str):
            raise RenderError(f"money needs an integer amount_minor and a currency code, not {money!r}")
        currency = str(currency)  # a StrEnum or str subclass: Babel wants the plain code
        # amount_minor counts the currency's ISO 4217 minor units as the domain does (IDR 450,000.00 is
        # 45_000_000); Babel then writes it with the digits people use (Rp450.000), unless that would hide sen.
        major = Decimal(amount).scaleb(-(0 if currency in _ZERO_DECIMAL else 2))
        shown = get_currency_precision(currency)
        exact = major == major.quantize(Decimal(1).scaleb(-shown))
        return format_currency(major, currency, locale=self.locale, currency_digits=exact)


def _field(value: Any, name: str) -> Any:
    if isinstance(value, Mapping):
        if name not in value:
            raise RenderError(f"money has no {name!r}: {value!r}")
        return value[name]
    if not hasattr(value, name):
        raise RenderError(f"money has no {name!r}: {value!r}")
    return getattr(value, name)


def _aware(moment: Any) -> datetime:
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError as e:
            raise RenderError(f"not an ISO 8601 date and time: {moment!r}") from e
    if not isinstance(moment, datetime):
        raise RenderError(f"a date filter needs a datetime, not {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RenderError(f"a date filter needs an aware datetime (it is written in its own zone): {moment!r}")
    return moment


@cache
def _formats(language: str) -> _Formats:
    path = MESSAGES / language / SETTINGS
    settings: dict[str, Any] = tomllib.loads(path.read_text("utf-8")) if path.is_file() else {}
    try:
        locale = Locale.parse(settings.get("locale", language))
    except (UnknownLocaleError, ValueError) as e:
        raise RenderError(f"language {language!r}: no Babel locale {settings.get('locale', language)!r}") from e
    date_pattern = settings.get("date") or locale.date_formats["full"].pattern
    datetime_pattern = settings.get("datetime") or f"{date_pattern} {locale.time_formats['short'].pattern} z"
    return _Formats(locale, date_pattern, datetime_pattern)


def formats(language: str) -> _Formats:
    """How ``language`` writes dates, times and amounts (its ``date``, ``datetime`` and ``money``), as the
    messages do: the customer's page uses the same."""
    return _formats(language)


#: The customer's page's words, one file per language folder (customer/page.py).
PAGE_WORDS = "page.toml"


@cache
def page_words(language: str) -> dict[str, Any]:
    """Every word of the customer's page in ``language`` (``<language>/page.toml``); RenderError if the
    language has none."""
    path = MESSAGES / language / PAGE_WORDS
    if not path.is_file():
        raise RenderError(f"language {language!r} has no {PAGE_WORDS}")
    return tomllib.loads(path.read_text("utf-8"))


# -- templates ----------------------------------------------------------------------------------------------


@cache
def _environment(language: str) -> Environment:
    formats = _formats(language)
    env = Environment(
        loader=FileSystemLoader(MESSAGES / language, encoding="utf-8"),
        undefined=StrictUndefined,
        autoescape=False,  # plain text: an email body, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    filters: dict[str, Callable[[Any], str]] = {
        "date": formats.date, "datetime": formats.datetime, "money": formats.money,
    }
    env.filters.update(filters)
    env.globals["fail"] = _fail
    return env


def _fail(message: str) -> str:
    """``{{ fail("...") }}``: a template's own check on its variables (e.g. the default is one of the options)."""
    raise RenderError(message)


@dataclass(frozen=True)
class _Compiled:
    subject: Any  # jinja2.Template
    body: Any


@cache
def _compiled(template: str, language: str) -> _Compiled:
    env = _environment(language)
    name = template + SUFFIX
    assert env.loader is not None
    try:
        source, filename, _ = env.loader.get_source(env, name)
    except TemplateNotFound as e:
        raise RenderError(f"no template {template!r} in language {language!r} ({MESSAGES / language / name})") from e
    head, sep, rest = source.partition("\n")
    blank, sep2, body = rest.partition("\n")
    subject = _SUBJECT.match(head)
    if subject is None or blank.strip() or not (sep and sep2):
        raise RenderError(f"{filename}: the first line must be 'Subject: ...', then a blank line, then the body")
    try:
        return _Compiled(
            subject=env.from_string(head[subject.end():]),
            # Two newlines keep the body's line numbers the file's in any error; they are stripped after.
            body=env.from_string("\n\n" + body),
        )
    except TemplateSyntaxError as e:
        raise RenderError(f"{filename}, line {e.lineno}: {e.message}") from e


def render(template: str, language: str, variables: Mapping[str, Any]) -> Rendered:
    """Write message ``template`` in ``language`` (a folder that exists: see language_for) with ``variables``
    (those in TEMPLATES[template]; more are ignored). A missing variable, an unknown template or language is a
    RenderError naming it."""
    if template not in TEMPLATES:
        raise RenderError(f"unknown template {template!r}: the templates are {', '.join(sorted(TEMPLATES))}")
    if language not in _languages():
        raise RenderError(f"unknown language {language!r}: the languages are {', '.join(_languages())}")
    missing = TEMPLATES[template] - variables.keys()
    if missing:
        raise RenderError(f"template {template!r} is missing variable(s): {', '.join(sorted(missing))}")
    compiled = _compiled(template, language)
    context = dict(variables)
    try:
        subject = compiled.subject.render(context)
        body = compiled.body.render(context)
    except UndefinedError as e:  # a variable a template uses that is not declared, or a missing key of one
        raise RenderError(f"template {template!r} ({language}): {e.message}") from e
    return Rendered(template=template, language=language, subject=" ".join(subject.split()), body=_tidy(body))


def _tidy(body: str) -> str:
    lines = "\n".join(line.rstrip() for line in body.replace("\r\n", "\n").split("\n"))
    return _BLANK_RUNS.sub("\n\n", lines).strip("\n") + "\n"
