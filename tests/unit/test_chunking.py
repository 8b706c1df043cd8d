"""Chunk bounds, overlap, code integrity, ids and URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion_jobs.chunking import chunk_page, embedding_text, estimate_tokens
from ingestion_jobs.documents import Page, Section
from ingestion_jobs.docusaurus import read_site

pytestmark = pytest.mark.unit

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample-site"


def make_page(*sections: Section) -> Page:
    return Page("docs/p.md", "https://ex.com/docs/p", "P", "desc", "h", tuple(sections))


def sentences(count: int, word: str = "alpha") -> str:
    return " ".join(f"Sentence {i} about {word} goes here." for i in range(count))


def test_long_section_is_bounded_and_overlaps() -> None:
    section = Section("Long", "long", 2, ("P", "Long"), sentences(80))
    chunks = chunk_page(make_page(section), max_tokens=120, overlap_tokens=20)
    assert len(chunks) > 3
    for chunk in chunks:
        assert estimate_tokens(embedding_text(chunk)) <= 120
        assert chunk.url == "https://ex.com/docs/p#long"
        assert chunk.heading == "Long"
    for previous, current in zip(chunks, chunks[1:], strict=False):
        first_sentence = current.text.split(". ", 1)[0]
        assert first_sentence in previous.text  # the next chunk starts with carried-over text


def test_code_block_is_never_split_when_it_fits() -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(20)) + "\n```"
    text = sentences(10) + "\n\n" + code + "\n\n" + sentences(10)
    chunks = chunk_page(make_page(Section("S", "s", 2, ("P", "S"), text)), max_tokens=150)
    assert sum(code in c.text for c in chunks) == 1


def test_oversized_code_block_is_split_into_fenced_pieces() -> None:
    code = "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(200)) + "\n```"
    chunks = chunk_page(make_page(Section("S", "s", 2, ("P", "S"), code)), max_tokens=100)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.text.startswith("```python\n")
        assert chunk.text.endswith("\n```")
        assert estimate_tokens(embedding_text(chunk)) <= 100


def test_ids_are_deterministic_and_unique() -> None:
    page = make_page(
        Section(None, None, 1, ("P",), "intro text"),
        Section("A", "a", 2, ("P", "A"), sentences(60)),
    )
    first = chunk_page(page, site="s1", max_tokens=100)
    again = chunk_page(page, site="s1", max_tokens=100)
    other = chunk_page(page, site="s2", max_tokens=100)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    assert not {c.id for c in first} & {c.id for c in other}
    assert first[0].url == "https://ex.com/docs/p"
    assert first[0].heading == "P"
    assert first[0].content_hash != first[1].content_hash


def test_empty_parent_heading_stays_citable_and_empty_page_yields_a_chunk() -> None:
    page = make_page(
        Section(None, None, 1, ("P",), ""),
        Section("Exercise 3", "exercise-3", 2, ("P", "Exercise 3"), ""),
        Section("Task", "task", 3, ("P", "Exercise 3", "Task"), "Lift the cup."),
    )
    chunks = chunk_page(page)
    assert [(c.heading, c.url.rsplit("#", 1)[-1]) for c in chunks] == [
        ("Exercise 3", "exercise-3"),
        ("Task", "task"),
    ]
    assert "### Task" in chunks[0].text
    empty = chunk_page(make_page(Section(None, None, 1, ("P",), "")))
    assert len(empty) == 1
    assert empty[0].text == "desc"


def test_sample_site_chunks_carry_breadcrumbs_and_anchors() -> None:
    read = read_site(SAMPLE)
    chunks = [c for p in read.pages for c in chunk_page(p)]
    by_heading = {c.heading: c for c in chunks}
    verify = by_heading["Verify the install"]
    assert verify.url.endswith("/getting-started/installation#verify")
    assert verify.breadcrumb == ("Installing Lumen", "Verify the install")
    assert embedding_text(verify).startswith("Installing Lumen > Verify the install\n\n")
    stuck = by_heading["The arm does not move"]
    assert stuck.breadcrumb == ("Your first move", "Troubleshooting", "The arm does not move")
    assert any(c.url.endswith("first-move#troubleshooting-1") for c in chunks)
    speed = by_heading["Speed & acceleration limits (per joint)"]
    assert speed.url.endswith("#speed--acceleration-limits-per-joint")
    assert by_heading["Waypoints in lumen.yaml"].url.endswith("#waypoints-in-lumenyaml")
    assert all("Servo tuning" not in c.title for c in chunks)


def test_a_long_table_keeps_its_header_in_every_chunk_and_one_row_per_line() -> None:
    from ingestion_jobs.documents import Page, Section

    rows = "\n".join(f"| key_{i} | {i * 10} | {i}s |" for i in range(1, 61))
    table = f"| Name | Default | Timeout |\n| --- | --- | --- |\n{rows}"
    section = Section("All settings", "all-settings", 2, ("Settings", "All settings"), table)
    page = Page("docs/s.md", "https://ex.com/s", "Settings", "", "h", (section,))
    chunks = chunk_page(page, max_tokens=120)
    assert len(chunks) > 2
    for chunk in chunks:
        lines = chunk.text.split("\n")
        assert lines[:2] == ["| Name | Default | Timeout |", "| --- | --- | --- |"]
        assert all(line.startswith("| key_") and line.endswith("s |") for line in lines[2:])
    held = [line for chunk in chunks for line in chunk.text.split("\n")[2:]]
    assert held == rows.split("\n")
