"""POST /internal/embed: the search service embeds a run's new chunks with its warm model.

A run's email_embeddings step otherwise loads the model in its own process, most of the step's
time for a run of one new message (bench/RESULTS.md, the live section). Loopback clients only;
the service answers only for its own data directory and embedder configuration, so the vectors
are the ones the step would have computed itself (indexing/remote.py is the step's side).
"""

from __future__ import annotations

import base64
import json
import threading
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from mail_pipeline.indexing.remote import MAX_TEXTS, PATH
from mail_pipeline.storage.accounts import is_loopback

if TYPE_CHECKING:
    from mail_pipeline.indexing.embedder import Embedder
    from mail_pipeline.settings import Settings

MAX_BODY_BYTES = 8 * 1024 * 1024


class EmbedEndpoint:
    """The document embedder of the pipeline's configuration, shared by all requests."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.config = list(settings.embedder_config)
        self.lock = threading.Lock()  # one embedding at a time: it uses every core anyway

    @property
    def embedder(self) -> Embedder:
        from mail_pipeline.indexing.embedder import shared_embedder

        return shared_embedder(*self.settings.embedder_config)

    def warm_up(self) -> None:
        """Load the pipeline's runtime (it may differ from the queries' torch) before the service
        says it serves: loaded beside the first searches, it held them past 10 s under load."""
        with self.lock:
            self.embedder.encode(["warm up the document embedder"])

    def answer(self, client_host: str, body: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
        """The status and JSON answer to a request `{"data_dir", "config", "texts"}`."""
        if not is_loopback(client_host):
            return HTTPStatus.FORBIDDEN, {"error": f"{PATH} answers loopback clients only"}
        try:
            request = json.loads(body)
            texts, config, data_dir = request["texts"], request["config"], request["data_dir"]
        except (ValueError, KeyError, TypeError):
            return HTTPStatus.BAD_REQUEST, {
                "error": "expected a JSON object with data_dir, config and texts"
            }
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return HTTPStatus.BAD_REQUEST, {"error": "texts must be a list of strings"}
        if len(texts) > MAX_TEXTS:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {
                "error": f"at most {MAX_TEXTS} texts per request, not {len(texts)}"
            }
        if data_dir != str(self.settings.data_dir.resolve()) or config != self.config:
            return HTTPStatus.CONFLICT, {
                "error": "this service serves another data directory or embedder configuration"
            }
        with self.lock:
            embedder = self.embedder
            vectors = embedder.encode(texts)
            return HTTPStatus.OK, {
                "vectors_id": embedder.vectors_id,
                "dimension": embedder.dimension,
                "vectors": base64.b64encode(vectors.astype("<f4").tobytes()).decode(),
            }
