"""The parts of a reader's question: "How do I install Lumen and set soft limits?" asks two
things, each answered by its own section (often on its own page), so each is searched and
answered on its own, and a part the site does not cover is said to be so while the others are
answered (worker/offline_model.py; the LLM's instructions in worker/agent.py ask the same).

A question splits where a second question starts: after a "?" that more text follows, or at
"and" / "or" / ";" / "," followed by a question word ("..., and what are soft limits?") when
what comes before asks something too (not "If I ..., how ...?"), or,
in a "how do I <do A> and <do B>" question, at "and" followed by a verb of doing (the lead
"How do I" is carried over to the second part). A part must have a topic word of its own
(worker/decline_rule.py's `topic_terms`), else it stays with its neighbour: "What are
max_speed and max_accel?" is one question about one section. A part that asks nothing (a
note after the question) stays with the one before too.
"""

from __future__ import annotations

import re

from worker.decline_rule import topic_terms

__all__ = ["MAX_PARTS", "question_parts"]

#: More parts than this are asked as one question (each part costs a search).
MAX_PARTS = 3

# "when" asks only before a verb ("When does it run?"); else it says when ("When I build, ...").
_QUESTION_WORD = (
    r"how|what|what's|whats|where|which|why|who|can|could|does|do|is|are|should|will|would"
    r"|when\s+(?:do|does|did|is|are|was|were|can|should|will|would)"
)
# "..., and what are soft limits?", "; how do I ..." ("or when ..." adds a case, not a question)
_NEW_QUESTION = re.compile(
    rf"\s*(?:[,;]\s*(?:and|but|also)?|\s(?:and|but|also))\s+(?=(?:{_QUESTION_WORD})\b)",
    re.I,
)
# "How do I" / "How can we" / "Where should I": the lead a second verb shares.
_LEAD = re.compile(
    r"^\s*((?:how|where|when)\s+(?:do|can|could|should|would|must)\s+(?:i|we|you)\s+)", re.I
)
# Verbs readers chain after "and" in a how-to question ("install Lumen and *set* soft limits").
_DOING = (
    r"add|build|change|check|configure|connect|create|define|delete|deploy|disable|enable|"
    r"find|fix|get|install|launch|limit|lower|make|move|raise|remove|rename|reset|restart|"
    r"run|send|set|show|start|stop|switch|test|tune|turn|update|upgrade|use|verify|write"
)
# A clause that asks: a question word, or a request ("show me", "set ...").
_ASKS = re.compile(rf"^\s*(?:{_QUESTION_WORD}|{_DOING}|explain|give|list|tell)\b", re.I)
_CONTEXT_END = re.compile(r"(?<=[.:;,\-])\s+")
_SECOND_VERB = re.compile(rf"\s+and\s+(?:then\s+)?(?=(?:{_DOING})\b)", re.I)
_SENTENCE = re.compile(r"(?<=\?)\s+(?=\S)")


def question_parts(question: str) -> list[str]:
    """The parts of `question` in the reader's order (one part: the question as it is).

    Each part is a question of its own ("How do I set soft limits?"), fit to search for and to
    answer; at most MAX_PARTS (beyond that, the question stays whole)."""
    parts: list[str] = []
    for sentence in _SENTENCE.split(question.strip()):
        clauses = _NEW_QUESTION.split(sentence)
        while len(clauses) > 1 and not _asks(clauses[0]):
            # "If I hand it in late, how much does it cost?", "For the capstone, which releases
            # ...": what comes before the question word is its context, not a question.
            clauses = [f"{clauses[0]}, {clauses[1]}", *clauses[2:]]
        for clause in clauses:
            parts.extend(_verb_parts(clause))
    parts = _merged(parts)
    if not 1 < len(parts) <= MAX_PARTS:
        return [question]
    return parts


def _asks(clause: str) -> bool:
    """The clause asks something, maybe after its context ("Upgrading to v3: which versions
    ...", "For the capstone, which releases ...", "I write a plugin. How do I ...")."""
    return any(_ASKS.match(piece) for piece in _CONTEXT_END.split(clause))


def _verb_parts(clause: str) -> list[str]:
    lead = _LEAD.match(clause)
    if lead is None:
        return [clause]
    pieces = _SECOND_VERB.split(clause)
    return [pieces[0], *(f"{lead.group(1)}{piece}" for piece in pieces[1:])]


def _merged(parts: list[str]) -> list[str]:
    """Parts that ask something and have a topic word of their own; another is joined back
    to the one before ("specs for the course? cpu ram disk", "How do I X? <!-- a note -->")."""
    out: list[str] = []
    for part in (p.strip(" ,;") for p in parts):
        if not part:
            continue
        if out and (not topic_terms(part) or not _ASKS.match(part)):
            out[-1] = f"{out[-1]} {part}"
            continue
        out.append(part)
    return [p if p.endswith("?") else f"{p}?" for p in out]
