"""Fuzz gzip and deflate request decoding: truncated, corrupted, concatenated and bomb-shaped bodies.

``decompress`` either returns at most ``limit`` bytes or raises BadRequest
(BodyTooLarge when the output would pass the limit), and never inflates much
past the limit to find out.
"""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.receivers.otlp.codec import BadRequest, BodyTooLarge, decompress
from tests.fuzz.otlp_inputs import mutated_bytes
from tests.fuzz.profiles import fuzz_settings

LIMIT = 4096
BOMB_BYTES = 64 * 1024 * 1024
ENCODINGS = ("gzip", "x-gzip", "deflate", "identity", "", " GZIP ", "br", "zstd", "gzip, deflate")


def deflate(data: bytes) -> bytes:
    """Content-Encoding: deflate is the zlib format (RFC 1950), as HTTP clients send it."""
    return zlib.compress(data)


def compress(data: bytes, encoding: str) -> bytes:
    return gzip.compress(data) if encoding == "gzip" else deflate(data)


def decompress_or_refuse(body: bytes, encoding: str, limit: int = LIMIT) -> bytes | None:
    try:
        data = decompress(body, encoding, limit)
    except BadRequest as exc:
        assert str(exc)
        return None
    assert len(data) <= limit
    return data


@fuzz_settings(200)
@given(body=st.binary(max_size=512), encoding=st.sampled_from(ENCODINGS))
def test_random_bytes_in_any_encoding(body: bytes, encoding: str) -> None:
    decompress_or_refuse(body, encoding)


@fuzz_settings(100)
@given(data=st.binary(max_size=LIMIT), encoding=st.sampled_from(["gzip", "deflate"]))
def test_round_trip_within_the_limit(data: bytes, encoding: str) -> None:
    assert decompress(compress(data, encoding), encoding, LIMIT) == data


@fuzz_settings(200)
@given(st.data())
def test_mutated_compressed_bodies(data: st.DataObject) -> None:
    encoding = data.draw(st.sampled_from(["gzip", "deflate"]))
    original = compress(data.draw(st.binary(max_size=1024)), encoding)
    decompress_or_refuse(data.draw(mutated_bytes(original)), encoding)


@fuzz_settings(100)
@given(
    data=st.binary(min_size=1, max_size=256),
    cut=st.integers(min_value=1),
    encoding=st.sampled_from(["gzip", "deflate"]),
)
def test_truncated_bodies_are_refused(data: bytes, cut: int, encoding: str) -> None:
    whole = compress(data, encoding)
    truncated = whole[: cut % len(whole)]
    assert decompress_or_refuse(truncated, encoding) is None


@fuzz_settings(100)
@given(st.lists(st.binary(max_size=256), min_size=1, max_size=6))
def test_concatenated_gzip_members_decode_to_their_concatenation(members: list[bytes]) -> None:
    body = b"".join(gzip.compress(member) for member in members)
    expected = b"".join(members)
    if len(expected) <= LIMIT:
        assert decompress(body, "gzip", LIMIT) == expected
    else:
        with pytest.raises(BodyTooLarge):
            decompress(body, "gzip", LIMIT)


@fuzz_settings(50)
@given(members=st.integers(min_value=2, max_value=2000), trailing=st.binary(max_size=16))
def test_many_empty_members_and_trailing_garbage(members: int, trailing: bytes) -> None:
    body = gzip.compress(b"") * members + trailing
    decompress_or_refuse(body, "gzip")


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize("nested", [False, True])
def test_bombs_are_refused_as_too_large(encoding: str, nested: bool) -> None:
    bomb = compress(b"\0" * BOMB_BYTES, encoding)
    if nested:  # a bomb inside a bomb: the outer layer alone is what the receiver inflates
        bomb = compress(bomb, encoding) * 3
    try:
        decompress(bomb, encoding, LIMIT)
    except BodyTooLarge:
        return
    except BadRequest:
        assert nested, "a single-layer bomb must be refused as too large"
        return
    raise AssertionError("a bomb was inflated")


def test_a_gzip_bomb_spread_over_many_members_is_refused() -> None:
    member = gzip.compress(b"\0" * (LIMIT // 2 + 1))
    with pytest.raises(BodyTooLarge):
        decompress(member * 1000, "gzip", LIMIT)
