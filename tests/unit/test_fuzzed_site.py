"""A hostile site folder (issue 8): garbled MDX, binaries named `.md`, a 20 MB page, symlink
cycles, links and config paths leading out of the site root, broken front matter, unknown JSX.
Ingestion finishes, indexes every good page, reports each bad file with a code, and never reads
outside the site root."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from ingestion_jobs.docusaurus import read_site
from ingestion_jobs.embedding import get_embedder
from ingestion_jobs.indexer import index_site
from shared.settings import EmbedderKind, Settings
from shared.vectorstore.edge import EdgeStore

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

SECRET = "OUTSIDE-THE-SITE-7f3a"
# Front matter of 0.4 KB whose aliases stand for 10**9 strings ("billion laughs", issue 30).
ALIAS_BOMB = (
    "a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol,lol]\n"
    + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 10)}]\n" for n in range(8)
    )
    + "title: *i\n"
)
JSX_BITS = [
    "<Tabs>", "</Tabs>", "<TabItem value='a' label='A'>", "</TabItem>", "<Unknown prop={1} />",
    "<Foo.Bar baz='{'>", "{/* comment", "*/}", "```js", "```", ":::tip Title", ":::", "# Head",
    "## Sub {#custom-id}", "import X from '@site/x';", "export const y = {a: 1};", "<!-- html",
    "-->", "[link](./other.md)", "![img](https://example.com/x.png)", "| a | b |", "|---|---|",
    "{props.value}", "<details><summary>S</summary>", "</details>", "\\", "`", "<", ">", "{", "}",
]  # fmt: skip


def garbled(rng: random.Random) -> str:
    """MDX-ish noise: structural tokens, words, and the odd control or astral character."""
    parts: list[str] = []
    for _ in range(rng.randint(5, 80)):
        roll = rng.random()
        if roll < 0.45:
            parts.append(rng.choice(JSX_BITS))
        elif roll < 0.85:
            parts.append(" ".join(rng.choice(["robot", "arm", "pose", "λ", "日本"]) for _ in "abc"))
        else:
            parts.append(
                "".join(chr(rng.choice([0x7F, 0x1F600, 0x202E, 0xFEFF, 0x0B])) for _ in "ab")
            )
        parts.append(rng.choice(["\n", "\n\n", " ", "\r\n"]))
    return "".join(parts)


def build_site(root: Path, outside: Path, *, fuzzed: int) -> dict[str, str]:
    """The site under `root`; returns path -> expected error code for each bad file."""
    docs = root / "docs"
    docs.mkdir(parents=True)
    (root / "docusaurus.config.js").write_text(
        "module.exports = { title: 'Fuzz', url: 'https://fuzz.example', baseUrl: '/' };\n"
    )
    outside.mkdir()
    (outside / "secret.md").write_text(f"# Secret\n\n{SECRET} must never be indexed.\n")
    (docs / "intro.md").write_text("---\ntitle: Intro\n---\n\n# Intro\n\nThe arm has six joints.\n")
    (docs / "jsx.mdx").write_text(
        "---\ntitle: Components\n---\n\nimport Thing from '@site/src/Thing';\n\n"
        "<Thing weird={{a: [1, 2]}}>\n\n## Inside {#inside}\n\nText in an unknown component.\n\n"
        "</Thing>\n\n<NeverDefined />\n"
    )
    bad: dict[str, str] = {}
    (docs / "binary.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(2048))
    bad["docs/binary.md"] = "binary"
    (docs / "latin1.md").write_bytes("# Caf\xe9\n".encode("latin-1"))
    bad["docs/latin1.md"] = "invalid_utf8"
    (docs / "huge.md").write_bytes(b"# Huge\n\n" + b"all work and no play " * 1_000_000)  # 20 MB
    bad["docs/huge.md"] = "too_large"
    (docs / "frontmatter.md").write_text("---\ntitle: [unclosed\n  - : :\n---\n\nBody.\n")
    bad["docs/frontmatter.md"] = "bad_frontmatter"
    (docs / "listmatter.md").write_text("---\n- a\n- b\n---\n\nBody.\n")
    bad["docs/listmatter.md"] = "bad_frontmatter"
    (docs / "slashid.md").write_text("---\nid: a/b\n---\n\nBody.\n")
    bad["docs/slashid.md"] = "bad_frontmatter"
    (docs / "aliasbomb.md").write_text(f"---\n{ALIAS_BOMB}---\n\n# Bomb\n\nBody.\n")
    bad["docs/aliasbomb.md"] = "bad_frontmatter"
    # Symlinks: a cycle of folders, a file linking to itself, a two-file loop, links leading out.
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    (docs / "self.md").symlink_to(docs / "self.md")
    (docs / "ping.md").symlink_to(docs / "pong.md")
    (docs / "pong.md").symlink_to(docs / "ping.md")
    bad |= dict.fromkeys(["docs/self.md", "docs/ping.md", "docs/pong.md"], "broken_symlink")
    (docs / "dangling.md").symlink_to(docs / "nowhere.md")
    bad["docs/dangling.md"] = "broken_symlink"
    (docs / "escape.md").symlink_to(outside / "secret.md")
    bad["docs/escape.md"] = "outside_site"
    (docs / "escape-dir").symlink_to(outside, target_is_directory=True)
    (docs / "dotdot.md").symlink_to(Path("..") / ".." / outside.name / "secret.md")
    bad["docs/dotdot.md"] = "outside_site"
    rng = random.Random(8)
    for n in range(fuzzed):
        (docs / f"fuzz-{n:03d}.mdx").write_text(garbled(rng), encoding="utf-8")
    return bad


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "site"
    bad = build_site(root, tmp_path / "outside", fuzzed=200)
    return root, bad


def test_reader_reports_every_bad_file_and_keeps_every_good_one(
    site: tuple[Path, dict[str, str]],
) -> None:
    root, bad = site
    read = read_site(root)
    codes = {error.path: error.code for error in read.errors}
    for path, code in bad.items():
        assert codes.get(path) == code, (path, codes.get(path))
    paths = {page.path for page in read.pages}
    assert {"docs/intro.md", "docs/jsx.mdx"} <= paths
    # Every fuzzed file is a page or a reported error; none is silently lost.
    fuzz = {f"docs/fuzz-{n:03d}.mdx" for n in range(200)}
    assert fuzz <= paths | set(codes), sorted(fuzz - paths - set(codes))[:5]
    # Nothing from outside the root, through a link, a cycle or `..`.
    assert all(page.path.startswith("docs/") for page in read.pages)
    assert not any("loop/" in page.path for page in read.pages)
    for page in read.pages:
        assert all(SECRET not in section.text for section in page.sections), page.path
    jsx = next(page for page in read.pages if page.path == "docs/jsx.mdx")
    assert any("unknown component" in section.text for section in jsx.sections)


def test_docs_folder_linked_or_configured_outside_the_root_is_not_read(tmp_path: Path) -> None:
    """A symlink out of the site, or an absolute path, is not read; a path the config names
    with a leading ``..`` (a monorepo's ``../docs``) is, since issue 25."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(f"# Secret\n\n{SECRET}\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "docs").symlink_to(outside, target_is_directory=True)
    configured = tmp_path / "configured"
    (configured / "docs").mkdir(parents=True)
    (configured / "docs" / "ok.md").write_text("# OK\n\nFine.\n")
    config = (
        "module.exports = { url: 'https://x.example', baseUrl: '/', presets: [['classic', "
        "{ docs: { path: 'PATH' }, blog: false }]] };\n"
    )
    (configured / "docusaurus.config.js").write_text(config.replace("PATH", str(outside)))
    for root in (linked, configured):
        read = read_site(root)
        texts = [s.text for page in read.pages for s in page.sections]
        assert not any(SECRET in text for text in texts), root.name
        assert all(not page.path.startswith("..") for page in read.pages), root.name
        assert {w.rule for w in read.warnings} & {"content.outside_site"}, read.warnings
    (configured / "docusaurus.config.js").write_text(config.replace("PATH", "../outside"))
    read = read_site(configured)
    assert [page.path for page in read.pages] == ["../outside/secret.md"]


def test_ingestion_of_the_fuzzed_site_finishes_and_indexes_every_good_page(
    site: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    root, bad = site
    settings = Settings(data_dir=tmp_path / "data", embedder=EmbedderKind.HASH)
    store = EdgeStore(tmp_path / "edge")
    try:
        report = index_site(
            root, store=store, embedder=get_embedder(settings), collection="fuzz", site="fuzz"
        )
        read = read_site(root)
        assert report.pages_seen == len(read.pages)
        assert {(e.path, e.code) for e in report.errors} >= set(bad.items())
        points = list(store.scroll("fuzz", fields=["path", "text"]))
        indexed = {str(p.payload["path"]) for p in points}
        with_text = {page.path for page in read.pages if any(s.text.strip() for s in page.sections)}
        assert with_text <= indexed, sorted(with_text - indexed)[:5]
        assert not any(SECRET in str(p.payload.get("text")) for p in points)
    finally:
        store.close()


def test_partials_are_bounded_and_only_regular_files_are_read(tmp_path: Path) -> None:
    """Issue 30: partials multiplied without a budget (a partial using another ten times, six
    deep, is 10**6 copies) and past the page size limit; a FIFO as a partial blocked the
    reader for good. The page with its partials must fit the limit (else it is a too_large
    error); a FIFO or a partial over the limit is not read (a warning), and the page is."""
    root = tmp_path / "site"
    docs = root / "docs"
    (docs / "_parts").mkdir(parents=True)
    for n in range(6):
        uses = "".join(f"<P{n + 1} />\n" for _ in range(10)) if n < 5 else "leaf text\n"
        head = f"import P{n + 1} from './_p{n + 1}.md';\n\n" if n < 5 else ""
        (docs / "_parts" / f"_p{n}.md").write_text(head + uses)
    (docs / "bomb.mdx").write_text("import P0 from './_parts/_p0.md';\n\n# Bomb\n\n<P0 />\n")
    os.mkfifo(docs / "_parts" / "_fifo.md")
    (docs / "fifo.mdx").write_text(
        "import F from './_parts/_fifo.md';\n\n# Fifo\n\nBefore.\n\n<F />\n\nAfter.\n"
    )
    (docs / "_parts" / "_big.md").write_text("word " * 400)
    (docs / "big.mdx").write_text(
        "import B from './_parts/_big.md';\n\n# Big\n\n" + "<B />\n" * 3 + "\nEnd.\n"
    )
    read = read_site(root, max_file_bytes=4000)
    codes = {error.path: error.code for error in read.errors}
    assert codes.get("docs/bomb.mdx") == "too_large", codes
    assert codes.get("docs/big.mdx") == "too_large", codes
    fifo = next(page for page in read.pages if page.path == "docs/fifo.mdx")
    assert "After." in " ".join(section.text for section in fifo.sections)
    assert any("_fifo.md" in w.message and "regular" in w.message for w in read.warnings)


def test_a_folder_deeper_than_path_max_is_reported(tmp_path: Path) -> None:
    """Issue 30: pages under a path longer than PATH_MAX were dropped without a word."""
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "intro.md").write_text("# Intro\n\nText.\n")
    fd = os.open(root / "docs", os.O_RDONLY)
    try:
        for _ in range(20):  # 20 * 250 characters: past PATH_MAX (4,096)
            os.mkdir("d" * 250, dir_fd=fd)
            inner = os.open("d" * 250, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        page = os.open("deep.md", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(page, b"# Deep\n\nText.\n")
        os.close(page)
    finally:
        os.close(fd)
    read = read_site(root)
    assert {page.path for page in read.pages} == {"docs/intro.md"}
    assert [error.code for error in read.errors] == ["unreadable"], read.errors
