"""A local HTTPS webhook receiver for tests: asyncio + h11 in the test's own event loop, with a
certificate from its own CA (trustme), recording what it receives and answering as a test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11
import trustme


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver saw it (header names lower-case)."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        """The Optix-Event-Id header."""
        return self.headers.get("optix-event-id", "")


@dataclass(frozen=True)
class Reply:
    """What the receiver answers."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()


Responder = Callable[[ReceivedRequest], Awaitable[Reply]]


async def acknowledge(_request: ReceivedRequest) -> Reply:
    """Answer 204."""
    return Reply(204)


@dataclass
class WebhookReceiver:
    """An HTTPS server on 127.0.0.1 whose certificate names `cert_hostnames` (not the IP)."""

    ca: trustme.CA
    cert_hostnames: tuple[str, ...] = ("localhost",)
    responder: Responder = acknowledge
    requests: list[ReceivedRequest] = field(default_factory=list)
    # The TLS server names (SNI) clients asked for.
    server_names: list[str | None] = field(default_factory=list)
    # Set on close: responders that hang ("slow answers") wait on it.
    release: asyncio.Event = field(default_factory=asyncio.Event)
    max_concurrent_per_event: int = 0
    _in_flight: Counter[str] = field(default_factory=Counter)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> None:
        """Listen on an ephemeral port."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*self.cert_hostnames).configure_cert(context)
        context.sni_callback = self._sni
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=context)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/hooks/optix", host: str = "localhost") -> str:
        """An https:// URL of this receiver under `host` (which must resolve to 127.0.0.1)."""
        return f"https://{host}:{self.port}{path}"

    async def close(self) -> None:
        """Stop listening and end every open exchange."""
        self.release.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5)

    def _sni(self, _sock: ssl.SSLObject, name: str | None, _context: ssl.SSLContext) -> None:
        self.server_names.append(name)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            connection = h11.Connection(h11.SERVER)
            request = await _read_request(connection, reader)
            if request is None:
                return
            self.requests.append(request)
            self._in_flight[request.event_id] += 1
            self.max_concurrent_per_event = max(
                self.max_concurrent_per_event, self._in_flight[request.event_id]
            )
            try:
                reply = await self.responder(request)
            finally:
                self._in_flight[request.event_id] -= 1
            writer.write(_response(connection, reply))
            await writer.drain()
        except (ConnectionError, ssl.SSLError, h11.ProtocolError):
            # The sender gave up on this exchange (a timeout): nothing to answer.
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()


async def _read_request(
    connection: h11.Connection, reader: asyncio.StreamReader
) -> ReceivedRequest | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await reader.read(65536))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return ReceivedRequest(
                method=head.method.decode(),
                target=head.target.decode(),
                headers={name.decode().lower(): value.decode() for name, value in head.headers},
                body=bytes(body),
            )
        else:
            return None


def _response(connection: h11.Connection, reply: Reply) -> bytes:
    headers = [("Content-Length", "0"), ("Connection", "close"), *reply.headers]
    head = connection.send(h11.Response(status_code=reply.status, headers=headers)) or b""
    return head + (connection.send(h11.EndOfMessage()) or b"")


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A verifying client context that trusts `ca` and nothing else."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(context)
    return context
