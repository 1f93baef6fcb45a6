"""POST /internal/index: the search service writes a run's partition to LanceDB itself (and
POST /internal/chunk-ids reads a partition's chunk ids back for the run's asset check).

The service holds the table open and the pipeline's model warm; the run's email_embeddings step
hands it the partition's chunk rows, and it stores them as the step would (`embed_chunks`: the
same rows and vectors, the partition replaced in one commit, the same cache), under the same
LanceDB lock, so the run's process imports neither LanceDB nor the model (bench/RESULTS.md, the
live section). Loopback clients only, and only for its own data directory, vector store and
embedder configuration; indexing/remote.ServiceIndexer is the step's side.
"""

from __future__ import annotations

import hmac
import json
import time
from contextlib import nullcontext
from dataclasses import asdict
from datetime import date
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from mail_pipeline.indexing.remote import (
    CHUNK_IDS_PATH,
    INDEX_PATH,
    MAX_TEXTS,
    Indexed,
    arrow_from_text,
    internal_key,
)
from mail_pipeline.storage.accounts import is_loopback
from mail_pipeline.storage.locks import vectors_lock
from mail_pipeline.storage.schemas import TABLES

if TYPE_CHECKING:
    import pyarrow as pa

    from mail_pipeline.service.embed_endpoint import EmbedEndpoint

FIELDS = "data_dir, vectors, config, account, day"


class Refused(Exception):
    """A request the endpoint does not answer: the status, and the message as the error."""

    def __init__(self, status: HTTPStatus, error: str):
        super().__init__(error)
        self.status = status


class DeadlinePassed(Exception):
    """The step stopped waiting before the commit: it writes the partition itself."""


class IndexEndpoint:
    """Writes and reads partitions with the embed endpoint's warm model, one write at a time."""

    def __init__(self, embed: EmbedEndpoint):
        self.embed = embed
        settings = embed.settings
        self.data_dir = settings.data_dir.resolve()
        self.vectors_uri = str(settings.lancedb_dir)
        self.storage_url = settings.storage_url
        self.identity = {
            "data_dir": str(self.data_dir),
            "vectors": self.vectors_uri,
            "config": embed.config,
        }
        self._key: str | None = None  # read (or made) at the first request

    def answer(self, client_host: str, key: str, body: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
        """POST /internal/index {FIELDS, deadline, chunks}: `Indexed`'s fields."""
        try:
            request, account, day = self._read(
                client_host, key, body, INDEX_PATH, ", deadline, chunks"
            )
            try:
                deadline, chunks = float(request["deadline"]), arrow_from_text(request["chunks"])
            except (ValueError, KeyError, TypeError):  # pyarrow's and base64's are ValueErrors
                raise Refused(
                    HTTPStatus.BAD_REQUEST,
                    f"expected a JSON object with {FIELDS}, deadline and chunks",
                ) from None
            if not chunks.schema.equals(TABLES["email_chunks"]):
                raise Refused(
                    HTTPStatus.BAD_REQUEST, "chunks must be rows of the email_chunks table"
                )
            if chunks.num_rows > MAX_TEXTS:
                raise Refused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"at most {MAX_TEXTS} chunks per request, not {chunks.num_rows}",
                )
            self._identify(request)
            return HTTPStatus.OK, asdict(self.write(account, day, chunks, deadline))
        except Refused as refused:
            return refused.status, {"error": str(refused)}
        except DeadlinePassed:
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                "error": "the step stopped waiting: it writes the partition itself"
            }

    def chunk_ids(
        self, client_host: str, key: str, body: bytes
    ) -> tuple[HTTPStatus, dict[str, Any]]:
        """POST /internal/chunk-ids {FIELDS}: the partition's chunk ids in LanceDB."""
        from mail_pipeline.indexing.search import shared_store

        try:
            request, account, day = self._read(client_host, key, body, CHUNK_IDS_PATH, "")
            self._identify(request)
        except Refused as refused:
            return refused.status, {"error": str(refused)}
        store = shared_store(self.vectors_uri, self.embed.embedder.dimension)
        return HTTPStatus.OK, {"chunk_ids": sorted(store.chunk_ids(account, day))}

    def _read(
        self, client_host: str, key: str, body: bytes, path: str, more: str
    ) -> tuple[dict[str, Any], str, date]:
        if not is_loopback(client_host):
            raise Refused(HTTPStatus.FORBIDDEN, f"{path} answers loopback clients only")
        if self._key is None:
            try:
                self._key = internal_key(self.data_dir)
            except OSError:
                raise Refused(
                    HTTPStatus.FORBIDDEN, f"{path} cannot read the data directory's internal key"
                ) from None
        if not hmac.compare_digest(key.encode(), self._key.encode()):
            raise Refused(HTTPStatus.FORBIDDEN, f"{path} needs the data directory's internal key")
        try:
            request = json.loads(body)
            return request, str(request["account"]), date.fromisoformat(request["day"])
        except (ValueError, KeyError, TypeError):
            raise Refused(
                HTTPStatus.BAD_REQUEST, f"expected a JSON object with {FIELDS}{more}"
            ) from None

    def _identify(self, request: dict[str, Any]) -> None:
        if {name: request.get(name) for name in self.identity} != self.identity:
            raise Refused(
                HTTPStatus.CONFLICT,
                "this service serves another data directory, vector store or embedder "
                "configuration",
            )

    def write(self, account: str, day: date, chunks: pa.Table, deadline: float) -> Indexed:
        """`embed_chunks` with the warm model into the service's own store handle (the one its
        searches read), under the LanceDB lock a run's step would take."""
        from mail_pipeline.indexing.search import shared_store
        from mail_pipeline.stages.embeddings import embed_chunks

        def before_commit() -> None:
            if time.time() > deadline:
                raise DeadlinePassed

        with self.embed.lock, vectors_lock(self.data_dir, self.storage_url, exclusive=False):
            embedder = self.embed.embedder
            store = shared_store(self.vectors_uri, embedder.dimension)
            stored, embedded = embed_chunks(
                chunks.to_pylist(),
                account,
                day,
                embedder,
                lambda: nullcontext(store),
                before_commit,
            )
        by = "search service" if embedded else "nothing to embed"
        return Indexed(stored, embedded, embedder.vectors_id, by)
