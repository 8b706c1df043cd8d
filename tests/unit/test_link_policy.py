"""The link policy (shared/link_policy.py) against a corpus of known tricks (issue 16).

Each hostile case must come out with no way left for a renderer to link off the site: the
check is on the cleaned text decoded as a renderer would (entities, escapes, NFKC), so an
encoded survivor counts as a failure too. The same corpus runs through the streaming filter
split at every position, and through the worker's token relay."""

from __future__ import annotations

import asyncio
import html
import re
import unicodedata
from typing import Any
from urllib.parse import unquote

import pytest

from shared.jobs import EventType
from shared.link_policy import REMOVED, LinkPolicy
from worker.chat_job import TokenRelay

pytestmark = pytest.mark.unit

SITE = "https://docs.example.org/book/"
POLICY = LinkPolicy.for_site(SITE)

# (hostile text, a fragment that must not survive in any decoded form)
HOSTILE: list[tuple[str, str]] = [
    ("visit HTTPS://portal.example/login and paste your password", "portal.example"),
    ("[portal](HTTPS://x.example/login)", "x.example"),
    ("[support](\\\\x.example/reset)", "x.example"),
    ("![p](HTTP://x.example/p?d=secret)", "x.example"),
    ("![p](//x.example/p.png)", "x.example"),
    ("[a](hTtPs:/\\x.example)", "x.example"),
    ("[a](https:\\\\x.example)", "x.example"),
    ("[a](javascript:alert(1))", "javascript"),
    ("[a](JaVaScRiPt&#58;alert(1))", "alert"),
    ("[a](java&#9;script:alert(1))", "alert"),
    ("[a](java&#x0A;script&#x3A;alert(1))", "alert"),
    ("[a](&#106;avascript:alert(1))", "alert"),
    ("[a](data:text/html;base64,PHNjcmlwdD4=)", "data:"),
    ("[a](vbscript:msgbox)", "vbscript"),
    ("[a](file:///etc/passwd)", "passwd"),
    ("<https://evil.example/x>", "evil.example"),
    ("<HTTP://evil.example>", "evil.example"),
    ("<mailto:a@evil.example>", "evil.example"),
    ("write to bob@evil.example", "evil.example"),
    ("go to www.evil.example now", "evil.example"),
    ("go to WWW.Evil.Example/login", "evil.example"),
    ("go to portal.example/login now", "portal.example"),
    ("go to evil.com now", "evil.com"),
    ("h&#116;tps://evil.example/x", "evil.example"),
    ("https&#58;//evil.example", "evil.example"),
    ("https&colon;&sol;&sol;evil.example", "evil.example"),
    ("https:%2F%2Fevil.example", "evil.example"),
    ("https%3A%2F%2Fevil.example", "evil.example"),
    ("\uff28\uff34\uff34\uff30\uff33\uff1a\uff0f\uff0fevil.example", "evil.example"),
    ("ht\u200btps://evil.example", "evil.example"),
    ("https\\://evil.example", "evil.example"),
    ("//evil.example/x", "evil.example"),
    ("\\\\evil.example\\share", "evil.example"),
    ("/\\evil.example", "evil.example"),
    ("see 10.0.0.1:8080/admin", "10.0.0.1"),
    ("[x][1]\n\n[1]: https://evil.example", "evil.example"),
    ('<a href="https://evil.example">x</a>', "evil.example"),
    ("[x](<https://evil.example/a b>)", "evil.example"),
    ('[x](https://evil.example "title")', "evil.example"),
    ("[no](https://docs.example.org@evil.example/book/)", "evil.example"),
    ("[no](https://docs.example.org.evil.example/book/)", "evil.example"),
    ("[no](https://docs.example.org/other/page)", "other/page"),
    ("[no](http://docs.example.org:8443/book/)", "8443"),
    ("[nested [x](https://evil.example)](https://evil.example)", "evil.example"),
    ("ftp://files.evil.example/x", "evil.example"),
    ("wss://evil.example/socket", "evil.example"),
]

KEPT: list[tuple[str, str]] = [
    (
        "[intro](https://docs.example.org/book/intro#start)",
        "https://docs.example.org/book/intro#start",
    ),
    ("[intro](HTTPS://DOCS.EXAMPLE.ORG/book/intro)", "https://docs.example.org/book/intro"),
    ("[intro](/book/intro)", "[intro](/book/intro)"),
    ("run `curl http://localhost:3000`", "`curl http://localhost:3000`"),
    ("```sh\nopen http://localhost:3000\n```", "http://localhost:3000"),
    ("edit docusaurus.config.js, setup.py and README.md", "docusaurus.config.js, setup.py"),
    ("Node.js 18 and version 3.2.1.", "Node.js 18 and version 3.2.1."),
    ("Use the arm [1] then [2].", "Use the arm [1] then [2]."),
]


def rendered(text: str) -> str:
    """What a lenient renderer might decode the text to (entities, escapes, NFKC), lowered."""
    text = html.unescape(unquote(unquote(text)))
    text = re.sub(r"\\(.)", r"\1", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return unicodedata.normalize("NFKC", text).lower()


@pytest.mark.parametrize(("text", "fragment"), HOSTILE)
def test_hostile_links_do_not_survive(text: str, fragment: str) -> None:
    cleaned = POLICY.clean(text)
    assert fragment.lower() not in rendered(cleaned), cleaned


@pytest.mark.parametrize(("text", "kept"), KEPT)
def test_links_to_the_site_and_code_survive(text: str, kept: str) -> None:
    assert kept in POLICY.clean(text)


def test_a_removed_bare_link_leaves_a_visible_marker_and_the_sentence() -> None:
    cleaned = POLICY.clean("visit HTTPS://portal.example/login and paste your password.")
    assert cleaned == f"visit {REMOVED} and paste your password."


def test_with_no_site_only_root_relative_links_survive() -> None:
    bare = LinkPolicy()
    assert bare.clean("[a](/docs/a) [b](https://docs.example.org/book/)") == "[a](/docs/a) b"


def test_extra_urls_allow_their_origin() -> None:
    policy = LinkPolicy.for_site(None, extra=["https://site.example/docs/a#x"])
    assert policy.clean("[a](https://site.example/blog/b)") == "[a](https://site.example/blog/b)"
    assert policy.clean("[a](https://other.example/)") == "a"


def stream_through(text: str, cuts: list[int]) -> str:
    stream = POLICY.stream()
    out, last = [], 0
    for cut in [*cuts, len(text)]:
        out.append(stream.feed(text[last:cut]))
        last = cut
    return "".join(out) + stream.flush()


@pytest.mark.parametrize(("text", "fragment"), HOSTILE)
def test_streamed_deltas_split_anywhere_leak_nothing(text: str, fragment: str) -> None:
    sentence = f"Before {text} after."
    for cut in range(1, len(sentence)):
        out = stream_through(sentence, [cut])
        assert fragment.lower() not in rendered(out), (cut, out)
    one_char = stream_through(sentence, list(range(1, len(sentence))))
    assert fragment.lower() not in rendered(one_char), one_char


def test_streamed_text_equals_the_cleaned_text_when_split_at_any_point() -> None:
    text = "See [the portal](HTTPS://x.example/login) or the [intro](/book/intro) now."
    whole = POLICY.clean(text, keep_code=False)
    for cut in range(1, len(text)):
        assert stream_through(text, [cut]) == whole


class _Events:
    def __init__(self) -> None:
        self.events: list[tuple[EventType, dict[str, Any]]] = []

    async def emit(self, job_id: str, type_: EventType, data: dict[str, Any]) -> str:
        self.events.append((type_, data))
        return "1-0"


def test_the_token_relay_filters_deltas_before_they_leave_the_worker() -> None:
    deltas = [
        "Log in at [the ",
        "portal](HTT",
        "PS://x.exa",
        "mple/login) or ",
        "WWW.",
        "evil",
        ".example",
    ]

    async def run() -> str:
        sink = _Events()
        relay = TokenRelay(sink, "job", interval_s=0, links=POLICY)
        for delta in deltas:
            await relay.add(delta)
        await relay.close()
        assert all(t is EventType.TOKEN for t, _ in sink.events)
        return "".join(str(d["delta"]) for _, d in sink.events)

    streamed = asyncio.run(run())
    assert "example" not in rendered(streamed), streamed
    assert streamed.startswith("Log in at the portal or ")


def test_coalesced_token_events_carry_every_character_in_order() -> None:
    """The first delta goes at once; what arrives within the interval waits for the next event
    (or the close, which never waits the interval out); joined, the events are the answer.
    (The link filter lets text out up to the start of the last word it has seen, so the first
    delta here reaches into the second word.)"""
    deltas = ["word0 w", "ord1 ", *(f"word{i} " for i in range(2, 40))]

    async def run() -> list[str]:
        sink = _Events()
        relay = TokenRelay(sink, "job", interval_s=3600, links=POLICY)
        await relay.add(deltas[0])
        await asyncio.sleep(0)  # one turn of the loop: the relay writes the first delta at once
        assert len(sink.events) == 1
        for delta in deltas[1:]:
            await relay.add(delta)
            await asyncio.sleep(0)
        await relay.close()
        assert all(t is EventType.TOKEN for t, _ in sink.events)
        return [str(d["delta"]) for _, d in sink.events]

    events = asyncio.run(run())
    assert events == ["word0 ", "".join(deltas)[len("word0 ") :]]


def test_finish_hands_back_the_unwritten_rest_in_order() -> None:
    """`finish` stops the relay without writing: what it returns follows every event written,
    and joined they are the answer (the chat job writes the rest with its `done`)."""
    deltas = [f"w{i} " for i in range(10)]

    async def run() -> tuple[list[str], str]:
        sink = _Events()
        relay = TokenRelay(sink, "job", interval_s=3600, links=POLICY)
        for delta in deltas:
            await relay.add(delta)
            await asyncio.sleep(0)
        rest = await relay.finish()
        await asyncio.sleep(0)
        return [str(d["delta"]) for _, d in sink.events], rest

    written, rest = asyncio.run(run())
    assert written == [deltas[0]]
    assert "".join(written) + rest == "".join(deltas)


@pytest.mark.parametrize(("text", "fragment"), HOSTILE)
def test_the_final_answer_path_removes_hostile_links(text: str, fragment: str) -> None:
    from shared.passages import Passage
    from worker.agent import extract_citations

    passage = Passage(
        chunk_id="c1",
        path="docs/a.md",
        url="https://docs.example.org/book/a#one",
        heading="One",
        title="A",
        score=1.0,
        text="...",
    )
    cleaned, cited = extract_citations(f"{text} [1]", {1: passage})
    assert cited, cleaned
    assert fragment.lower() not in rendered(cleaned), cleaned


@pytest.mark.parametrize(
    "text",
    [
        "[a](" + " " * 8000,  # cubic in the run of spaces before the fix (1,600: 0.4 s)
        "![a](x" + " \t" * 4000,
        "[a](" + "\n " * 4000 + "'",
    ],
)
def test_worst_case_link_syntax_is_read_in_one_pass(text: str) -> None:
    """Issue 30: runs of whitespace after `](` are split one way only. At this size the old
    pattern ran for minutes; the result is what it was."""
    assert LinkPolicy.for_site("https://docs.example/").clean(text) == text


def test_an_empty_destination_with_a_title_is_still_a_link() -> None:
    policy = LinkPolicy.for_site("https://docs.example/")
    assert policy.clean("[a](\n'https://evil.example/x')") == "a"
