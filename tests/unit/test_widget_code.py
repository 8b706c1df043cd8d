"""One definition of "code" (issue 30, item 2): the widget's Markdown reader shows as code exactly
what the server's link policy leaves as written as code, so no link the policy kept because it
was code becomes clickable. A differential corpus runs through both: the policy in Python, the
widget's renderer (api/static/widget.js, its utilities and Markdown sections) in node."""

from __future__ import annotations

import html
import json
import random
import re
import shutil
import subprocess

import pytest

from shared.link_policy import LinkPolicy
from shared.link_syntax import CODE, CODE_TAIL
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(shutil.which("node") is None, reason="needs node"),
]

EVIL = "https://evil.example/steal"
SITE = "https://docs.example/book/"

# The two sections of the widget that hold escapeHtml, safeUrl and renderMarkdown.
_SECTIONS = re.compile(r"// -+ small utilities\n(?P<body>.*?)\n  // -+ styles", re.S)
_RUNNER = """
const location = {href: "https://docs.example/book/intro", origin: "https://docs.example",
  pathname: "/book/intro"};
const config = {};
const document = {querySelector: () => null};
WIDGET_MARKDOWN
const texts = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(texts.map(t => renderMarkdown(t, () => null))));
"""

HANDWRITTEN = [
    # Each of these was code to the policy (link left as written) and a clickable link in the
    # widget before the fix.
    "``a ` [x](https://evil.example/steal) ` b``",
    "`one\n[x](https://evil.example/steal)\ntwo`",
    "```\ncode\n```foo\n[x](https://evil.example/steal)\n```",
    "```a`b\n[x](https://evil.example/steal)\n```",
    "```\ncode\n```\r\n[x](https://evil.example/steal)\n```",
    "```\ncode\n```\x00\n[x](https://evil.example/steal)\n```",
    "`a` ```\n[x](https://evil.example/steal)",
    # Prose around code is still cleaned, code still shown as code.
    "see [x](https://evil.example/steal) and `[y](https://evil.example/steal)`",
    "```js\nfetch('https://evil.example/steal')\n```\nthen [ok](https://docs.example/book/a)",
    "    ```\n[x](https://evil.example/steal)\n    ```",
    "~~~\n[x](https://evil.example/steal)\n~~~~\n",
]

_TOKENS = [
    "`",
    "``",
    "```",
    "````",
    "~~~",
    "\n",
    "\n\n",
    " ",
    "   ",
    "    ",
    "\t",
    "\r",
    "\r\n",
    "a",
    "x y",
    f"[x]({EVIL})",
    EVIL,
    "[",
    "](",
    ")",
    "~",
    "- ",
    "1. ",
    "# ",
    "\x00",
    "\u2028",
    "**",
    "[1]",
]


def _corpus() -> list[str]:
    rng = random.Random(30)
    generated = ["".join(rng.choices(_TOKENS, k=rng.randint(2, 14))) for _ in range(3000)]
    return HANDWRITTEN + generated


def _render_in_node(texts: list[str]) -> list[str]:
    source = (ROOT / "api/static/widget.js").read_text()
    match = _SECTIONS.search(source)
    assert match is not None, "widget.js sections moved"
    out = subprocess.run(
        ["node", "-e", _RUNNER.replace("WIDGET_MARKDOWN", match.group("body"))],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
    )
    rendered: list[str] = json.loads(out.stdout)
    return rendered


def _server_code(text: str) -> list[str]:
    """What the policy leaves as code (as LinkPolicy.clean reads it), as the widget shows it."""
    shown: list[str] = []

    def fence(whole: str, *, closed: bool) -> str:
        lines = re.sub(r"\r\n?", "\n", whole).replace("\x00", "").split("\n")
        return "\n".join(lines[1:-1] if closed else lines[1:])

    last = 0
    for match in CODE.finditer(text):
        if match.group("fence"):
            shown.append(fence(match.group(0), closed=True))
        else:
            ticks = len(match.group("ticks"))
            inner = match.group(0)[ticks:-ticks]
            shown.append(re.sub(r"\r\n?|\n", " ", inner).replace("\x00", ""))
        last = match.end()
    tail = CODE_TAIL.search(text[last:])
    if tail is not None:
        shown.append(fence(text[last + tail.start() :], closed=False))
    return shown


def _widget_code(rendered: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<code>(.*?)</code>", rendered, re.S)]


def test_the_widget_reads_code_as_the_link_policy_does() -> None:
    policy = LinkPolicy.for_site(SITE)
    texts = [policy.clean(t) for t in _corpus()]
    rendered = _render_in_node(texts)
    disagreements = [
        (text, _server_code(text), _widget_code(out))
        for text, out in zip(texts, rendered, strict=True)
        if _server_code(text) != _widget_code(out)
    ]
    assert not disagreements, disagreements[:5]
    clickable = [
        (text, out)
        for text, out in zip(texts, rendered, strict=True)
        if re.search(r'<a [^>]*href="https://evil', out)
    ]
    assert not clickable, clickable[:5]
