"""The email_embeddings step's side of the search service's internal endpoints: the service
writes a run's partition itself (`ServiceIndexer`, POST /internal/index) or embeds its texts
(`ServiceEmbedder`, POST /internal/embed); where it cannot, the step does it in its own process.

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
import os
import secrets
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mail_pipeline.indexing.embedder import Embedder
from mail_pipeline.storage.permissions import PRIVATE_FILE, private_dir

log = logging.getLogger(__name__)
PATH = "/internal/embed"
INDEX_PATH = "/internal/index"
CHUNK_IDS_PATH = "/internal/chunk-ids"
# The index endpoints write and read any account's rows with no access token: a caller proves it
# may, as the step's process can, by reading this file of the data directory (mode 0600).
KEY_HEADER = "X-Mail-Pipeline-Internal-Key"
KEY_FILE = "internal-endpoints.key"
# One run's new chunks; more (a backfill) embed in the run's own process, so the service's
# searches never wait behind thousands of chunks.
MAX_TEXTS = 256
# A service still loading its model holds the request until it can answer.
TIMEOUT_S = 120.0
# Loopback only: an HTTP proxy from the environment must not carry the mail's text.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def internal_key(data_dir: str | Path) -> str:
    """The data directory's key for the index endpoints, made by whichever process asks first."""
    path = Path(data_dir) / KEY_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    fd, tmp = tempfile.mkstemp(prefix=f".{KEY_FILE}-", dir=private_dir(path.parent))
    try:
        os.fchmod(fd, PRIVATE_FILE)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        os.link(tmp, path)  # never over another process's key: FileExistsError, and read that
    except FileExistsError:
        pass
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.read_text().strip()


def post_json(url: str, request: dict[str, Any], key: str | None = None) -> Any:
    """The JSON answer of a POST to the service; OSError (refused, an HTTP error such as 409,
    timed out) or ValueError (not JSON) where there is none."""
    headers = {"Content-Type": "application/json", **({KEY_HEADER: key} if key else {})}
    body = urllib.request.Request(url, json.dumps(request).encode(), headers, method="POST")
    with _OPENER.open(body, timeout=TIMEOUT_S) as reply:
        return json.loads(reply.read())


def arrow_to_text(table: pa.Table) -> str:
    """A table as base64 of its Arrow IPC stream: types travel exactly (dates, UTC timestamps)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode()


def arrow_from_text(text: str) -> pa.Table:
    with pa.ipc.open_stream(base64.b64decode(text, validate=True)) as reader:
        table: pa.Table = reader.read_all()
    return table


@dataclass(frozen=True)
class Indexed:
    """What writing a partition's vectors did, wherever it ran: the rows stored, the texts the
    model embedded (the rest came from the cache), the vectors' id, and who ran the model."""

    rows: int
    embedded: int
    vectors_id: str
    embedded_by: str


class ServiceIndexer:
    """A run's partition written to LanceDB by the search service at `url`, which holds the table
    open and the model warm, so the run's process imports neither (bench/RESULTS.md, live);
    `index` returns None where the service did not write it, and the step writes it itself."""

    def __init__(self, url: str, data_dir: str, vectors_uri: str, config: Sequence[Any]):
        self.url = url.rstrip("/")
        self.data_dir = data_dir
        self.identity = {"data_dir": data_dir, "vectors": vectors_uri, "config": list(config)}

    def _post(self, path: str, request: dict[str, Any]) -> Any:
        return post_json(self.url + path, request, internal_key(self.data_dir))

    def chunk_ids(self, account: str, day: date) -> set[str] | None:
        """The chunk ids LanceDB holds for the partition, read by the service (the run's asset
        check, which otherwise imports LanceDB after the step); None where it did not answer."""
        request = {**self.identity, "account": account, "day": day.isoformat()}
        try:
            return {str(i) for i in self._post(CHUNK_IDS_PATH, request)["chunk_ids"]}
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.info("the search service did not read %s/%s (%s)", account, day, error)
            return None

    def index(self, account: str, day: date, chunks: pa.Table) -> Indexed | None:
        if chunks.num_rows > MAX_TEXTS:
            return None
        request = {
            **self.identity,
            "account": account,
            "day": day.isoformat(),
            # Past this the service writes nothing: the step, timed out, writes the rows itself.
            "deadline": time.time() + TIMEOUT_S,
            "chunks": arrow_to_text(chunks),
        }
        try:
            answer = self._post(INDEX_PATH, request)
            return Indexed(
                int(answer["rows"]),
                int(answer["embedded"]),
                str(answer["vectors_id"]),
                str(answer["embedded_by"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:  # refused, 409, timed out
            log.info(
                "the search service did not write %s/%s (%s): this process does",
                account,
                day,
                error,
            )
            return None


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
        request = {"data_dir": self.data_dir, "config": self.config, "texts": list(texts)}
        try:
            answer = post_json(self.url, request)
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
