"""The widget inside a real Docusaurus site, added both ways a site owner can: the
`docusaurus-plugin-bookchat` package (clients/) and a plain `scripts` entry.

The sample site is built with the pinned Docusaurus of tests/docusaurus_build.py (npm ci once,
cached), served by `docusaurus serve`, and asked questions in Debian's chromium against the
running stack (real API, Redis, Postgres and Celery worker; the offline model). The builds
embed the API's address, so its port is chosen before building and kept per checkout: the
first run builds the two sites (with Rspack/SWC), later runs reuse them from the harness's
cache; the npm install is shared with the conformance tests.

Screenshots land in test-artifacts/docusaurus-*.png; docs/widget.md shows them.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import re
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, SAMPLE_SITE, _port_open
from tests.docusaurus_build import build_site, install
from tests.stack import Stack, _free_port

pytestmark = pytest.mark.e2e

ARTIFACTS = ROOT / "test-artifacts"
PLUGIN = ROOT / "clients" / "docusaurus-plugin-bookchat"
TITLE = "Ask the Lumen manual"
LAUNCHER = f"Open chat: {TITLE}"
QUESTION = "How do I send the arm to its home pose?"
OFF_TOPIC = "What is a good recipe for sourdough bread?"
FASTER = (
    "  future: {faster: {swcJsLoader: true, swcJsMinimizer: true, swcHtmlMinimizer: true,"
    " lightningCssMinimizer: true, rspackBundler: true, rspackPersistentCache: false,"
    " mdxCrossCompilerCache: true, ssgWorkerThreads: false}},\n"
)
SUGGESTED = ["How do I send the arm home from Python?", "What if the arm jerks?"]


@dataclass(frozen=True)
class Sites:
    api_port: int
    plugin_origin: str  # the site with docusaurus-plugin-bookchat (on localhost)
    scripts_origin: str  # the same site with a `scripts` entry instead
    stranger_origin: str  # a page not in the API's CORS allow-list
    # The pages the stack indexes, with the config's production `url`: citations name that
    # host, and the widget opens them on the origin the reader is on.
    indexed_src: Path

    @property
    def allowed(self) -> list[str]:
        return [self.plugin_origin, self.scripts_origin]


@pytest.fixture(scope="session")
def redis_url(redis_url: str) -> str:
    """A database of our own (make_stack flushes it; test_widget.py uses /12)."""
    return redis_url.rsplit("/", 1)[0] + "/13"


def _site_source(dest: Path, extra: str = "") -> Path:
    """A copy of the sample site with `extra` config keys."""
    shutil.copytree(SAMPLE_SITE, dest, ignore=shutil.ignore_patterns("build", ".docusaurus"))
    config = (SAMPLE_SITE / "docusaurus.config.js").read_text()
    # The sample site has no home page (its navbar title links to one): not our concern here.
    # Rspack/SWC (@docusaurus/faster, in the harness's lock): the same pages for a third of the
    # CPU of the default webpack build (tests/docusaurus_build.py).
    extra = "  onBrokenLinks: 'warn',\n" + FASTER + extra
    config = config.replace("  presets: [", extra + "  presets: [", 1)
    assert extra in config, "the sample config changed shape"
    (dest / "docusaurus.config.js").write_text(config)
    return dest


def _api_port() -> int:
    """The API's port is written into the built sites, and the build cache is keyed by their
    content: a port fixed per checkout lets later runs reuse the builds (a cache hit costs
    nothing). When that port is taken, any free one does, at the price of a rebuild."""
    preferred = 20000 + zlib.crc32(str(ROOT).encode()) % 20000
    return _free_port() if _port_open("127.0.0.1", preferred) else preferred


def _serve(src: Path, build: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`docusaurus serve` of `build` (it reads baseUrl and trailingSlash from `src`'s config)."""
    modules = install()
    link = src / "node_modules"
    if not link.exists():
        link.symlink_to(modules, target_is_directory=True)
    cli = modules / "@docusaurus" / "core" / "bin" / "docusaurus.mjs"
    command = ["node", str(cli), "serve", "--dir", str(build), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--no-open"],
        cwd=src,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while not _port_open("127.0.0.1", port):
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"docusaurus serve did not start:\n{log.read_text()}"
        time.sleep(0.1)
    return process


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    tmp = tmp_path_factory.mktemp("docusaurus")
    api_port = _api_port()
    plugin_port, scripts_port, stranger_port = (_free_port() for _ in range(3))
    api = f"http://127.0.0.1:{api_port}"
    plugin_origin = f"http://127.0.0.1:{plugin_port}"
    questions = ", ".join(f"'{q}'" for q in SUGGESTED)
    # The build cache is keyed by the site's files: the plugin's own code is named in the config
    # so that a change to it rebuilds the site.
    plugin_hash = hashlib.sha256((PLUGIN / "index.js").read_bytes()).hexdigest()[:16]
    plugin_src = _site_source(
        tmp / "plugin-site",
        f"  // docusaurus-plugin-bookchat {plugin_hash}\n"
        f"  plugins: ['{PLUGIN}'],\n"
        f"  themeConfig: {{bookchat: {{apiUrl: '{api}', title: '{TITLE}',"
        f" suggestedQuestions: [{questions}], pageActions: true}}}},\n",
    )
    scripts_src = _site_source(
        tmp / "scripts-site",
        f"  scripts: [{{src: '{api}/widget.js', defer: true, 'data-title': '{TITLE}',"
        " 'data-launcher-label': 'Ask the manual'}],\n",
    )
    servers = [
        _serve(plugin_src, build_site(plugin_src), plugin_port, tmp / "serve-plugin.log"),
        _serve(scripts_src, build_site(scripts_src), scripts_port, tmp / "serve-scripts.log"),
    ]
    stranger_dir = tmp / "stranger"
    stranger_dir.mkdir()
    (stranger_dir / "index.html").write_text(
        "<!doctype html><html><body><h1>Not an allowed site</h1>"
        f'<script src="{api}/widget.js" defer data-title="{TITLE}"></script></body></html>'
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(stranger_dir))
    stranger = http.server.ThreadingHTTPServer(("127.0.0.1", stranger_port), handler)
    threading.Thread(target=stranger.serve_forever, daemon=True).start()
    try:
        yield Sites(
            api_port=api_port,
            plugin_origin=plugin_origin,
            scripts_origin=f"http://127.0.0.1:{scripts_port}",
            stranger_origin=f"http://127.0.0.1:{stranger_port}",
            indexed_src=_site_source(tmp / "indexed-site"),
        )
    finally:
        stranger.shutdown()
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"docusaurus-{name}.png"))


def start_stack(make_stack: Callable[..., Stack], sites: Sites) -> Stack:
    return make_stack(site=sites.indexed_src, api_port=sites.api_port, cors_origins=sites.allowed)


def open_widget(page: Page, url: str, launcher: str = LAUNCHER) -> None:
    page.goto(url)
    page.get_by_role("button", name=launcher).click()
    expect(page.get_by_role("dialog", name=TITLE)).to_be_visible()


def ask(page: Page, question: str) -> Any:
    page.get_by_label("Your question").fill(question)
    page.get_by_label("Your question").press("Enter")
    answer = page.locator(".msg.bot:not(.greeting)").last
    expect(answer).not_to_have_attribute("aria-busy", "true", timeout=90_000)
    return answer


def test_plugin_site_answers_with_numbered_sources_that_open_their_section(
    make_stack: Callable[..., Stack], sites: Sites, new_page: Callable[..., Page]
) -> None:
    stack = start_stack(make_stack, sites)
    page = new_page()
    page.goto(sites.plugin_origin + "/lumen/manual/safety")
    expect(page.get_by_role("button", name=LAUNCHER)).to_be_visible()
    shot(page, "launcher-light")
    # The plugin put the options in the page: the suggestions of themeConfig.bookchat show.
    page.keyboard.press("Control+i")  # the default shortcut (Ctrl+K stays the site search's)
    dialog = page.get_by_role("dialog", name=TITLE)
    expect(dialog).to_be_visible()
    suggestions = page.get_by_role("group", name="Suggested questions").get_by_role("button")
    expect(suggestions).to_have_text(SUGGESTED)
    shot(page, "light-empty")

    suggestions.first.click()
    answer = page.locator(".msg.bot:not(.greeting)").last
    try:
        expect(answer).not_to_have_attribute("aria-busy", "true", timeout=90_000)
    except AssertionError:
        shot(page, "failed-answer")
        raise AssertionError(f"no answer; worker log:\n{stack.log()}") from None
    # The answer is the page's code block: its citation sits in the block's bar, next to the
    # language label and the copy button, not alone on a line under it.
    code = answer.locator(".text .code")
    expect(code.locator(".lang")).to_have_text(
        "home.py"
    )  # the block's title, as Docusaurus shows it
    expect(code.get_by_role("button", name="Copy code")).to_be_visible()
    expect(code.locator(".code-bar a.marker")).to_have_text("1")
    expect(answer.locator(".text > p")).to_have_count(0)
    cards = answer.locator(".cites a")
    expect(cards).to_have_count(1)
    target = cards.first.get_attribute("href") or ""
    assert (
        target == f"{sites.plugin_origin}/lumen/manual/getting-started/first-move#send-the-arm-home"
    )
    shot(page, "answer-code-light")

    # A source card opens its page at the cited section.
    with page.context.expect_page() as opened:
        cards.first.click()
    source_page = opened.value
    source_page.wait_for_load_state()
    assert source_page.url == target
    heading = source_page.locator("[id='send-the-arm-home']")
    expect(heading).to_be_in_viewport()
    expect(heading).to_contain_text("Send the arm home")
    source_page.close()

    # Two sources (the offline answer to this question cites two pages): each marker is numbered
    # as its card in the list and links where the card does.
    answer = ask(page, "How do I stop the arm in an emergency?")
    cards = answer.locator(".cites a")
    expect(cards.first).to_be_visible()
    card_hrefs = [cards.nth(i).get_attribute("href") for i in range(cards.count())]
    assert len(card_hrefs) >= 2, card_hrefs
    markers = answer.locator(".text a.marker")
    shown = set()
    fragments: list[str] = []
    for i in range(markers.count()):
        number = int(markers.nth(i).inner_text())
        assert 1 <= number <= len(card_hrefs), (number, card_hrefs)
        # The marker opens its card's page and anchor, on the sentence it ends where the
        # answer quotes the page (a text fragment; browsers fall back to the anchor).
        href = markers.nth(i).get_attribute("href") or ""
        assert href.split(":~:")[0].rstrip("#") == card_hrefs[number - 1], (href, card_hrefs)
        fragments.append(href)
        shown.add(number)
    assert shown == set(range(1, len(card_hrefs) + 1)), "each source is cited, numbered as listed"
    # The offline model quotes the page: its first sentence lands on the page's own words.
    assert any(":~:text=" in f for f in fragments), fragments
    with page.context.expect_page() as opened:
        markers.last.click()
    quoted = opened.value
    quoted.wait_for_load_state()
    assert quoted.url.split("#")[0] == (markers.last.get_attribute("href") or "").split("#")[0]
    quoted.close()
    for i in range(cards.count()):
        expect(cards.nth(i).locator(".n")).to_have_text(str(i + 1))
    shot(page, "answer-light")

    # The site's dark mode (Docusaurus' own toggle): the widget follows it.
    page.get_by_role("button", name=re.compile("Switch between dark and light mode")).click()
    expect(page.locator("bookchat-widget")).to_have_attribute("data-theme", "dark")
    shot(page, "answer-dark")

    declined = ask(page, OFF_TOPIC)
    expect(declined).to_have_class(re.compile(r"\brefused\b"))
    expect(declined.locator(".badge")).to_have_text("Not in the docs")
    expect(declined.locator(".cites a")).to_have_count(0)
    shot(page, "decline-dark")

    phone = new_page(viewport={"width": 390, "height": 760}, is_mobile=True, has_touch=True)
    open_widget(phone, sites.plugin_origin + "/lumen/manual/getting-started/first-move")
    box = phone.locator("#bookchat-panel").bounding_box()
    assert box is not None
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 390, 760), box
    ask(phone, QUESTION)
    shot(phone, "mobile-light")


def test_scripts_entry_works_and_an_origin_outside_the_allow_list_is_refused(
    make_stack: Callable[..., Stack], sites: Sites, new_page: Callable[..., Page]
) -> None:
    stack = start_stack(make_stack, sites)
    page = new_page()
    # The `scripts` entry's data-* attributes configure it (its own launcher label).
    open_widget(page, sites.scripts_origin + "/lumen/manual/getting-started/first-move")
    expect(page.get_by_role("button", name="Ask the manual")).to_be_hidden()  # open: no launcher
    answer = ask(page, QUESTION)
    # No siteUrl here: the page's canonical link (the production url) tells the widget to
    # open citations on this origin.
    expect(answer.locator(".cites a").first).to_have_attribute(
        "href",
        re.compile(re.escape(sites.scripts_origin) + r"/lumen/manual/getting-started/first-move#"),
    )
    shot(page, "scripts-entry-answer")

    # The API itself: a preflight from an origin outside the allow-list gets no CORS grant.
    preflight = {"Access-Control-Request-Method": "POST"}
    allowed = httpx.options(
        f"{stack.base_url}/v1/chat", headers={"Origin": sites.scripts_origin, **preflight}
    )
    assert allowed.headers.get("access-control-allow-origin") == sites.scripts_origin
    refused = httpx.options(
        f"{stack.base_url}/v1/chat", headers={"Origin": sites.stranger_origin, **preflight}
    )
    assert "access-control-allow-origin" not in refused.headers, refused.headers

    # And in the browser: the widget loads there but its question never reaches the API.
    stranger = new_page()
    failed: list[str] = []
    stranger.on("requestfailed", lambda r: failed.append(r.url) if "/v1/chat" in r.url else None)
    open_widget(stranger, sites.stranger_origin + "/")
    stranger.get_by_label("Your question").fill(QUESTION)
    stranger.get_by_label("Your question").press("Enter")
    expect(stranger.get_by_role("alert")).to_contain_text(
        f"The assistant is not enabled for this site ({sites.stranger_origin}"
    )
    assert failed, "the browser should have blocked the cross-origin request"
    assert stack.http.get("/healthz").status_code == 200  # the API is up: CORS refused it
    shot(stranger, "refused-origin")


def test_page_actions_copy_the_page_as_markdown_and_ask_about_it(
    make_stack: Callable[..., Stack], sites: Sites, new_page: Callable[..., Page]
) -> None:
    stack = start_stack(make_stack, sites)
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(sites.plugin_origin + "/lumen/manual/getting-started/first-move")
    actions = page.get_by_role("group", name="This page")
    expect(actions).to_be_visible()
    # Under the page's title, in the article.
    assert (
        page.evaluate("document.querySelector('article h1').nextElementSibling.tagName")
        == "BOOKCHAT-PAGE-ACTIONS"
    )
    actions.get_by_role("button", name="Copy page as Markdown").click()
    expect(actions.get_by_role("button", name="Copied")).to_be_visible()
    markdown = page.evaluate("navigator.clipboard.readText()")
    assert markdown.startswith("# Your first move\n"), markdown[:200]
    assert "\n## Send the arm home\n" in markdown
    assert "\n```python\nfrom lumen import Arm\n" in markdown, markdown
    assert "Copy page" not in markdown  # the page's buttons are not its text
    assert markdown.rstrip().endswith(
        f"Source: {sites.plugin_origin}/lumen/manual/getting-started/first-move"
    )
    chatgpt = actions.get_by_role("link", name="Open in ChatGPT").get_attribute("href") or ""
    assert chatgpt.startswith("https://chatgpt.com/?q=Read%20http")
    shot(page, "page-actions")

    page.get_by_role("group", name="This page").get_by_role(
        "button", name="Ask about this page"
    ).click()
    answer = page.locator(".msg.bot:not(.greeting)").last
    try:
        expect(answer).not_to_have_attribute("aria-busy", "true", timeout=90_000)
    except AssertionError:
        raise AssertionError(f"no answer; worker log:\n{stack.log()}") from None
    expect(answer.locator(".cites a").first).to_have_attribute(
        "href",
        re.compile(re.escape(sites.plugin_origin) + r"/lumen/manual/getting-started/first-move"),
    )
    page.get_by_role("button", name="Close chat").click()

    # A client-side navigation replaces the article: the buttons follow to the new title.
    page.locator("a.pagination-nav__link--next").click()
    expect(page).not_to_have_url(re.compile(r"first-move$"))
    expect(page.locator("article h1 + bookchat-page-actions")).to_have_count(1)
    expect(page.locator("bookchat-page-actions")).to_have_count(1)
