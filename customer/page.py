"""The customer's page: a small ASGI app (Starlette) where a customer, from a link in our message, reads what
we said, chooses a remedy, stays or leaves, or rates the outcome.

- **Links** are signed, expiring and single-purpose (customer/links.py). A link is spent once its offer is
  answered or replaced: its page then says so, and nothing is recorded.
- **Actions** are the workflow updates an operator would send (choose_remedy, choose_option,
  record_follow_up), made as ``customer:<id>`` through the gateway; the workflow's validators decide, as
  for anyone. A form sent twice is one update (its id comes from the link).
- **Forms** are plain HTML POSTs (no JavaScript), protected against cross-site requests by a double-submit
  token: a random cookie (SameSite=Strict, HttpOnly) and a hidden field holding its HMAC with the link, and
  by the Origin header when the browser sends one. Bodies are bounded (16 kB, url-encoded only).
- **Words** come from ``activities/message_templates/<language>/page.toml``, in the customer's language (the
  conversation's); a page for a link that proves nothing follows the browser's Accept-Language.
- **Headers**: no referrer to other sites (the link is in the URL), no caching, no framing, a CSP allowing
  only the page's own stylesheet.
  The server logs no URL (uvicorn's access log is off): links and words stay out of logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from temporalio.service import RPCError

import starter
from activities import templates
from customer import links
from customer.gateway import Gateway, Story
from domain import commands as cmd
from domain import events as ev
from domain import texts
from domain.decide import ALLOWED
from domain.values import MAX_TEXT_BYTES
from domain.vocabulary import CustomerChoice, Verdict
from eventlog import EventLogUnavailable
from eventlog.connect import CONNECTION_ERRORS
from logs import get_logger

log = get_logger(__name__)

PAGES = Path(__file__).resolve().parent / "page_templates"
CSRF_COOKIE = "complaints_csrf"
MAX_BODY = 16 * 1024
#: What each purpose asks, and the update that answers it.
ACTIONS: dict[links.Purpose, tuple[type[cmd.Command], str]] = {
    "remedy": (cmd.ChooseRemedy, "choose_remedy"),
    "option": (cmd.ChooseOption, "choose_option"),
    "rating": (cmd.RecordFollowUp, "record_follow_up"),
}
_LOG_UNAVAILABLE: tuple[type[BaseException], ...] = (EventLogUnavailable, *CONNECTION_ERRORS)
_TEMPORAL_UNAVAILABLE: tuple[type[BaseException], ...] = (RPCError, *CONNECTION_ERRORS)
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    # The link is in the URL: no other site ever sees it as a referrer. Same-origin requests keep theirs, so
    # the browser names this page as the Origin of its own form (with no-referrer it would send "null").
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


class Refusal(Exception):
    """A page that records nothing: ``kind`` names its words (used, expired, invalid, forbidden, unavailable)."""

    def __init__(self, kind: str, status: int, language: str | None = None) -> None:
        super().__init__(kind)
        self.kind, self.status, self.language = kind, status, language


@dataclass(frozen=True)
class Page:
    """What the page needs: the gateway, the link key, and the clock (a test's may differ)."""

    gateway: Gateway
    link_key: bytes
    secure_cookies: bool = False
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def create_app(page: Page) -> Starlette:
    env = Environment(loader=FileSystemLoader(PAGES, encoding="utf-8"), undefined=StrictUndefined,
                      autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                      lstrip_blocks=True)

    def render(template: str, language: str, status: int = 200, **variables: Any) -> HTMLResponse:
        words = templates.page_words(language)
        formats = templates.formats(language)
        body = env.get_template(template).render(t=words, fmt=formats, language=language, **variables)
        return HTMLResponse(body, status_code=status, headers=_HEADERS)

    def refusal(request: Request, refused: Refusal) -> HTMLResponse:
        language = refused.language or _browser_language(request)
        words = templates.page_words(language)
        return render("message.html.j2", language, refused.status, heading=words[f"{refused.kind}_heading"],
                      text=words[f"{refused.kind}_text"], title=words["title"].format(complaint_id="").strip())

    async def load(token: str) -> tuple[links.PageLink, Story]:
        try:
            link = links.verify(token, page.link_key, now=page.now())
        except links.ForgedLink as forged:
            log.info("page link refused", reason=forged.reason)
            raise Refusal("expired" if forged.reason == "expired" else "invalid",
                          410 if forged.reason == "expired" else 400) from None
        try:
            story = await page.gateway.story(link.complaint_id)
        except _LOG_UNAVAILABLE:
            raise Refusal("unavailable", 503) from None
        if story is None:
            raise Refusal("invalid", 404)
        event, _until = links.offer_of(link.purpose)
        offered = story.offering(event)
        command, _update = ACTIONS[link.purpose]
        answered = link.purpose == "option" and story.state.choice is not None
        if (offered is None or offered.sequence != link.ref or story.state.stage not in ALLOWED[command]
                or answered):
            log.info("page link spent", complaint_id=link.complaint_id, purpose=link.purpose)
            raise Refusal("used", 409, story.language)
        return link, story

    def form(request: Request, token: str, link: links.PageLink, story: Story, status: int = 200,
             error: str | None = None, cookie: str | None = None) -> HTMLResponse:
        language = templates.language_for(story.language, "en")
        cookie = cookie or request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
        variables = _view(link, story)
        response = render(f"{link.purpose}.html.j2", language, status, token=token,
                          csrf=_csrf(page.link_key, cookie, token), error=error,
                          title=templates.page_words(language)["title"].format(complaint_id=story.state.complaint_id),
                          **variables)
        response.set_cookie(CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=page.secure_cookies,
                            path="/r/")
        return response

    async def show(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            link, story = await load(token)
        except Refusal as refused:
            return refusal(request, refused)
        return form(request, token, link, story)

    async def answer(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            fields = await _form(request)
            link, story = await load(token)
            language = templates.language_for(story.language, "en")
            cookie = request.cookies.get(CSRF_COOKIE)
            sent = fields.get("csrf", "")
            if (not cookie or not hmac.compare_digest(sent, _csrf(page.link_key, cookie, token))
                    or not _same_origin(request)):
                log.warning("page form refused: cross-site or stale", complaint_id=link.complaint_id)
                raise Refusal("forbidden", 403, story.language)
            words = templates.page_words(language)
            try:
                command = _command(link.purpose, fields, story)
            except _Invalid as invalid:
                return form(request, token, link, story, 400, words[invalid.words])
            _command_type, update = ACTIONS[link.purpose]
            try:
                await page.gateway.act(story, update, command, update_id=f"page-{links.digest(token)}")
            except starter.DecisionRefused as refused:
                log.info("page answer refused by the workflow", complaint_id=link.complaint_id, kind=refused.kind)
                raise Refusal("used", 409, story.language) from None
            except _TEMPORAL_UNAVAILABLE:
                raise Refusal("unavailable", 503, story.language) from None
        except Refusal as refused:
            return refusal(request, refused)
        return render("message.html.j2", language, heading=words["done_heading"], text=words[f"done_{link.purpose}"],
                      title=words["title"].format(complaint_id=story.state.complaint_id))

    async def stylesheet(request: Request) -> Response:
        return Response((PAGES / "page.css").read_bytes(), media_type="text/css",
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def home(request: Request) -> Response:
        return refusal(request, Refusal("invalid", 404))

    return Starlette(routes=[
        Route("/", home),
        Route("/healthz", health),
        Route("/page.css", stylesheet),
        Route("/r/{token}", show, methods=["GET"]),
        Route("/r/{token}", answer, methods=["POST"]),
    ])


class _Invalid(Exception):
    def __init__(self, words: str) -> None:
        super().__init__(words)
        self.words = words


def _command(purpose: links.Purpose, fields: dict[str, str], story: Story) -> cmd.Command:
    """The update's argument from the form, or _Invalid naming the words that say what is missing."""
    comment = fields.get("comment", "").strip() or None
    if comment is not None and len(comment.encode()) > MAX_TEXT_BYTES:
        raise _Invalid("too_long")
    try:
        match purpose:
            case "remedy":
                offer = story.state.offer
                option = fields.get("option", "")
                if offer is None or offer.option(option) is None:
                    raise _Invalid("missing_choice")
                return cmd.ChooseRemedy(option_id=option)
            case "option":
                choice = fields.get("choice", "")
                if choice not in CustomerChoice.__members__:
                    raise _Invalid("missing_choice")
                return cmd.ChooseOption(option=CustomerChoice(choice), reason=comment)
            case "rating":
                rating = fields.get("satisfaction", "")
                if rating not in ("1", "2", "3", "4", "5"):
                    raise _Invalid("missing_rating")
                return cmd.RecordFollowUp(satisfaction=int(rating), comment=comment)
    except ValidationError:
        raise _Invalid("too_long") from None
    raise _Invalid("missing_choice")


def _view(link: links.PageLink, story: Story) -> dict[str, Any]:
    """What the page shows for ``link``: the customer's name, what we said, and what they can choose."""
    received = story.events[0]
    assert isinstance(received, ev.ComplaintReceived)
    common: dict[str, Any] = {"name": received.customer_name, "subject_title": received.subject_title,
                              "complaint_id": story.state.complaint_id}
    offered = story.offering(links.offer_of(link.purpose)[0])
    assert offered is not None
    offer = story.opened(offered)
    zone = story.state.local_zone
    match offer:
        case ev.RemedyOffered():
            apology = _last(story, ev.ApologyIssued)
            said = texts.own_apology(apology.text, received.subject_title) if apology else None
            # Partially valid: the part where the agreement was followed is explained on the same page.
            explained, assessed = _last(story, ev.ExplanationGiven), _last(story, ev.ComplaintAssessed)
            partly = explained is not None and story.state.verdict is Verdict.partially_valid
            return {**common, "said": said, "options": offer.options,
                    "rules": explained.sop_reference if partly and explained else None,
                    "clause": assessed.clause if partly and assessed else None,
                    "default_option": offer.default_option, "expires": offer.expires_at.astimezone(zone)}
        case ev.OptionsOffered():
            explained, assessed = _last(story, ev.ExplanationGiven), _last(story, ev.ComplaintAssessed)
            said = texts.own_explanation(explained.text, explained.sop_reference,
                                         assessed.clause if assessed else None) if explained else None
            return {**common, "said": said, "choices": offer.options, "rules": explained.sop_reference if explained
                    else None, "clause": assessed.clause if assessed else None,
                    "default_option": offer.default_option.value, "expires": offer.expires_at.astimezone(zone)}
        case ev.FollowUpScheduled():
            return {**common, "answer_by": offer.answer_by.astimezone(zone)}
    raise AssertionError(f"no page for {type(offer).__name__}")


E = TypeVar("E", bound=ev.Event)


def _last(story: Story, kind: type[E]) -> E | None:
    return next((e for e in reversed(story.events) if isinstance(e, kind)), None)


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form, at most MAX_BODY bytes; one value per field (the first)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise Refusal("forbidden", 415)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise Refusal("forbidden", 413)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refusal("forbidden", 413)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise Refusal("forbidden", 400) from None
    return {name: values[0] for name, values in parsed.items()}


def _csrf(key: bytes, cookie: str, token: str) -> str:
    digest = hmac.new(key, f"complaints-page-csrf\x00{cookie}\x00{token}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _same_origin(request: Request) -> bool:
    """A browser's Origin (when sent) must be this page's own: the host the request was made to."""
    origin = request.headers.get("origin")
    if origin is None:
        return True  # the double-submit token still holds; some browsers send no Origin on same-origin POSTs
    parts = urlsplit(origin)
    return parts.netloc.lower() == request.headers.get("host", "").lower() and parts.scheme in ("http", "https")


def _browser_language(request: Request) -> str:
    """The first of the browser's Accept-Language the page speaks, else English."""
    spoken = set(templates.languages())
    for item in request.headers.get("accept-language", "").split(","):
        primary = item.split(";")[0].strip().split("-")[0].lower()
        if primary in spoken:
            return primary
    return "en"
