"""A retrieved passage: what search returns to the CLI, the API and the agent."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["Passage"]


class Passage(BaseModel):
    chunk_id: str
    path: str = Field(description="Page source path relative to the site root")
    url: str = Field(description="Page URL with #anchor, as Docusaurus renders it")
    heading: str
    title: str
    score: float
    text: str
    breadcrumb: list[str] = Field(default_factory=list)
    site: str = "default"
    version: str | None = None
    locale: str | None = None
    language: str = Field("en", description="ISO 639-1 language of the page (its locale's)")
    # Cosine between the query and this passage (retrieval.py). `score` is the fused hybrid
    # score, which only reflects rank; this one means the same across queries, for declining.
    dense_score: float | None = None
