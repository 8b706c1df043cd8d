"""The maintainer's report page (/admin) in a real browser against the running stack, over a
history asked through the real chat path. The page must make no request off its own origin.

Screenshots land in test-artifacts/ (gitignored); docs/images/admin-report.png is one of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import Page, Request, expect

from tests.conftest import ROOT, throwaway_postgres
from tests.stack import Stack

pytestmark = pytest.mark.e2e

TOKEN = "e2e-admin-token-0123456789"
ARTIFACTS = ROOT / "test-artifacts"
SITE = "https://lumen.example.org/lumen/manual"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own, so the page's counts are this test's history only. Made
    in a thread: Playwright's sync API keeps an event loop running in this one."""
    database = throwaway_postgres("bookchat_admin_page")
    with ThreadPoolExecutor(1) as thread:
        url = thread.submit(database.__enter__).result()
        try:
            yield url
        finally:
            thread.submit(database.__exit__, None, None, None).result()


def ask(stack: Stack, question: str, **body: Any) -> dict[str, Any]:
    accepted = stack.chat(question, **body)
    job = stack.wait(accepted["status_url"])
    assert job["status"] == "succeeded", (job, stack.log())
    return {**accepted, **job["result"]}


def test_admin_page_draws_the_report(
    make_stack: Callable[..., Stack],
    new_page: Callable[..., Page],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOOKCHAT_ADMIN_TOKEN", TOKEN)
    stack = make_stack(BOOKCHAT_ADMIN_TOKEN=TOKEN)
    home = ask(stack, "How do I send the arm to its home pose?", page_url=f"{SITE}/first-move")
    ask(stack, "What are the soft limits?", page_url=f"{SITE}/safety")
    ask(stack, "What does the enterprise plan cost per seat?", page_url=f"{SITE}/")
    ask(stack, "How much is the enterprise plan per seat per year?", page_url=f"{SITE}/")
    ask(stack, "What does this mean?", selection="Soft limits stop the arm before the end stop.")
    rated = stack.http.post(
        f"/v1/messages/{home['message_id']}/feedback",
        json={"rating": "down", "comment": "Which pose is <b>home</b>?"},
        headers={"X-Session-Token": home["session_token"]},
    )
    assert rated.status_code == 201

    page = new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(stack.base_url + "/admin")
    expect(page.locator("#status")).to_contain_text("admin token")

    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#status")).to_contain_text("admin token is required")
    expect(page.locator("#report")).to_be_hidden()

    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_label("Period").select_option("7d")
    with page.expect_response(lambda r: "/v1/admin/report" in r.url) as response:
        page.get_by_role("button", name="Show report").click()
    assert response.value.status == 200
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#status")).to_contain_text("all sites")

    cards = page.locator("#cards .card")
    expect(cards.first).to_contain_text("5")
    expect(cards.nth(1)).to_contain_text("40.0 %")  # 2 of 5 declined
    # The charts: one day with answered and declined bars; the most cited pages as bars.
    expect(page.locator("#chart-days svg rect")).to_have_count(2)
    expect(page.locator("#chart-pages svg rect").first).to_be_visible()
    expect(page.locator("#chart-feedback svg rect")).to_have_count(1)

    gaps = page.locator("#gaps-rows tr")
    expect(gaps.first).to_contain_text("enterprise plan")
    expect(gaps.first.locator("td").nth(1).locator("li")).to_have_count(2)  # both questions
    expect(gaps.first.locator("td").nth(2).locator("li").first).to_be_visible()  # nearest pages
    assert (gaps.first.locator("a").first.get_attribute("href") or "").startswith(SITE)

    down = page.locator("#down-rows tr")
    expect(down).to_have_count(1)
    # Reader input is shown as text, never as markup.
    expect(down.locator("blockquote")).to_have_text("Which pose is <b>home</b>?")
    expect(down.locator("b")).to_have_count(0)
    expect(page.locator("#selection-rows")).to_contain_text("Soft limits stop the arm")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-report.png"), full_page=True)

    # The token is remembered for this tab only: a reload shows the report again.
    page.reload()
    expect(page.locator("#report")).to_be_visible()
    off_origin = [url for url in requests if not url.startswith(stack.base_url)]
    assert off_origin == []


def test_admin_page_explains_a_missing_admin_token(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()  # no BOOKCHAT_ADMIN_TOKEN: every admin request is refused
    page = new_page()
    failed: list[Request] = []
    page.on("requestfailed", lambda request: failed.append(request))
    page.goto(stack.base_url + "/admin")
    page.get_by_label("Admin token").fill("anything")
    page.get_by_role("button", name="Show report").click()
    expect(page.locator("#status")).to_have_class("error")
    expect(page.locator("#status")).to_contain_text("BOOKCHAT_ADMIN_TOKEN")
    assert failed == []
