"""The bounded inflater: each Content-Encoding, corrupt bodies, bombs, and the limit exactly."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import pytest

from collector.inflate import BadRequest, BodyTooLarge, decompress
from tests.conftest import make_traces

LIMIT = 1024 * 1024
PAYLOAD = make_traces(5).SerializeToString()


@pytest.mark.parametrize("encoding", ["", "identity", "IDENTITY"])
def test_identity_encoding_passes_the_body_through(encoding: str) -> None:
    assert decompress(PAYLOAD, encoding, LIMIT) == PAYLOAD


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", " GZip "])
def test_gzip_bodies_are_inflated(encoding: str) -> None:
    assert decompress(gzip.compress(PAYLOAD), encoding, LIMIT) == PAYLOAD


def test_deflate_bodies_are_zlib_inflated() -> None:
    assert decompress(zlib.compress(PAYLOAD), "deflate", LIMIT) == PAYLOAD


@pytest.mark.parametrize("encoding", ["br", "zstd", "snappy", "gzip, br", "compress"])
def test_unsupported_encoding_is_a_bad_request(encoding: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decompress(gzip.compress(PAYLOAD), encoding, LIMIT)

    assert str(refused.value) == f'unsupported Content-Encoding "{encoding.strip().lower()}"; use gzip, deflate or none'
    assert not isinstance(refused.value, BodyTooLarge)


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (b"definitely not gzip", "gzip", "invalid gzip body: "),
        (PAYLOAD, "gzip", "invalid gzip body: "),
        (gzip.compress(PAYLOAD)[:-12], "gzip", "invalid gzip body: truncated"),
        (b"", "gzip", "invalid gzip body: truncated"),
        (b"definitely not deflate", "deflate", "invalid deflate body: "),
        (zlib.compress(PAYLOAD)[:-4], "deflate", "invalid deflate body: truncated"),
    ],
)
def test_corrupt_compressed_bodies_are_bad_requests(body: bytes, encoding: str, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decompress(body, encoding, LIMIT)

    assert str(refused.value).startswith(message)
    assert not isinstance(refused.value, BodyTooLarge)


def test_corrupt_gzip_checksum_is_a_bad_request() -> None:
    compressed = bytearray(gzip.compress(PAYLOAD))
    compressed[-8] ^= 0xFF  # the CRC32 of the trailer

    with pytest.raises(BadRequest, match="^invalid gzip body: "):
        decompress(bytes(compressed), "gzip", LIMIT)


@pytest.mark.parametrize(("encoding", "compress"), [("gzip", gzip.compress), ("deflate", zlib.compress)])
def test_compression_bomb_is_too_large(encoding: str, compress: Any) -> None:
    bomb = compress(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 64 * 1024

    with pytest.raises(BodyTooLarge) as refused:
        decompress(bomb, encoding, 64 * 1024)

    assert str(refused.value) == f"decompressed request body exceeds {64 * 1024} bytes"


def test_decompressed_size_equal_to_the_limit_is_accepted() -> None:
    assert decompress(gzip.compress(PAYLOAD), "gzip", len(PAYLOAD)) == PAYLOAD
    with pytest.raises(BodyTooLarge):
        decompress(gzip.compress(PAYLOAD), "gzip", len(PAYLOAD) - 1)


def test_identity_body_over_the_limit_is_too_large() -> None:
    assert decompress(PAYLOAD, "", len(PAYLOAD)) == PAYLOAD
    with pytest.raises(BodyTooLarge, match=f"^request body exceeds {len(PAYLOAD) - 1} bytes$"):
        decompress(PAYLOAD, "", len(PAYLOAD) - 1)
