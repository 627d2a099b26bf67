"""A stored block body that cannot be what was archived is reported, never raised or passed off."""

from __future__ import annotations

from mnemo_otel.store import block_codec

DATA = b'{"type":"user","uuid":"u1"}\n' * 50


def test_a_compressed_block_gives_its_bytes_back() -> None:
    stored = block_codec.compress(DATA)
    assert len(stored) < len(DATA)
    assert block_codec.decompress(block_codec.ZSTD, stored, len(DATA)) == DATA


def test_identity_blocks_are_their_own_bytes() -> None:
    assert block_codec.decompress(block_codec.IDENTITY, DATA, len(DATA)) == DATA


def test_a_damaged_or_misfit_body_is_none() -> None:
    stored = block_codec.compress(DATA)
    assert block_codec.decompress(block_codec.ZSTD, b"X" + stored[1:], len(DATA)) is None  # not a frame
    assert block_codec.decompress(block_codec.ZSTD, stored[:-3], len(DATA)) is None  # cut short
    assert block_codec.decompress(block_codec.ZSTD, stored, len(DATA) - 1) is None  # longer than its block
    assert block_codec.decompress(block_codec.ZSTD, block_codec.compress(DATA[:-1]), len(DATA)) is None
    assert block_codec.decompress("brotli", stored, len(DATA)) is None  # a codec this version lacks
