"""Each kind of alert email, as received by a loopback SMTP server, rendered by headless
Chromium (Debian's package, driven by Playwright) on a phone-sized screen (390 x 844 CSS px):
no horizontal scroll, the remedy (or what to check, or how it resolved) on the first screen,
readable in dark mode, and still without horizontal scroll when a client strips the CSS.
Screenshots go to tests/artifacts/ (git-ignored)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.render.email import COLOURS
from tests.alert_gallery import gallery
from tests.helpers import SmtpServer, free_port, require_system_part
from tests.test_dashboard_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

PHONE = {"width": 390, "height": 844}
KINDS = ["warning", "critical", "resolved", "stale", "refused", "past_liquidation"]
FIRST_WORDS = {
    "warning": "add ",
    "critical": "add ",
    "resolved": "at risk from ",
    "stale": "the figures below are the last known ones",
    "refused": "create a read-only key",
    "past_liquidation": "add ",
}


@pytest.fixture(scope="module")
def emails(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The HTML part of each kind of email, as the SMTP server received it."""
    server = SmtpServer(free_port())
    server.start()
    try:
        made = gallery(tmp_path_factory.mktemp("gallery"), server.port)
        received = {m["Message-ID"]: m for m in server.inbox.messages}
    finally:
        server.stop()
    return {kind: received[n.message_id].get_body(("html",)).get_content() for kind, n in made.items()}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_system_part(None if CHROMIUM.exists() else f"{CHROMIUM} not found", "Chromium", "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser: Any, html: str, dark: bool = False) -> Any:
    page = browser.new_page(viewport=PHONE, color_scheme="dark" if dark else "light")
    page.set_content(html, wait_until="load")
    return page


def _no_horizontal_scroll(page: Any) -> None:
    width, client = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert client == PHONE["width"] and width <= client, f"scrolls sideways: {width} > {client}"


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", css)[:3])


def _luminance(rgb: tuple[int, ...]) -> float:
    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_of_email_reads_on_a_phone(browser: Any, emails: dict[str, str], kind: str) -> None:
    html = emails[kind]
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<meta charset="utf-8">' in html
    page = _open(browser, html)
    try:
        _no_horizontal_scroll(page)
        remedy = page.locator("#remedy")
        box = remedy.bounding_box()
        assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        assert FIRST_WORDS[kind] in remedy.inner_text()
        banner = page.locator("#banner")
        headline = banner.inner_text().split(" · ")[0]
        assert _rgb(banner.evaluate("e => getComputedStyle(e).backgroundColor")) == _rgb(
            "rgb({}, {}, {})".format(*(int(COLOURS[headline][i : i + 2], 16) for i in (1, 3, 5)))
        )
        size = float(page.locator("#lead").evaluate("e => getComputedStyle(e).fontSize").removesuffix("px"))
        assert size >= 16  # readable without zooming
        assert page.locator("#as-of").inner_text().startswith("as of 13:")
        page.screenshot(path=str(ARTIFACTS / f"alert-{kind}-390.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.parametrize("kind", ["critical", "stale"])
def test_dark_mode_keeps_every_text_readable(browser: Any, emails: dict[str, str], kind: str) -> None:
    page = _open(browser, emails[kind], dark=True)
    try:
        # the canvas behind a transparent body: Chromium's dark scheme paints it #121212
        body = page.evaluate("getComputedStyle(document.body).backgroundColor")
        background = (18, 18, 18) if body == "rgba(0, 0, 0, 0)" else _rgb(body)
        for selector in ("#lead", "#remedy li", "#as-of"):
            colour = _rgb(page.locator(selector).first.evaluate("e => getComputedStyle(e).color"))
            assert _contrast(colour, background) >= 4.5, (selector, colour, background)
        banner = page.locator("#banner font")
        banner_bg = _rgb(page.locator("#banner").evaluate("e => getComputedStyle(e).backgroundColor"))
        assert _contrast(_rgb(banner.evaluate("e => getComputedStyle(e).color")), banner_bg) >= 4.5
        page.screenshot(path=str(ARTIFACTS / f"alert-{kind}-390-dark.png"), full_page=True)
    finally:
        page.close()


@pytest.mark.parametrize("kind", KINDS)
def test_without_css_the_email_still_fits_and_says_its_level(browser: Any, emails: dict[str, str], kind: str) -> None:
    """Some clients strip <style> and style attributes: the level is a word, the layout
    one column, long words breakable."""
    stripped = re.sub(r"<style.*?</style>", "", emails[kind], flags=re.DOTALL)
    stripped = re.sub(r'\sstyle="[^"]*"', "", stripped)
    page = _open(browser, stripped)
    try:
        _no_horizontal_scroll(page)
        text = page.locator("body").inner_text()
        assert text.split(" · ")[0].strip() in COLOURS and FIRST_WORDS[kind] in text
    finally:
        page.close()


def test_a_long_unbroken_error_does_not_widen_the_email(browser: Any, tmp_path: Path, smtp_server: SmtpServer) -> None:
    from tests.alert_gallery import Desk, config, document

    desk = Desk(tmp_path, config(smtp_server.port))
    desk.poll(document(3.0))
    token = "x" * 150
    desk.fail(f"exchange error: {token}", minutes=1)
    assert desk.fail(f"exchange error: {token}", minutes=4) is not None
    desk.deliver()
    (message,) = smtp_server.inbox.messages
    html = message.get_body(("html",)).get_content()
    for css in (True, False):
        body = html if css else re.sub(r'\sstyle="[^"]*"|<style.*?</style>', "", html, flags=re.DOTALL)
        page = _open(browser, body)
        try:
            _no_horizontal_scroll(page)
        finally:
            page.close()
