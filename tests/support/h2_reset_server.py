"""An HTTP/2 peer that starts every gRPC response, sends one message and then resets the
stream (RST_STREAM INTERNAL_ERROR) without a status: what a client sees from Envoy when the
replica behind it vanished mid-stream."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.errors
import h2.events


def grpc_frame(message: bytes) -> bytes:
    """One length-prefixed, uncompressed gRPC message."""
    return struct.pack(">?I", False, len(message)) + message


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    stream = event.stream_id
                    conn.send_headers(
                        stream, [(":status", "200"), ("content-type", "application/grpc")]
                    )
                    conn.send_data(stream, grpc_frame(first))
                    conn.reset_stream(stream, h2.errors.ErrorCodes.INTERNAL_ERROR)
            writer.write(conn.data_to_send())
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def resetting_server(first_message: bytes) -> AsyncIterator[str]:
    """Serve on a free local port (its host:port is yielded) until the block ends."""
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        handlers.add(handler)
        try:
            await _serve(reader, writer, first_message)
        except asyncio.CancelledError:  # the block ended while a client was connected
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
