"""The email_embeddings step's encoder: the search service's warm model when it runs, else the
step's own (loaded in the run's process, as without a service).

A run for one new message spent most of its embeddings step loading the model (bench/RESULTS.md,
the live section); the service (`mail-pipeline serve`, started by `mail-pipeline run`) keeps the
same model loaded for queries. It embeds only for its own data directory and the same embedder
configuration, and encodes the step's texts in one call, as the step would: the same batches,
the same vectors (mail_pipeline_tests/test_embed_service.py compares them bit for bit).
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mail_pipeline.indexing.embedder import Embedder

log = logging.getLogger(__name__)
PATH = "/internal/embed"
# One run's new chunks; more (a backfill) embed in the run's own process, so the service's
# searches never wait behind thousands of chunks.
MAX_TEXTS = 256
# A service still loading its model holds the request until it can answer.
TIMEOUT_S = 120.0
# Loopback only: an HTTP proxy from the environment must not carry the mail's text.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServiceEmbedder:
    """Texts -> vectors through the search service at `url`; `local()` where it cannot answer."""

    def __init__(
        self, url: str, data_dir: str, config: Sequence[Any], local: Callable[[], Embedder]
    ):
        self.url = url.rstrip("/") + PATH
        self.data_dir = data_dir
        self.config = list(config)
        self.local = local
        self._answers = True  # until the service fails once: then the rest is local
        self._described: tuple[str, int] | None = None
        self._embedded_by = "nothing yet"

    def _ask(self, texts: Sequence[str]) -> np.ndarray | None:
        body = json.dumps({"data_dir": self.data_dir, "config": self.config, "texts": list(texts)})
        request = urllib.request.Request(
            self.url, body.encode(), {"Content-Type": "application/json"}, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=TIMEOUT_S) as reply:
                answer = json.loads(reply.read())
            vectors = np.frombuffer(base64.b64decode(answer["vectors"]), dtype="<f4")
            self._described = (str(answer["vectors_id"]), int(answer["dimension"]))
            return vectors.reshape(len(texts), self._described[1]).astype(np.float32)
        except (OSError, ValueError, KeyError, TypeError) as error:  # refused, 409, timed out
            log.info(
                "the search service did not embed (%s): the model loads in this process", error
            )
            self._answers = False
            return None

    def _description(self) -> tuple[str, int] | None:
        if self._described is None and self._answers:
            self._ask([])
        return self._described if self._answers else None

    @property
    def vectors_id(self) -> str:
        described = self._description()
        return described[0] if described else self.local().vectors_id

    @property
    def dimension(self) -> int:
        described = self._description()
        return described[1] if described else self.local().dimension

    @property
    def embedded_by(self) -> str:
        """Which process ran the model for the last `encode`."""
        return self._embedded_by

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Float32, L2-normalized, shape (len(texts), dimension), as `Embedder.encode`."""
        if self._answers and 0 < len(texts) <= MAX_TEXTS:
            vectors = self._ask(texts)
            if vectors is not None:
                self._embedded_by = "search service"
                return vectors
        local = self.local()
        self._embedded_by = local.embedded_by
        return local.encode(texts)
