"""The ADB host protocol's framing, as an adb server speaks it to clients on its TCP port.

A client sends a request as four lowercase hex digits (the payload's length in bytes) and the
payload (``host:version``, ``host:tport:serial:emulator-5554``, ``shell:wm size``, ...). The
server answers ``OKAY`` or ``FAIL`` followed by a length-prefixed message. Some answers carry a
length-prefixed block after ``OKAY`` (``host:version``, ``host:devices``); ``host:tport`` carries
the chosen transport's id as 8 little-endian bytes. After a transport is chosen the same
connection takes one device service (``shell:``, ``shell,v2,...:``, ``exec:``), whose output
follows the ``OKAY``: raw bytes until the server closes (``shell:``/``exec:``), or shell-protocol
packets (one id byte, a 4-byte little-endian length, the data) ending with an exit packet.
Reference: AOSP ``packages/modules/adb/SERVICES.TXT`` and ``OVERVIEW.TXT``.
"""

from __future__ import annotations

import dataclasses
import socket

ADB_SERVER_VERSION = 41  # what adb 1.0.41 (platform-tools 29+) and adbutils expect
MAX_REQUEST_BYTES = 0xFFFF  # the length prefix is 4 hex digits

# Shell protocol (v2) packet ids.
SHELL_STDIN = 0
SHELL_STDOUT = 1
SHELL_STDERR = 2
SHELL_EXIT = 3
SHELL_CLOSE_STDIN = 4


class ProtocolError(ValueError):
    """The client sent something that is not an adb request."""


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """Read exactly ``n`` bytes; None when the peer closes before the first byte."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            if not buf:
                return None
            raise ProtocolError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def read_request(sock: socket.socket) -> str | None:
    """One length-prefixed request; None at end of stream. Raises ProtocolError on bad framing."""
    head = recv_exact(sock, 4)
    if head is None:
        return None
    try:
        size = int(head.decode("ascii"), 16)
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(
            f"expected a 4-hex-digit length prefix, got {head!r}; adb requests are "
            "'<4 hex digits><payload>', e.g. b'000chost:version'"
        ) from None
    body = recv_exact(sock, size) if size else b""
    if body is None:
        raise ProtocolError(f"connection closed before the {size}-byte request body")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"request is not UTF-8: {body[:40]!r}") from None


def encode_block(payload: bytes | str) -> bytes:
    """A length-prefixed block: 4 hex digits and the bytes."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    if len(data) > MAX_REQUEST_BYTES:
        raise ValueError(f"block of {len(data)} bytes exceeds the 4-hex-digit length prefix")
    return f"{len(data):04x}".encode("ascii") + data


def encode_request(payload: str) -> bytes:
    """A request as a client sends it (for tests and the CLI's own checks)."""
    return encode_block(payload)


def okay(block: bytes | str | None = None) -> bytes:
    """``OKAY``, optionally followed by a length-prefixed block."""
    return b"OKAY" + (encode_block(block) if block is not None else b"")


def fail(message: str) -> bytes:
    """``FAIL`` with a length-prefixed message (what ``adb`` prints as ``error: ...``)."""
    return b"FAIL" + encode_block(message)


def shell_packet(packet_id: int, data: bytes) -> bytes:
    """A shell-protocol (v2) packet."""
    return bytes([packet_id]) + len(data).to_bytes(4, "little") + data


@dataclasses.dataclass(frozen=True)
class ServiceRequest:
    """A device service request: ``kind`` is "shell", "shell_v2" or "exec"; ``command`` the
    shell command line (may be empty: an interactive shell, which this server refuses)."""

    kind: str
    command: str


def parse_service(request: str) -> ServiceRequest | None:
    """Recognise ``shell:CMD``, ``shell,v2,OPTS:CMD``, ``shell,OPTS:CMD`` and ``exec:CMD``.

    Options (``v2``, ``raw``, ``pty``, ``TERM=...``) sit between ``shell`` and the first colon;
    only ``v2`` changes the framing. Anything else gives None.
    """
    if request.startswith("exec:"):
        return ServiceRequest("exec", request[len("exec:") :])
    if request.startswith("shell"):
        head, sep, command = request.partition(":")
        if not sep:
            return None
        opts = head.split(",")
        if opts[0] != "shell":
            return None
        return ServiceRequest("shell_v2" if "v2" in opts[1:] else "shell", command)
    return None


def transport_id_bytes(transport_id: int) -> bytes:
    """A transport id as ``host:tport`` answers it (8 bytes, little-endian)."""
    return int(transport_id).to_bytes(8, "little")
