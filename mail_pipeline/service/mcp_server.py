"""The search service's operations as an MCP server: tools an agent calls to find and read mail,
each answer carrying the ids and dates it can cite. Read-only.

Over stdio (`mail-pipeline mcp`) it reads the data directory as its user may. Over HTTP (`/mcp`
of `serve`, service/mcp_http.py) each call reads as the caller the web server authenticated:
through a reader scoped to its token's accounts, audited like the routes of the page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from mcp.server.mcpserver import Context

from mail_pipeline.access.audit import AuditLog, touched
from mail_pipeline.access.gate import Caller
from mail_pipeline.service.reader import (
    MailReader,
    NotFoundError,
    NothingIndexedError,
    RequestError,
    parse_day,
)

if TYPE_CHECKING:
    from mcp.server import MCPServer

T = TypeVar("T")
# Where the web server leaves the authenticated `Caller` in an /mcp request's ASGI scope.
CALLER_KEY = "mail_pipeline.caller"

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


def search_hits(
    reader: MailReader, query: str, via_service: bool = True, **filters: Any
) -> list[dict[str, Any]]:
    """Through the search service when one serves this data directory, as the CLI does (its
    model is warm: milliseconds), else in this process (the first search loads the model)."""
    from mail_pipeline.service import client

    if not via_service:  # this process is the service
        return reader.search(query, **filters)
    base = client.service_url(reader.settings.search_port)
    if client.serves(base, reader.settings.data_dir):
        try:
            return client.search(base, query, **filters)
        except client.ServiceFailed:
            pass  # it stopped or failed inside: search here instead
    return reader.search(query, **filters)


class Calls:
    """How a tool call reads: as the process (stdio), or as the HTTP request's caller, audited."""

    def __init__(self, reader: MailReader, audit: AuditLog | None = None):
        self.reader = reader
        self.audit = audit  # None over stdio: no caller to scope to or to audit

    def _caller(self, ctx: Context | None) -> Caller:
        request = ctx.request_context.request if ctx is not None else None
        caller = getattr(request, "scope", {}).get(CALLER_KEY)
        if not isinstance(caller, Caller):  # the web server sets it on every /mcp request
            raise RuntimeError("an MCP call over HTTP reached a tool without its caller")
        return caller

    def run(
        self, ctx: Context | None, tool: str, work: Callable[[MailReader], T], admin: bool = False
    ) -> T:
        from mcp.server.mcpserver.exceptions import ToolError

        if self.audit is None:
            with _as_tool_errors():
                return work(self.reader)
        caller = self._caller(ctx)
        outcome, result = 400, None
        try:
            if admin and not caller.admin:
                outcome = 403
                raise ToolError(f"{tool} needs an admin token (token add --admin)")
            with _as_tool_errors():
                result = work(self.reader.scoped(caller.allowed))
            outcome = 200
            return result
        finally:
            accounts, count = touched(result) if outcome == 200 else ([], None)
            self.audit.record(
                token=caller.name,
                route=f"mcp {tool}",
                status=outcome,
                accounts=accounts,
                results=count,
                client="mcp",
            )


def build_server(reader: MailReader, audit: AuditLog | None = None) -> MCPServer:
    """The tools over `reader`; with `audit`, for HTTP: scoped to each call's caller."""
    from mcp.server import MCPServer
    from mcp.types import ToolAnnotations

    calls = Calls(reader, audit)
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
        ctx: Context | None = None,
    ) -> list[dict[str, Any]]:
        """Find emails matching `query` (by meaning and words), best first. The query takes Gmail-style
        operators (from: to: cc: subject: has:attachment filename: is:unread|read|flagged|answered
        in:FOLDER account: after: before: newer_than:3d older_than:2w "phrase" -word -op:value);
        operators alone list the mail they select, newest first. Optional: account slug,
        since/until days (YYYY-MM-DD, inclusive), mode hybrid|vector|text, k results (1-100),
        exclude_deleted to leave out mail deleted on the server (hits carry deleted_at otherwise).
        Each hit: email_id, message_id, account, thread_id, sent_at, day, sender, subject, snippet."""

        def work(scoped: MailReader) -> list[dict[str, Any]]:
            hits = search_hits(
                scoped,
                query,
                via_service=audit is None,
                mode=mode,
                account=account,
                since=parse_day(since, "since"),
                until=parse_day(until, "until"),
                k=k,
                exclude_deleted=exclude_deleted,
            )
            return _with_message_ids(scoped, hits)

        return calls.run(ctx, "search_mail", work)

    @tool
    def get_email(
        email_id: str, account: str | None = None, ctx: Context | None = None
    ) -> dict[str, Any]:
        """One email by its email_id: headers, dates, body text, attachments' names, folders."""
        return calls.run(ctx, "get_email", lambda scoped: scoped.email(email_id, account))

    @tool
    def get_thread(
        thread_id: str, account: str | None = None, ctx: Context | None = None
    ) -> dict[str, Any]:
        """A conversation by its thread_id: its emails oldest first, each with ids, date, sender."""
        return calls.run(ctx, "get_thread", lambda scoped: scoped.thread(thread_id, account))

    @tool
    def list_accounts(ctx: Context | None = None) -> list[dict[str, Any]]:
        """The mail accounts: slug, address, state and how much mail is stored (no secrets)."""
        return calls.run(ctx, "list_accounts", lambda scoped: scoped.accounts())

    @tool
    def sync_status(ctx: Context | None = None) -> list[dict[str, Any]]:
        """Per account and folder: when mail was last synced, the outcome, the last error."""
        return calls.run(ctx, "sync_status", lambda scoped: scoped.sync_status(), admin=True)

    return server
