"""The customer's page, driven in a real browser (Playwright with Debian's chromium, /usr/bin/chromium, which
.ci/run installs with apt): the customer opens the link in the email we sent, reads what we said, chooses a
remedy, stays or leaves, and rates the outcome, in Indonesian and in English; each answer is the workflow
update an operator would send, recorded as the customer. A tampered, expired or reused link, a form from
another site or without its token, an oversized or wrongly typed body: each shows a clear page and records
nothing. A screenshot of every page is saved under out/customer-page/ for review."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from customer import links
from domain.principals import RecordedActor
from tests.customer.conftest import OUT, CustomerSide, Data
from tests.principals import GATEWAY
from tests.workflows.test_paths import invalid, valid
from workflows.complaint import ComplaintWorkflow

CHROMIUM = "/usr/bin/chromium"
#: As the machine's own check starts it: headless, and nothing reaching out to the network by itself.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
LINK = re.compile(r"https?://\S+/r/[A-Za-z0-9_.-]+")
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 1, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def phone(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A phone-sized browser with no cookies, no JavaScript (the page must work without it)."""
    context = await browser.new_context(**PHONE, java_script_enabled=False, locale="en-GB")
    try:
        yield context
    finally:
        await context.close()


def link_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = LINK.search(str(body.get_content()))
    assert found, "the message links to the page"
    return found.group(0)


async def shot(page: Page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


async def answered_as_customer(side: CustomerSide, cid: str, event: str, customer_id: str) -> dict[str, Any]:
    [record] = [r for r in await side.drive.store.read(cid) if r.type == event]
    actor = RecordedActor.parse(record.actor)
    assert actor.name == f"customer:{customer_id}" and actor.issuer == GATEWAY.issuer
    assert actor.on_behalf_of is None  # the customer's own decision, not recorded for them by staff
    return record.payload


WORDS = {
    "id": {"apology": "Permohonan maaf kami", "done": "Terima kasih", "used": "Tautan ini sudah digunakan",
           "rating": "Apakah masalah Anda sudah terselesaikan?", "option": "Tentang keluhan Anda"},
    "en": {"apology": "Our apology, and a choice for you", "done": "Thank you", "used": "already been used",
           "rating": "Did we put it right?", "option": "About your complaint"},
}


@pytest.mark.parametrize("language", ["id", "en"])
async def test_the_customer_chooses_a_remedy_then_rates_the_outcome_on_the_page(
        customer_side: CustomerSide, phone: BrowserContext, intake_data: Data, language: str) -> None:
    side = customer_side
    data = intake_data("unanswered-letter.json", language=language)
    cid = await side.drive.submit(data)
    await side.drive.send(cid, ComplaintWorkflow.assess, **valid(remedies=["voucher", "refund"]))
    url = link_in(await side.received(cid, "apology"))
    page = await phone.new_page()

    opened = await page.goto(url)
    assert opened is not None and opened.status == 200
    assert await page.get_attribute("html", "lang") == language
    assert WORDS[language]["apology"] in await page.inner_text("h1")
    # The options with their values, as the language writes them.
    assert ("Rp450.000" if language == "id" else "IDR450,000") in await page.inner_text("form")
    await shot(page, f"remedy-{language}")
    before = len(await side.drive.store.read(cid))
    await page.get_by_label(re.compile(r"^B\.")).check()  # labelled: the option is chosen by its words
    await page.get_by_role("button").click()
    assert WORDS[language]["done"] in await page.inner_text("h1")
    await shot(page, f"remedy-{language}-done")
    state = await side.drive.wait(cid, lambda s: s.remedy_option == "B")
    assert len(await side.drive.store.read(cid)) > before
    chosen = await answered_as_customer(side, cid, "RemedyChosen", data["customer"]["id"])
    assert chosen["option_id"] == "B"

    # The same link again: spent. A clear page, and nothing recorded.
    sequence = (await side.drive.state(cid)).head.sequence
    again = await page.goto(url)
    assert again is not None and again.status == 409
    assert WORDS[language]["used"] in await page.inner_text("h1")
    await shot(page, f"remedy-{language}-used")
    assert await page.locator("form").count() == 0

    # The follow-up arrives (asked at once here) and links to the rating page.
    rating_url = link_in(await side.received(cid, "follow_up"))
    assert rating_url != url
    await page.goto(rating_url)
    assert WORDS[language]["rating"] in await page.inner_text("h1")
    await shot(page, f"rating-{language}")
    await page.get_by_label(re.compile("^4")).check()
    await page.get_by_label(re.compile("omment|omentar")).fill("Voucher sudah masuk. / The voucher arrived.")
    await page.get_by_role("button").click()
    assert WORDS[language]["done"] in await page.inner_text("h1")
    await shot(page, f"rating-{language}-done")
    state = await side.drive.wait(cid, lambda s: not s.is_open)
    assert state.satisfaction == 4 and state.head.sequence > sequence
    rated = await answered_as_customer(side, cid, "FollowUpRecorded", data["customer"]["id"])
    assert rated["satisfaction"] == 4 and rated["comment"].startswith("sealed:")
    await side.drive.witnesses_agree(cid)
    await side.drive.save_history(cid, f"page_remedy_and_rating_{language}")


@pytest.mark.parametrize(("language", "choice"), [("en", "leave"), ("id", "stay")])
async def test_the_customer_stays_or_leaves_on_the_page_after_the_rules_are_explained(
        customer_side: CustomerSide, phone: BrowserContext, intake_data: Data, language: str, choice: str) -> None:
    side = customer_side
    data = intake_data("unanswered-letter.json", language=language)
    cid = await side.drive.submit(data)
    await side.drive.send(cid, ComplaintWorkflow.assess, **invalid())
    url = link_in(await side.received(cid, "explanation"))
    page = await phone.new_page()
    await page.goto(url)
    assert WORDS[language]["option"] in await page.inner_text("h1")
    assert "SOP 6.1" in await page.inner_text("main")  # the rules we explained, as we wrote them
    await shot(page, f"option-{language}")
    await page.locator(f"#choice-{choice}").check()
    await page.get_by_role("button").click()
    assert WORDS[language]["done"] in await page.inner_text("h1")
    await shot(page, f"option-{language}-done")
    state = await side.drive.wait(cid, lambda s: s.choice is not None)
    assert state.choice is not None and state.choice.value == choice
    await answered_as_customer(side, cid, "OptionChosen", data["customer"]["id"])
    if state.is_open:
        await side.drive.send(cid, ComplaintWorkflow.withdraw)
    await side.drive.save_history(cid, f"page_option_{choice}")


async def test_a_tampered_expired_or_cross_site_answer_shows_a_clear_page_and_records_nothing(
        customer_side: CustomerSide, browser: Browser, intake_data: Data) -> None:
    side = customer_side
    cid = await side.drive.submit(intake_data("unanswered-letter.json"))
    await side.drive.send(cid, ComplaintWorkflow.assess, **valid())
    url = link_in(await side.received(cid, "apology"))
    token = url.rsplit("/", 1)[1]
    real = links.verify(token, side.link_key, now=datetime.now(UTC))
    before = len(await side.drive.store.read(cid))
    context = await browser.new_context(**PHONE, java_script_enabled=False, locale="id-ID")
    page = await context.new_page()
    try:
        # Tampered: one character of the signed payload changed. Shown in the browser's language.
        payload, mac = token.split(".")
        tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
        response = await page.goto(f"{side.page_url}/r/{tampered}")
        assert response is not None and response.status == 400
        assert "Tautan ini tidak dapat digunakan" in await page.inner_text("h1")
        await shot(page, "link-tampered")
        # Expired: signed with the right key, but its time is past.
        expired = links.PageLink(cid, "remedy", real.ref, datetime.now(UTC) - timedelta(minutes=1)).sign(side.link_key)
        response = await page.goto(f"{side.page_url}/r/{expired}")
        assert response is not None and response.status == 410
        assert "kedaluwarsa" in await page.inner_text("h1")
        await shot(page, "link-expired")
        # Another purpose or another offer for the same complaint: a link cannot be turned into another.
        for other in (links.PageLink(cid, "rating", real.ref, real.expires),
                      links.PageLink(cid, "remedy", real.ref - 1, real.expires)):
            response = await page.goto(f"{side.page_url}/r/{other.sign(side.link_key)}")
            assert response is not None and response.status == 409

        # The real link's form, sent without the page's token, from another site, oversized, or not a form.
        await page.goto(url)
        csrf = await page.locator("input[name=csrf]").get_attribute("value")
        assert csrf
        form = {"option": "A", "csrf": csrf}
        cases = [
            ("no token", {"option": "A"}, {}, 403),
            ("forged token", {"option": "A", "csrf": csrf[:-2] + "xx"}, {}, 403),
            ("another site", form, {"Origin": "https://evil.example"}, 403),
            ("oversized", {**form, "comment": "x" * 20_000}, {}, 413),
        ]
        for why, fields, headers, status in cases:
            answer = await page.request.post(url, form=fields, headers=headers, max_redirects=0)
            assert answer.status == status, why
        as_json = await page.request.post(url, data='{"option": "A"}', headers={"Content-Type": "application/json"})
        assert as_json.status == 415
        # Without the cookie the page set (another browser): refused too.
        stranger = await browser.new_context()
        try:
            answer = await stranger.request.post(url, form=form)
            assert answer.status == 403
        finally:
            await stranger.close()
        # An option that was never offered: the form again, saying what is wrong.
        answer = await page.request.post(url, form={**form, "option": "Z"})
        assert answer.status == 400 and 'role="alert"' in await answer.text()
        assert len(await side.drive.store.read(cid)) == before  # nothing of all that was recorded
        # The same form, as the page sent it, is accepted.
        answer = await page.request.post(url, form=form)
        assert answer.status == 200
        state = await side.drive.wait(cid, lambda s: s.remedy_option == "A")
        assert state.remedy_option == "A"
    finally:
        await context.close()
    headers = (await (await browser.new_context()).request.get(url)).headers
    assert headers["referrer-policy"] == "same-origin" and "frame-ancestors 'none'" in headers[
        "content-security-policy"] and headers["cache-control"] == "no-store"
