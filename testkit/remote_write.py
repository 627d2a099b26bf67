"""Push samples into a test Prometheus through its remote-write receiver (the stack's own path).

Remote write, unlike backfilling OpenMetrics, carries staleness markers bit for bit, and it is how
the collector feeds Prometheus. The request is a ``prometheus.WriteRequest`` protobuf in a snappy
block; both encodings are written out here (a few lines each) rather than adding two dependencies:
protobuf's wire format for four small messages, and snappy's literal-only block, which every
snappy decoder accepts.
"""

from __future__ import annotations

import struct
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence

__all__ = ("encode_write_request", "push", "snappy_block")


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _sample(timestamp_ms: int, value: float) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(timestamp_ms)


def _timeseries(labels: Mapping[str, str], samples: Iterable[tuple[int, float]]) -> bytes:
    body = b"".join(
        _field(1, _field(1, name.encode()) + _field(2, labels[name].encode())) for name in sorted(labels)
    )
    return body + b"".join(_field(2, _sample(t, v)) for t, v in samples)


def encode_write_request(series: Sequence[tuple[Mapping[str, str], Sequence[tuple[int, float]]]]) -> bytes:
    """``WriteRequest{timeseries: [TimeSeries{labels, samples}]}``; samples in time order per series."""
    return b"".join(_field(1, _timeseries(labels, samples)) for labels, samples in series)


def snappy_block(data: bytes) -> bytes:
    """Snappy block format with literal elements only: valid, just not smaller."""
    out = bytearray(_varint(len(data)))
    for start in range(0, len(data), 65536):
        chunk = data[start : start + 65536]
        n = len(chunk) - 1
        if n < 60:
            out.append(n << 2)
        elif n < 256:
            out += bytes((60 << 2, n))
        else:
            out += bytes((61 << 2,)) + n.to_bytes(2, "little")
        out += chunk
    return bytes(out)


def push(
    write_url: str,
    series: Sequence[tuple[Mapping[str, str], Sequence[tuple[int, float]]]],
    *,
    timeout: float = 30.0,
) -> None:
    """One remote-write request; raises with Prometheus's answer when it rejects any sample."""
    body = snappy_block(encode_write_request(series))
    request = urllib.request.Request(
        write_url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as err:
        with err:
            raise RuntimeError(f"remote write rejected ({err.code}): {err.read()[:500]!r}") from None
