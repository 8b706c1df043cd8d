"""The chat widget in a real browser (Debian's chromium driven by Playwright) against the
running stack: real API, Redis, Postgres and Celery worker, the sample site indexed.

Screenshots land in test-artifacts/ (gitignored) for a human look."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, Route, expect

from api.main import create_app
from shared.settings import Settings
from tests.conftest import ROOT
from tests.fake_llm import FakeLLM, text, tool_call
from tests.stack import Stack, _free_port

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
QUESTION = "How do I send the arm to its home pose?"
# The fake LLM quotes the first passage's first sentence; for QUESTION that is a code block, which
# the link filter holds until it closes (a URL inside code is kept, outside removed), so it would
# arrive at once. Streaming is watched on a prose answer.
PROSE_QUESTION = "What should I check if the arm does not move?"
LAUNCHER = "Open chat: Ask the Lumen manual"


@pytest.fixture(scope="session")
def redis_url(redis_url: str) -> str:
    """A Redis database of our own: `make_stack` flushes its database and its worker consumes
    the `chat` queue there, so two test sessions sharing one database steal each other's jobs."""
    return redis_url.rsplit("/", 1)[0] + "/12"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"widget-{name}.png"))


def open_demo(page: Page, stack: Stack) -> None:
    page.goto(stack.base_url + "/")
    page.get_by_role("button", name=LAUNCHER).click()
    expect(page.get_by_role("dialog", name="Ask the Lumen manual")).to_be_visible()


def ask(page: Page, question: str) -> None:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")


def last_answer(page: Page) -> Any:
    return page.locator(".msg.bot:not(.greeting)").last


def wait_answered(page: Page, stack: Stack) -> Any:
    answer = last_answer(page)
    try:
        expect(answer).not_to_have_attribute("aria-busy", "true", timeout=90_000)
    except AssertionError:
        shot(page, "failed-answer")
        raise AssertionError(f"no answer; worker log:\n{stack.log()}") from None
    expect(answer).not_to_have_class(re.compile(r"streaming"))
    return answer


def test_answer_streams_then_settles_with_cited_links(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    with FakeLLM(tokens_per_s=12) as fake:  # paced, so the streaming state is observable
        stack = make_stack(llm_base_url=fake.base_url)
        page = new_page()
        open_demo(page, stack)
        shot(page, "open-light")
        ask(page, PROSE_QUESTION)

        streaming = page.locator(".msg.bot.streaming .text")
        try:
            expect(streaming).not_to_be_empty(timeout=60_000)  # the worker may be starting
        except AssertionError:
            shot(page, "failed-streaming")
            raise AssertionError(f"no streamed text; worker log:\n{stack.log()}") from None
        first = streaming.inner_text()
        expect(streaming).not_to_have_text(first)  # more tokens arrived
        shot(page, "streaming-light")

        answer = wait_answered(page, stack)
    links = answer.locator(".cites a")
    expect(links.first).to_be_visible()
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert any(re.search(r"/manual/getting-started/first-move(#|$)", href) for href in hrefs), hrefs
    assert links.first.get_attribute("target") == "_blank"
    expect(answer.locator(".feedback button")).to_have_count(2)
    expect(answer.get_by_role("button", name="Copy answer")).to_be_visible()
    shot(page, "answer-light")

    page.locator("#theme-toggle").click()  # the site switches to dark: so must the widget
    expect(page.locator("bookchat-widget")).to_have_attribute("data-theme", "dark")
    shot(page, "answer-dark")


LONG_ANSWER = "\n\n".join(
    f"Step {i}: check the joint {i} wiring and the power before the next move [1]."
    for i in range(1, 41)
)


def test_shortcut_stop_and_a_long_answer_read_from_its_start(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    with FakeLLM() as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        page = new_page(permissions=["clipboard-read", "clipboard-write"])
        page.goto(stack.base_url + "/")
        dialog = page.get_by_role("dialog", name="Ask the Lumen manual")
        page.keyboard.press("Control+k")  # the site search's key: not ours
        expect(dialog).to_be_hidden()
        page.keyboard.press("Control+i")
        expect(dialog).to_be_visible()
        suggestions = page.get_by_role("group", name="Suggested questions").get_by_role("button")
        expect(suggestions).to_have_count(3)
        page.keyboard.press("Control+i")
        expect(dialog).to_be_hidden()
        page.keyboard.press("Control+i")

        # Stop while it streams: the text so far stays, marked as stopped; asking works again.
        fake.enqueue(
            tool_call("search_docs", {"query": "wiring"}), text(LONG_ANSWER, tokens_per_s=15)
        )
        ask(page, "How do I check the wiring?")
        streaming = page.locator(".msg.bot.streaming .text")
        expect(streaming).not_to_be_empty(timeout=60_000)
        stop = page.get_by_role("button", name="Stop answering")
        stop.click()
        stopped = last_answer(page)
        expect(stopped.locator(".stopped-note")).to_have_text("Stopped.")
        expect(stopped).not_to_have_attribute("aria-busy", "true")
        expect(stop).to_be_hidden()
        expect(page.get_by_role("button", name="Send")).to_be_enabled()
        kept = stopped.locator(".text").inner_text()
        assert kept, "the streamed text is kept"
        page.wait_for_timeout(500)
        assert stopped.locator(".text").inner_text() == kept, "nothing more is drawn after Stop"

        # A long answer: the reader lands on its first lines (and its question), not its end.
        fake.enqueue(tool_call("search_docs", {"query": "wiring"}), text(LONG_ANSWER))
        ask(page, "Which steps before a move?")
        answer = wait_answered(page, stack)
        expect(answer.locator(".cites a").first).to_be_visible()
        question = page.locator(".msg.user").last
        expect(question).to_be_in_viewport()
        expect(answer.get_by_text("Step 1:", exact=False)).to_be_in_viewport()
        expect(answer.locator(".cites")).not_to_be_in_viewport()
        shot(page, "long-answer")

        # Copy answer: the text with the markers as shown, then the numbered sources.
        answer.get_by_role("button", name="Copy answer").click()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("Step 1: check the joint 1 wiring"), copied[:200]
        assert "[1]" in copied
        assert re.search(r"\nSources:\n\[1\] .+ — https?://", copied), copied[-300:]


def test_ask_about_this_sends_the_selection(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()
    page = new_page()
    page.goto(stack.base_url + "/")
    page.locator("#limits-text").click(click_count=3)  # selects the paragraph
    button = page.get_by_role("button", name="Ask about this")
    expect(button).to_be_visible()
    shot(page, "ask-about-this")

    with page.expect_request(lambda r: r.url.endswith("/v1/chat") and r.method == "POST") as req:
        button.click()
    body = req.value.post_data_json or {}
    assert "mechanical end stop" in body["selection"], body
    assert body["page_url"] == stack.base_url + "/"
    assert body["message"]

    expect(page.get_by_role("dialog")).to_be_visible()
    expect(page.locator(".msg.user .quote")).to_contain_text("mechanical end stop")
    expect(button).to_be_hidden()
    wait_answered(page, stack)
    shot(page, "ask-about-this-answer")


def test_conversation_restored_after_reload_and_feedback_kept(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()
    page = new_page()
    open_demo(page, stack)
    ask(page, QUESTION)
    answer = wait_answered(page, stack)
    answer_html = answer.locator(".text").inner_html()

    with page.expect_response(lambda r: "/feedback" in r.url) as feedback:
        answer.get_by_role("button", name="Helpful", exact=True).click()
    assert feedback.value.status == 201
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    expect(helpful).to_have_attribute("aria-pressed", "true")

    stored = json.loads(page.evaluate("localStorage.getItem('bookchat:session')"))
    assert stored["id"]
    assert stored["token"]

    page.reload()
    page.get_by_role("button", name=LAUNCHER).click()
    expect(page.locator(".msg.user")).to_have_text(QUESTION)
    restored = last_answer(page)
    expect(restored.locator(".cites a").first).to_be_visible()
    assert restored.locator(".text").inner_html() == answer_html  # rendered exactly the same
    expect(restored.locator(".cites a").first).to_have_attribute("href", re.compile("first-move"))
    helpful = restored.get_by_role("button", name="Helpful", exact=True)
    expect(helpful).to_have_attribute("aria-pressed", "true")  # remembered across reloads

    # The next question continues the same session.
    with page.expect_request(lambda r: r.url.endswith("/v1/chat")) as req:
        ask(page, "What if the arm jerks?")
    assert (req.value.post_data_json or {})["session_id"] == stored["id"]
    assert req.value.headers["x-session-token"] == stored["token"]
    wait_answered(page, stack)
    expect(page.locator(".msg.user")).to_have_count(2)

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".msg.user")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('bookchat:session')") is None


def test_rate_limit_and_busy_errors_offer_retry(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()
    page = new_page()
    refusals: list[int] = []

    def refuse(status: int, retry_after: str) -> Callable[[Route], None]:
        def handle(route: Route) -> None:
            refusals.append(status)
            route.fulfill(
                status=status,
                headers={"Retry-After": retry_after, "Content-Type": "application/json"},
                body=json.dumps({"code": "rate_limited", "message": "Too many requests."}),
            )

        return handle

    page.route("**/v1/chat", refuse(429, "7"))
    open_demo(page, stack)
    ask(page, QUESTION)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("You're sending messages too quickly")
    expect(alert).to_contain_text(re.compile(r"try again in [5-7] s"))
    retry = alert.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    shot(page, "rate-limited")

    page.unroute("**/v1/chat")
    page.route("**/v1/chat", refuse(503, "5"))
    retry.click()
    expect(page.get_by_role("alert")).to_contain_text("The assistant is busy")
    assert refusals == [429, 503]

    page.unroute("**/v1/chat")
    page.get_by_role("alert").get_by_role("button", name="Retry").click()
    answer = wait_answered(page, stack)
    expect(answer.locator(".cites a").first).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)
    expect(page.locator(".msg.user")).to_have_count(1)  # a retry does not repeat the question


def test_long_polling_when_eventsource_is_unavailable(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()
    page = new_page()
    page.add_init_script("delete window.EventSource")
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if "/v1/jobs/" in r.url else None)
    open_demo(page, stack)
    ask(page, QUESTION)
    answer = wait_answered(page, stack)
    expect(answer.locator(".cites a").first).to_be_visible()
    assert polls
    assert all("wait=25" in url and "/events" not in url for url in polls), polls


def test_keyboard_escape_focus_trap_and_mobile_layout(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()
    page = new_page()
    open_demo(page, stack)
    dialog = page.get_by_role("dialog")
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(page.get_by_role("log")).to_have_attribute("aria-live", "polite")
    expect(page.get_by_label("Your question")).to_be_focused()

    def focus_in_panel() -> bool:
        return bool(
            page.evaluate(
                """() => {
                    const root = document.querySelector('bookchat-widget').shadowRoot;
                    const active = root.activeElement;
                    return !!active && root.getElementById('bookchat-panel').contains(active);
                }"""
            )
        )

    for _ in range(8):  # Tab cycles inside the open dialog
        page.keyboard.press("Tab")
        assert focus_in_panel()
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        assert focus_in_panel()

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    launcher = page.get_by_role("button", name=LAUNCHER)
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")

    page.keyboard.press("Enter")  # the launcher reopens from the keyboard
    expect(dialog).to_be_visible()

    phone = new_page(viewport={"width": 390, "height": 760}, is_mobile=True, has_touch=True)
    open_demo(phone, stack)
    box = phone.locator("#bookchat-panel").bounding_box()
    assert box is not None
    viewport = phone.evaluate("[window.innerWidth, window.innerHeight]")
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, *viewport), box
    assert viewport == [390, 760]  # the demo page itself does not overflow on a phone
    shot(phone, "mobile-light")


def test_markdown_is_rendered_safely(new_page: Callable[..., Page]) -> None:
    page = new_page()
    page.set_content("<!doctype html><html><body><p>host page</p></body></html>")
    for script in ("loader.js", "widget.js"):  # the chat runs inside the loader's parts
        page.add_script_tag(content=(ROOT / "api/static" / script).read_text())
    html = page.evaluate(
        """() => window.Bookchat.renderMarkdown(
            'Use <img src=x onerror="window.pwned=1"> **bold** and `<b>code</b>` [1].\\n\\n'
            + '- one\\n- two\\n\\n```\\n<script>alert(1)</script>\\n```\\n'
            + '[x](javascript:alert(1)) [ok](https://example.org/a?b=1&c=2)',
            n => n === 1 ? {href: 'https://docs.example.org/p#h', label: 'P \u203a H'} : null)"""
    )
    for dangerous in ("<img", "<script", "javascript:"):
        assert dangerous not in html, html
    assert "&lt;img src=x onerror=&quot;window.pwned=1&quot;&gt;" in html
    assert "<strong>bold</strong>" in html
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in html
    assert '<a class="marker" href="https://docs.example.org/p#h"' in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert "<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></pre>" in html
    assert 'href="https://example.org/a?b=1&amp;c=2"' in html
    assert page.evaluate("window.pwned") is None


LOADER_BUDGET = 8 * 1024  # bytes, minified; the goal is 5 KB (docs/widget.md)
CHAT_BUDGET = 50 * 1024


def test_widget_script_is_served_with_caching_headers(settings: Settings) -> None:
    client = TestClient(create_app(settings))  # no lifespan: these routes need no services
    latest = client.get("/widget.js")
    assert latest.status_code == 200
    assert latest.headers["content-type"].startswith("text/javascript")
    assert "max-age=300" in latest.headers["cache-control"]
    etag = latest.headers["etag"]
    assert client.get("/widget.js", headers={"If-None-Match": etag}).status_code == 304

    versions = {
        re.search(r'var VERSION = "([^"]+)"', (ROOT / "api/static" / name).read_text())
        for name in ("loader.js", "widget.js")
    }
    assert None not in versions
    [version] = {m.group(1) for m in versions if m is not None}  # one version, both files
    pinned = client.get(f"/widget/{version}.js")
    assert pinned.status_code == 200
    assert pinned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert pinned.headers["etag"] == etag
    assert pinned.content == latest.content

    # The loader is small; the chat it loads on first use is the rest (issue 27's budgets).
    chat = client.get(f"/widget/{version}/widget.js")
    styles = client.get(f"/widget/{version}/widget.css")
    assert chat.status_code == styles.status_code == 200
    assert styles.headers["content-type"].startswith("text/css")
    assert chat.headers["access-control-allow-origin"] == "*"  # fetched from any docs site
    assert len(latest.content) <= LOADER_BUDGET, len(latest.content)
    assert len(chat.content) <= CHAT_BUDGET, len(chat.content)
    assert client.get("/widget/0.0.0-nope/widget.js").status_code == 404

    missing = client.get("/widget/0.0.0-nope.js")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"

    demo = client.get("/")
    assert demo.status_code == 200
    assert '<script src="/widget.js"' in demo.text
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"


TABLE_ANSWER = (
    "Each joint's soft limits [1]:\n\n"
    "| Joint | Minimum | Maximum | Command |\n"
    "| --- | ---: | ---: | --- |\n"
    "| 2 (shoulder) | -85 | 85 | `lumen limits set 2 --min -85 --max 85` |\n"
    "| 3 (elbow) | -80 | 80 | `lumen limits set 3 --min -80 --max 80` |\n"
)


def test_a_table_answer_renders_as_a_table_that_scrolls_on_a_phone(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    with FakeLLM() as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        fake.enqueue(tool_call("search_docs", {"query": "soft limits"}), text(TABLE_ANSWER))
        page = new_page(viewport={"width": 390, "height": 760}, is_mobile=True, has_touch=True)
        open_demo(page, stack)
        ask(page, "What are the soft limits per joint?")
        answer = wait_answered(page, stack)
    table = answer.locator(".text .table table")
    expect(table.locator("thead th")).to_have_text(["Joint", "Minimum", "Maximum", "Command"])
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr").first.locator("td").nth(3).locator("code")).to_have_text(
        "lumen limits set 2 --min -85 --max 85"
    )
    expect(table.locator("tbody td.al-right").first).to_have_text("-85")
    assert "| ---" not in answer.inner_text()
    # The wide table scrolls inside its box; the conversation itself never scrolls sideways.
    box = answer.locator(".text .table")
    assert box.evaluate("b => b.scrollWidth > b.clientWidth"), "a phone-wide table scrolls"
    assert page.locator(".log").evaluate("l => l.scrollWidth <= l.clientWidth")
    shot(page, "table-mobile")


def test_a_reload_mid_answer_shows_the_question_and_the_answer_completes(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    with FakeLLM() as fake:
        stack = make_stack(llm_base_url=fake.base_url)
        fake.enqueue(
            tool_call("search_docs", {"query": "wiring"}), text(LONG_ANSWER, tokens_per_s=40)
        )
        page = new_page()
        open_demo(page, stack)
        ask(page, "How do I check the wiring?")
        expect(page.locator(".msg.bot.streaming .text")).not_to_be_empty(timeout=60_000)
        page.reload()  # mid-answer: the widget finds its pending job and follows it again
        expect(page.get_by_role("dialog", name="Ask the Lumen manual")).to_be_visible()
        expect(page.locator(".msg.user")).to_have_text(["How do I check the wiring?"])
        answer = wait_answered(page, stack)
    expect(answer.get_by_text("Step 40:", exact=False)).to_have_count(1)
    expect(answer.locator(".cites a").first).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('bookchat:pending')") is None
    shot(page, "resumed-after-reload")

    page.reload()  # answered: the history shows it once, nothing is followed again
    page.get_by_role("button", name=LAUNCHER).click()
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator(".msg.bot:not(.greeting)")).to_have_count(1)


def test_search_mode_finds_a_page_as_you_type_and_hands_the_query_to_ask_ai(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    stack = make_stack()
    page = new_page()
    page.add_init_script(EVENTS)
    opened: list[str] = []

    def landed(route: Route) -> None:
        opened.append(route.request.url)
        route.fulfill(body="<h1>Safety</h1>", content_type="text/html")

    page.route("https://lumen.example.org/**", landed)  # the sample site's public host
    open_demo(page, stack)
    page.get_by_role("tab", name="Search").click()
    box = page.get_by_role("combobox", name="Search the docs")
    expect(box).to_be_focused()
    box.press_sequentially("soft limits", delay=30)
    options = page.get_by_role("listbox", name="Search results").get_by_role("option")
    expect(options.first).to_have_text("Ask AI: “soft limits”")
    hit = options.filter(has_text="Safety › Soft limits")
    expect(hit.first).to_be_visible(timeout=30_000)
    shot(page, "search")

    # Keyboard: down to the first page, Enter opens it (this tab, like a search result).
    box.press("ArrowDown")
    box.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    url = options.nth(1).get_attribute("data-url")
    with page.expect_navigation():
        box.press("Enter")
    assert opened, "the result was opened"
    assert page.url == url  # page and #anchor

    # Back on the demo: Enter with nothing chosen asks AI with the typed query.
    open_demo(page, stack)
    page.get_by_role("tab", name="Search").click()
    box.fill("How do I send the arm to its home pose?")
    box.press("Enter")
    expect(page.get_by_role("tab", name="Ask AI")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".msg.user")).to_have_text(["How do I send the arm to its home pose?"])
    answer = wait_answered(page, stack)
    expect(answer.locator(".cites a").first).to_be_visible()

    # The site's own search can hand its query over: Bookchat.search(query).
    page.evaluate("Bookchat.search('emergency stop')")
    expect(page.get_by_role("combobox", name="Search the docs")).to_have_value("emergency stop")
    expect(options.filter(has_text="Safety").first).to_be_visible(timeout=30_000)
    names = [name for name, _ in page.evaluate("window.__events")]
    assert "search" in names, names


CSP_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Soft limits</title>
<link rel="canonical" href="https://lumen.example.org/lumen/manual/safety">
<link rel="stylesheet" href="/site.css"></head><body><h1>Safety</h1>
<p id="limits">Soft limits stop a joint a few degrees before its mechanical end stop.</p>
<script src="{api}/widget.js" defer data-title="Ask the Lumen manual"></script></body></html>"""
EVENTS = """window.__events = []; window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
['open', 'close', 'ask', 'answer', 'cite-click', 'feedback', 'export', 'error', 'search'].forEach(
  n => window.addEventListener('bookchat:' + n, e => window.__events.push([n, e.detail])));"""


def test_under_a_strict_csp_on_a_local_copy_of_the_site(
    make_stack: Callable[..., Stack], new_page: Callable[..., Page]
) -> None:
    """A page served from localhost with a strict Content-Security-Policy and the canonical
    link Docusaurus writes (the production `url`): the widget works with no violation, its
    citations open this origin's pages, its events fire, the conversation exports, and a
    thumbs-down takes a reason."""
    stack = make_stack()
    policy = (
        f"default-src 'none'; script-src 'self' {stack.base_url}; style-src 'self'"
        f" {stack.base_url}; connect-src {stack.base_url}; img-src 'self' data:"
    )
    html = CSP_PAGE.format(api=stack.base_url).encode()

    class Site(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            css = self.path.endswith(".css")
            body = b"body{font-family:serif}" if css else html
            self.send_response(200)
            self.send_header("Content-Type", "text/css" if css else "text/html")
            self.send_header("Content-Security-Policy", policy)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://localhost:{server.server_port}"  # not the API's host: another origin
    page = new_page(accept_downloads=True)
    try:
        _csp_page_checks(page, stack, site)
    finally:
        server.shutdown()


def _csp_page_checks(page: Page, stack: Stack, site: str) -> None:
    page.add_init_script(EVENTS)
    page.goto(f"{site}/lumen/manual/safety")
    page.get_by_role("button", name=LAUNCHER).click()
    ask(page, QUESTION)
    answer = wait_answered(page, stack)
    card = answer.locator(".cites a").first
    assert (card.get_attribute("href") or "").startswith(
        f"{site}/lumen/manual/getting-started/first-move#"
    ), card.get_attribute("href")
    # Styled (the constructed sheet applied): the card is a bordered flex box.
    assert card.evaluate("a => getComputedStyle(a).display") == "flex"
    with page.context.expect_page() as opened:
        card.click()
    assert opened.value.url.startswith(f"{site}/lumen/manual/getting-started/first-move#")
    opened.value.close()

    with page.expect_download() as download:
        page.get_by_role("button", name="Export conversation").click()
    exported = Path(download.value.path()).read_text()
    assert f"## {QUESTION}" in exported
    assert re.search(rf"\n1\. \[.+\]\({re.escape(site)}/lumen/manual/getting-started/", exported)

    answer.get_by_role("button", name="Not helpful").click()
    reason = answer.get_by_role("textbox", name="What was wrong or missing? (optional)")
    reason.fill("It should say which pose is home.")
    with page.expect_request(lambda r: "/feedback" in r.url and "comment" in (r.post_data or "")):
        answer.get_by_role("button", name="Send", exact=True).click()
    expect(answer.get_by_text("Thanks, that helps us fix the docs.")).to_be_visible()
    shot(page, "strict-csp")

    assert page.evaluate("window.__csp") == []
    events = page.evaluate("window.__events")
    names = [name for name, _ in events]
    for expected in ("open", "ask", "answer", "cite-click", "export", "feedback"):
        assert expected in names, names
    detail = dict(events)
    assert detail["ask"]["question"] == QUESTION
    assert detail["answer"]["citations"] >= 1
    assert detail["cite-click"]["url"].startswith(site)
    assert [d["comment"] for n, d in events if n == "feedback"] == [
        None,
        "It should say which pose is home.",
    ]


@pytest.fixture(autouse=True, scope="module")
def _fresh_artifacts() -> None:
    if ARTIFACTS.exists():
        for old in ARTIFACTS.glob("widget-*.png"):
            old.unlink()
    ARTIFACTS.mkdir(exist_ok=True)
