"""The search service's operations as an MCP server (stdio): tools an agent calls to find and
read mail, each answer carrying the ids and dates it can cite. Read-only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mail_pipeline.service.reader import (
    MailReader,
    NotFoundError,
    NothingIndexedError,
    RequestError,
    parse_day,
)

if TYPE_CHECKING:
    from mcp.server import MCPServer

INSTRUCTIONS = (
    "Read-only access to the user's recent email (the last 30 days of the synced IMAP accounts). "
    "search_mail finds emails by meaning and words; get_email reads one, get_thread its conversation. "
    "Cite emails by their date, sender, subject and message_id."
)


@contextmanager
def _as_tool_errors() -> Iterator[None]:
    """Anticipated failures reach the agent with their message; anything else stays generic."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        yield
    except (RequestError, NotFoundError, NothingIndexedError) as error:
        raise ToolError(str(error)) from error


def _with_message_ids(reader: MailReader, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hits with their RFC 5322 Message-ID (the search index does not hold it), marks dropped."""
    ids = reader.message_ids([(hit["account"], hit["email_id"]) for hit in hits])
    return [
        {
            **{k: v for k, v in hit.items() if k != "marks"},
            "message_id": ids.get((hit["account"], hit["email_id"])),
        }
        for hit in hits
    ]


def search_hits(reader: MailReader, query: str, **filters: Any) -> list[dict[str, Any]]:
    """Through the search service when one serves this data directory, as the CLI does (its
    model is warm: milliseconds), else in this process (the first search loads the model)."""
    from mail_pipeline.service import client

    base = client.service_url(reader.settings.search_port)
    if client.serves(base, reader.settings.data_dir):
        try:
            return client.search(base, query, **filters)
        except client.ServiceFailed:
            pass  # it stopped or failed inside: search here instead
    return reader.search(query, **filters)


def build_server(reader: MailReader) -> MCPServer:
    from mcp.server import MCPServer
    from mcp.types import ToolAnnotations

    server = MCPServer("mail-pipeline", instructions=INSTRUCTIONS)
    tool = server.tool(
        annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, openWorldHint=False)
    )

    @tool
    def search_mail(
        query: str,
        account: str | None = None,
        since: str | None = None,
        until: str | None = None,
        mode: str = "hybrid",
        k: int = 10,
        exclude_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Find emails matching `query` (by meaning and words), best first. The query takes Gmail-style
        operators (from: to: cc: subject: has:attachment filename: is:unread|read|flagged|answered
        in:FOLDER account: after: before: newer_than:3d older_than:2w "phrase" -word -op:value);
        operators alone list the mail they select, newest first. Optional: account slug,
        since/until days (YYYY-MM-DD, inclusive), mode hybrid|vector|text, k results (1-100),
        exclude_deleted to leave out mail deleted on the server (hits carry deleted_at otherwise).
        Each hit: email_id, message_id, account, thread_id, sent_at, day, sender, subject, snippet."""
        with _as_tool_errors():
            hits = search_hits(
                reader,
                query,
                mode=mode,
                account=account,
                since=parse_day(since, "since"),
                until=parse_day(until, "until"),
                k=k,
                exclude_deleted=exclude_deleted,
            )
            return _with_message_ids(reader, hits)

    @tool
    def get_email(email_id: str, account: str | None = None) -> dict[str, Any]:
        """One email by its email_id: headers, dates, body text, attachments' names, folders."""
        with _as_tool_errors():
            return reader.email(email_id, account)

    @tool
    def get_thread(thread_id: str, account: str | None = None) -> dict[str, Any]:
        """A conversation by its thread_id: its emails oldest first, each with ids, date, sender."""
        with _as_tool_errors():
            return reader.thread(thread_id, account)

    @tool
    def list_accounts() -> list[dict[str, Any]]:
        """The mail accounts: slug, address, state and how much mail is stored (no secrets)."""
        with _as_tool_errors():
            return reader.accounts()

    @tool
    def sync_status() -> list[dict[str, Any]]:
        """Per account and folder: when mail was last synced, the outcome, the last error."""
        with _as_tool_errors():
            return reader.sync_status()

    return server
