"""MDX cleanup, heading text and anchors (github-slugger semantics, custom ids, duplicates)."""

from __future__ import annotations

import pytest

from ingestion_jobs.markdown import (
    FrontmatterError,
    GithubSlugger,
    ParsedPage,
    github_slug,
    parse_page,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Hello World", "hello-world"),
        ("Speed & acceleration (per joint)", "speed--acceleration-per-joint"),
        ("docusaurus start [siteDir]", "docusaurus-start-sitedir"),
        ("1.1.1 Core Principles", "111-core-principles"),
        ("snake_case and kebab-case", "snake_case-and-kebab-case"),
        ("Ünïcode Stuff", "ünïcode-stuff"),
        ("日本語の見出し", "日本語の見出し"),
        ("Emoji 🚀 here", "emoji--here"),
        ("What's new?", "whats-new"),
        ("  padded  ", "--padded--"),
    ],
)
def test_github_slug(text: str, slug: str) -> None:
    assert github_slug(text) == slug


def test_slugger_duplicates() -> None:
    slugger = GithubSlugger()
    assert [slugger.slug(t) for t in ["Intro", "Intro", "Intro", "Intro 1"]] == [
        "intro",
        "intro-1",
        "intro-2",
        "intro-1-1",
    ]


PAGE = """---
title: Demo
tags: [a, b]
---
import Tabs from '@theme/Tabs';
import {
  Thing,
} from './thing';

export const meta = {
  a: 1,
};

# The Title

Intro with a [link](https://x.com/a_(b)) and `<Tabs>` in code.

<!-- a comment
over lines -->
{/* an MDX comment */}

## Install `lumen` **now** {#install}

<Tabs groupId="os" values={[{label: 'a', value: 'b'}]}>
  <TabItem value="npm" label="npm">

    ```bash title="shell"
    npm install lumen
    # not a heading
    ```

  </TabItem>
</Tabs>

:::tip Pro tip
Use it.
:::

## Install lumen now

Text.

## Install lumen now

| a | b |
|---|---|
| 1 | 2 |
"""


def test_parse_page_cleans_mdx_and_keeps_code_whole() -> None:
    page = parse_page(PAGE)
    assert page.frontmatter == {"title": "Demo", "tags": ["a", "b"]}
    assert page.content_title == "The Title"
    intro, install, second, third = page.sections
    assert intro.heading is None
    assert intro.text == "Intro with a link and `<Tabs>` in code."
    assert (install.heading, install.anchor, install.level) == ("Install lumen now", "install", 2)
    assert "import" not in install.text
    assert "Tabs" not in install.text
    assert "npm:" in install.text
    assert '```bash title="shell"\nnpm install lumen\n# not a heading\n```' in install.text
    assert "Pro tip:" in install.text
    assert "Use it." in install.text
    assert ":::" not in install.text
    # The explicit id is not registered: the next same heading is the plain slug, then "-1".
    assert (second.anchor, third.anchor) == ("install-lumen-now", "install-lumen-now-1")
    assert "| 1 | 2 |" in third.text
    assert "comment" not in "".join(s.text for s in page.sections)


def test_setext_heading_and_heading_in_code_block() -> None:
    page = parse_page("Title\n=====\n\nA\n\n```md\n## fake\n```\n\nSub\n---\n\nB\n")
    assert [s.heading for s in page.sections] == [None, "Sub"]
    assert page.content_title == "Title"


def test_bad_frontmatter_raises() -> None:
    with pytest.raises(FrontmatterError):
        parse_page("---\ntitle: [oops\n---\nbody")
    with pytest.raises(FrontmatterError):
        parse_page("---\n- a list\n---\nbody")


def test_magic_comments_leave_the_code_unless_a_line_range_is_given() -> None:
    page = parse_page(
        "## Code\n\n```js\n// highlight-next-line\nconst a = 1;\n```\n\n"
        "```python\n# highlight-start\nb = 2\n# highlight-end\n```\n\n"
        "```js {1}\n// highlight-next-line\nconst c = 3;\n```\n"
    )
    text = page.sections[1].text
    assert "const a = 1;" in text
    assert "b = 2" in text
    assert text.count("highlight") == 1  # only in the block with a line range


def test_heading_ids_in_every_form_docusaurus_3_accepts() -> None:
    page = parse_page(
        "## Port {/* #port */}\n\nx\n\n## Dots {#v1.2_beta}\n\nx\n\n## Case {#Upper-ID}\n\nx\n\n"
        "## Old <!-- #old -->\n\nx\n\n## Split {#a:b}\n\nx\n"
    )
    got = [(s.heading, s.anchor) for s in page.sections[1:]]
    assert got == [
        ("Port", "port"),
        ("Dots", "v1.2_beta"),
        ("Case", "Upper-ID"),
        ("Old", "old-"),
        ("Split {#a:b}", "a"),
    ]


def test_an_imported_partial_is_indexed_on_the_importing_page() -> None:
    partial = "## Proxy\n\nSet LANTERN_PROXY_URL first.\n\n## Proxy\n\nAgain.\n"
    page = parse_page(
        "import Proxy from './_proxy.mdx';\n\n## Proxy\n\nPage text.\n\n<Proxy />\n",
        include=lambda spec: (partial, None) if spec == "./_proxy.mdx" else None,
    )
    got = [(s.heading, s.anchor) for s in page.sections[1:]]
    # the partial's ids come from its own slugger: "proxy" twice on the page, as Docusaurus does
    assert got == [("Proxy", "proxy"), ("Proxy", "proxy"), ("Proxy", "proxy-1")]
    assert "LANTERN_PROXY_URL" in page.sections[2].text


def test_commonmark_files_keep_mdx_comments_as_heading_text() -> None:
    source = "## Braces {/* #not-an-id */}\n\nx\n\n## Note <!-- #no -->\n\ny\n"
    mdx = parse_page(source)
    commonmark = parse_page(source, markdown_format="detect", mdx_file=False)
    assert [(s.heading, s.anchor) for s in mdx.sections[1:]] == [
        ("Braces", "not-an-id"),
        ("Note", "note-"),
    ]
    assert [(s.heading, s.anchor) for s in commonmark.sections[1:]] == [
        ("Braces {/* #not-an-id */}", "braces--not-an-id-"),
        ("Note", "note-"),
    ]


def test_string_props_of_components_are_page_text() -> None:
    """Issue 33, item 3: a component's prose props are its text, in the order written; the
    attributes of HTML elements, links, styles and single-word tokens are not."""
    from ingestion_jobs.mdx_text import clean_body, prop_texts

    body = (
        '<Card title="Offline mode" description="Set ACME_OFFLINE=1 to work offline." '
        'href="/docs/offline" />\n'
        "<Hero\n  tagline={'Fast by default'}\n  className=\"hero hero--primary big\"\n/>\n"
        '<Lamp color="amber" note="shines in the fog at night" />\n'
        '<img alt="a diagram of the pipeline" src="x.png" title="A tooltip of the image" />\n'
    )
    text = clean_body(body, ())
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == [
        "Offline mode",
        "Set ACME_OFFLINE=1 to work offline.",
        "Fast by default",
        "shines in the fog at night",
    ]
    assert prop_texts("TabItem", 'value="apt" label="Debian"') == []  # label: a line of its own


def test_front_matter_aliases_are_expanded_within_a_budget() -> None:
    """Issue 30: 0.5 KB of nested aliases stood for a 29 MB title. Aliases may add at most
    ALIAS_EXPANSION_BUDGET to a block; ordinary anchors still work; a recursive alias is
    refused, never followed."""
    from tests.unit.test_fuzzed_site import ALIAS_BOMB

    with pytest.raises(FrontmatterError, match="aliases"):
        parse_page(f"---\n{ALIAS_BOMB}---\n\nBody.\n")
    just_over = (
        "a: &a [" + ", ".join(["x" * 100] * 100) + "]\n" + "b: [" + ", ".join(["*a"] * 11) + "]\n"
    )
    with pytest.raises(FrontmatterError, match="aliases"):
        parse_page(f"---\n{just_over}---\n\nBody.\n")
    with pytest.raises(FrontmatterError):
        parse_page("---\na: &a [*a]\n---\n\nBody.\n")
    page = parse_page("---\ntags: &t [robot, arm]\nkeywords: *t\ntitle: Arms\n---\n\nBody.\n")
    arms = ["robot", "arm"]
    assert page.frontmatter == {"tags": arms, "keywords": arms, "title": "Arms"}


def _ids(page: ParsedPage) -> list[tuple[str | None, str | None]]:
    return [(s.heading, s.anchor) for s in page.sections[1:]]


def test_inline_html_at_a_heading_start_keeps_its_space_in_the_id() -> None:
    # Measured (Docusaurus 3.10.2, fixture heading-rules): the space after a dropped element
    # stays in the slugged text, so the id starts with "-".
    source = '## <a name="old"></a> Harbour lights\n\nx\n\n## <span>Tide</span> tables\n\ny\n'
    source += '\n## Buoys <a name="b"></a>\n\nz\n'
    for commonmark in (False, True):
        page = parse_page(source, markdown_format="md" if commonmark else "mdx")
        assert _ids(page) == [
            ("Harbour lights", "-harbour-lights"),
            ("Tide tables", "tide-tables"),
            ("Buoys", "buoys-"),
        ]


def test_an_h1_in_the_body_starts_no_section_but_counts_for_the_slugger() -> None:
    page = parse_page(
        "---\ntitle: Ferry\n---\n\nIntro.\n\n## Tickets\n\nOn board.\n\n# Ferry times\n\n"
        "Pier two.\n\n## Ferry times\n\nPier three.\n"
    )
    assert _ids(page) == [("Tickets", "tickets"), ("Ferry times", "ferry-times-1")]
    assert "Ferry times" in page.sections[1].text
    assert "Pier two." in page.sections[1].text
    assert page.sections[0].text == "Intro."


def test_mdx_comments_that_set_no_id_stay_in_the_slug() -> None:
    # Issue 33 item 7, each id as the real 3.10.2 build renders it.
    page = parse_page(
        "## Mooring {/* my-id */}\n\na\n\n## Mooring {/* # */}\n\nb\n\n"
        "## {/* #custom-id */} some text\n\nc\n\n## Keel check {/* #keel */}\n\nd\n\n"
        "## Two comments {/* #one */ /* #two */}\n\ne\n"
    )
    assert _ids(page) == [
        ("Mooring", "mooring--my-id-"),
        ("Mooring", "mooring---"),
        ("some text", "-custom-id--some-text"),
        ("Keel check", "keel"),
        ("Two comments", "two-comments--one---two-"),
    ]


def test_html_comment_ids_only_without_mdx1_compat_comments() -> None:
    source = "## Harbour code <!-- #harbour -->\n\nx\n\n## Quiet note <!-- just a note -->\n\ny\n"
    compat = parse_page(source, markdown_format="md")
    plain = parse_page(source, markdown_format="md", html_comment_ids=True)
    assert _ids(compat) == [("Harbour code", "harbour-code-"), ("Quiet note", "quiet-note-")]
    assert _ids(plain) == [("Harbour code", "harbour"), ("Quiet note", "quiet-note-")]


def test_emoji_shortcodes_are_shown_as_emoji_and_slugged_as_written() -> None:
    source = (
        "## Setup :gear:\n\nTurn the :gear: dial, `:gear:` in code.\n\n## Words :nope_x: stay\n"
    )
    page = parse_page(source)
    assert _ids(page) == [("Setup ⚙️", "setup-gear"), ("Words :nope_x: stay", "words-nope_x-stay")]
    assert page.sections[1].text == "Turn the ⚙️ dial, `:gear:` in code."
    off = parse_page(source, emoji=False)
    assert _ids(off)[0] == ("Setup :gear:", "setup-gear")


def test_a_byte_order_mark_before_front_matter_is_ignored() -> None:
    page = parse_page("\ufeff---\ntitle: Saved on Windows\n---\n\n## Anchorage\n\nx\n")
    assert page.frontmatter == {"title": "Saved on Windows"}
    assert _ids(page) == [("Anchorage", "anchorage")]


def test_a_string_expression_in_a_heading_is_shown_and_slugged() -> None:
    page = parse_page("## Use {'Tabs'} here\n\nx\n\n## Keel {/* #keel */} \n\ny\n")
    assert _ids(page) == [("Use Tabs here", "use-tabs-here"), ("Keel", "keel")]
