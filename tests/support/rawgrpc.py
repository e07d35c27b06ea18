"""A raw HTTP/2 gRPC caller (h2 over a socket) for requests no well-behaved client would send:
malformed headers, frames and bodies, requests that never end, several calls on one connection."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events


@dataclass(frozen=True)
class RawReply:
    """What came back: HTTP status, gRPC status (None if none arrived) and how long it took."""

    http_status: int | None
    grpc_status: int | None
    grpc_message: str
    seconds: float
    # The stream or connection was reset instead of ending with a status.
    reset: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        """Whether the call ended with a gRPC status or an HTTP status of its own."""
        return self.grpc_status is not None or self.http_status not in (None, 200)


class RawConnection:
    """One HTTP/2 connection on which calls run one after another (so they share its header
    compression state, as a proxy's upstream connection does)."""

    def __init__(self, address: str, timeout: float) -> None:
        host, _, port = address.rpartition(":")
        self._address = address
        self._timeout = timeout
        self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        self._conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self._conn.initiate_connection()
        self._sock.sendall(self._conn.data_to_send())

    def call(
        self,
        path: str,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        *,
        end_stream: bool = True,
        method: str = "POST",
        content_type: str = "application/grpc",
        timeout: float | None = None,
    ) -> RawReply:
        """Send one request on a new stream and wait (at most `timeout` s) for its end."""
        started = time.monotonic()
        stream = self._conn.get_next_available_stream_id()
        request = [
            (":method", method),
            (":scheme", "http"),
            (":authority", self._address),
            (":path", path),
            ("content-type", content_type),
            ("te", "trailers"),
            *headers,
        ]
        self._conn.send_headers(stream, request, end_stream=False)
        self._conn.send_data(stream, body, end_stream=end_stream)
        self._sock.sendall(self._conn.data_to_send())
        return self._await(stream, started, started + (timeout or self._timeout))

    def _await(self, stream: int, started: float, deadline: float) -> RawReply:
        found: dict[str, str] = {}
        while True:
            self._sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                return _reply(found, started, reset=False)
            if not data:
                return _reply(found, started, reset=True)
            for event in self._conn.receive_data(data):
                if getattr(event, "stream_id", stream) not in (stream, 0):
                    continue
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    found.update({str(k): str(v) for k, v in event.headers})
                elif isinstance(event, h2.events.DataReceived):
                    self._conn.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    self._sock.sendall(self._conn.data_to_send())
                    return _reply(found, started, reset=False)
                elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                    return _reply(found, started, reset=True)
            self._sock.sendall(self._conn.data_to_send())

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


@contextmanager
def raw_connection(address: str, timeout: float = 10.0) -> Iterator[RawConnection]:
    """A RawConnection to `address`, closed afterwards."""
    connection = RawConnection(address, timeout)
    try:
        yield connection
    finally:
        connection.close()


def raw_call(
    address: str,
    path: str,
    body: bytes,
    headers: Sequence[tuple[str, str]] = (),
    *,
    end_stream: bool = True,
    method: str = "POST",
    content_type: str = "application/grpc",
    timeout: float = 10.0,
) -> RawReply:
    """One request on a fresh connection."""
    with raw_connection(address, timeout) as connection:
        return connection.call(
            path, body, headers, end_stream=end_stream, method=method, content_type=content_type
        )


def _reply(found: dict[str, str], started: float, *, reset: bool) -> RawReply:
    status = found.get("grpc-status")
    http = found.get(":status")
    return RawReply(
        http_status=int(http) if http else None,
        grpc_status=int(status) if status is not None else None,
        grpc_message=found.get("grpc-message", ""),
        seconds=time.monotonic() - started,
        reset=reset,
        headers=found,
    )
