"""Prompt-injection screening of what a reader sends (the question and the highlighted text).

The agent's instructions already tell the model that questions, selections and passages are
data; this is the second, model-independent layer. A message that tries to change the bot's
rules (ignore/override instructions, fake system or role blocks, requests for the system prompt,
tracking images or links to fill in, instructions hidden in base64) is declined outright: the
job succeeds with `refused: true` and nothing the message asked for is done.
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["injection_reason"]

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.I | re.S))
    for reason, pattern in (
        (
            "override",
            r"\b(ignore|disregard|forget|override|bypass|skip)\b[^.\n]{0,40}\b"
            r"(previous|prior|above|earlier|all|your|the|any)\b[^.\n]{0,30}\b"
            r"(instructions?|rules?|prompts?|guidelines?|directives?|constraints?)\b",
        ),
        (
            "override",
            r"\b(new|updated|real)\s+(instructions?|rules?|system\s+prompt)\s*[:\-]",
        ),
        (
            "role_block",
            r"(^|\n)\s*(#{1,6}\s*|\[|<\|?|<<)?\s*(system|developer|assistant)\s*(\]|\|?>|>>)?\s*:",
        ),
        ("role_block", r"<\|?(im_start|im_end|system|endoftext)\|?>"),
        (
            "prompt_leak",
            r"\b(reveal|print|show|repeat|output|tell me|paste|dump)\b[^.\n]{0,40}"
            r"\b(system prompt|your (instructions|prompt|rules)|hidden (prompt|instructions)"
            r"|every document|all (the )?documents|your index)\b",
        ),
        ("exfiltration", r"!\[[^\]]*\]\(\s*(https?:)?//"),
        (
            "exfiltration",
            r"\b(append|add|include|embed|insert)\s+(this|these|the following)\b[^.\n]{0,30}"
            r"\b(image|link|url|pixel)\b",
        ),
        (
            "persona",
            r"\b(you are now|act as|pretend (to be|you are)|roleplay as|from now on,? you)\b",
        ),
        (
            "override",
            r"\b(retrieval|search|tools?)\s+(is|are)\s+(disabled|off|unavailable)\b"
            r"|answer from (your )?memory",
        ),
        (
            "follow_encoded",
            r"\b(decode|base64|rot13|hex)\b[^.\n]{0,60}\b(do|follow|execute|obey|run)\b",
        ),
        (
            "credentials",
            r"\b(password|passphrase|2fa code|api key|secret key)\b[^.\n]{0,40}"
            r"\b(sign in|log ?in|enter|send|give)\b",
        ),
    )
)

_BASE64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")


def _decoded_payloads(text: str) -> list[str]:
    """Text hidden as base64 inside the message, so encoded instructions are screened too."""
    decoded: list[str] = []
    for blob in _BASE64.findall(text):
        padded = blob + "=" * (-len(blob) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            continue
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if sum(ch.isprintable() or ch.isspace() for ch in value) >= 0.9 * len(value):
            decoded.append(value)
    return decoded


def injection_reason(*texts: str | None) -> str | None:
    """Why these reader-supplied texts look like an injection attempt, or None."""
    for text in texts:
        if not text:
            continue
        for candidate in (text, *_decoded_payloads(text)):
            for reason, pattern in _PATTERNS:
                if pattern.search(candidate):
                    return reason
    return None
