"""What any text or URL a client sends must be before it is stored or queued (issue 16, item 7).

Used as pydantic types (`PlainText`, `PageUrl`) by the request models, and as plain functions
(`check_plain_text`, `check_page_url`) where a value arrives outside a model (ChatKit's request
metadata, headers). Each raises ValueError with a message a client can act on; the API turns it
into a 422 `validation_error`.

Rules and why:
- No C0/C1 control characters other than tab, newline and carriage return, and no lone UTF-16
  surrogates: PostgreSQL refuses NUL in text (`invalid byte sequence`), a surrogate cannot be
  encoded as UTF-8, and neither belongs in a question, a comment or a URL.
- A page URL is an absolute `http`/`https` URL with a host, at most 2,048 characters (the
  history column's bound), with no whitespace: a `javascript:` or `data:` "page" is not a page
  the reader is on, and the worker uses it to prefer that page's passages.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator

__all__ = [
    "MAX_URL_CHARS",
    "PageUrl",
    "PlainText",
    "check_page_url",
    "check_plain_text",
]

MAX_URL_CHARS = 2048
_ALLOWED_CONTROLS = frozenset("\t\n\r")


def check_plain_text(value: str) -> str:
    """`value` unchanged, or ValueError when it holds a control character or a surrogate."""
    for ch in value:
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _ALLOWED_CONTROLS) or category == "Cs":
            raise ValueError(f"control characters (U+{ord(ch):04X}) are not allowed")
    return value


def check_page_url(value: str) -> str:
    """`value` stripped, or ValueError unless it is an absolute http(s) URL with a host."""
    value = check_plain_text(value).strip()
    if len(value) > MAX_URL_CHARS:
        raise ValueError(f"a URL must be at most {MAX_URL_CHARS} characters")
    if any(ch.isspace() for ch in value):
        raise ValueError("a URL must not contain whitespace")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as error:
        raise ValueError(f"not a URL: {error}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError("the page URL must be an absolute http(s) URL")
    return value


PlainText = Annotated[str, AfterValidator(check_plain_text)]
PageUrl = Annotated[str, AfterValidator(check_page_url)]
