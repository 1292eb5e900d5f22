"""The log as C2SP tlog-tiles, checked against an independent RFC 9162 computation."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipeline.home import Home
from pipeline.server import create_app
from pipeline.server.tiles import encode_index, parse_tile_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "anchoring"))
from rfc9162_reference import mth, rfc_leaf

ENTRIES = [f'{{"type":"t","n":{i},"pad":"{"x" * (i % 7)}"}}'.encode() for i in range(600)]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = Home.init(tmp_path_factory.mktemp("tiles") / "home", "tiles.example.org/log")
    home.log().append_many(ENTRIES)
    with TestClient(create_app(home.path)) as c:
        yield c


def _hashes(data: bytes) -> list[bytes]:
    assert len(data) % 32 == 0
    return [data[i : i + 32] for i in range(0, len(data), 32)]


def test_level_0_tiles_are_the_leaf_hashes(client: TestClient) -> None:
    full = client.get("/tile/0/000")
    assert full.status_code == 200
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert full.headers["content-type"] == "application/octet-stream"
    assert _hashes(full.content) == [rfc_leaf(e) for e in ENTRIES[:256]]
    assert _hashes(client.get("/tile/0/001").content) == [rfc_leaf(e) for e in ENTRIES[256:512]]
    partial = client.get("/tile/0/002.p/88")
    assert partial.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert _hashes(partial.content) == [rfc_leaf(e) for e in ENTRIES[512:600]]
    assert _hashes(client.get("/tile/0/002.p/5").content) == [
        rfc_leaf(e) for e in ENTRIES[512:517]]


def test_level_1_tile_holds_the_roots_of_256_leaf_subtrees(client: TestClient) -> None:
    tile = client.get("/tile/1/000.p/2")
    assert tile.status_code == 200
    assert _hashes(tile.content) == [mth(ENTRIES[0:256]), mth(ENTRIES[256:512])]
    assert _hashes(client.get("/tile/1/000.p/1").content) == [mth(ENTRIES[0:256])]


def test_entry_bundles_hold_the_leaf_inputs_length_prefixed(client: TestClient) -> None:
    def decode(data: bytes) -> list[bytes]:
        out, at = [], 0
        while at < len(data):
            size = int.from_bytes(data[at : at + 2], "big")
            out.append(data[at + 2 : at + 2 + size])
            at += 2 + size
        return out

    full = client.get("/tile/entries/000")
    assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert decode(full.content) == ENTRIES[:256]
    assert decode(client.get("/tile/entries/002.p/88").content) == ENTRIES[512:]


def test_the_tree_head_can_be_rebuilt_from_tiles(client: TestClient) -> None:
    """What a tlog client does: the size-600 root from two level-1 hashes and a partial tile."""
    from anchoring.merkle.hasher import node_hash

    level1 = _hashes(client.get("/tile/1/000.p/2").content)
    tail = _hashes(client.get("/tile/0/002.p/88").content)

    def fold(hashes: list[bytes]) -> bytes:
        if len(hashes) == 1:
            return hashes[0]
        k = 1 << (len(hashes) - 1).bit_length() - 1
        return node_hash(fold(hashes[:k]), fold(hashes[k:]))

    root = node_hash(node_hash(level1[0], level1[1]), fold(tail))
    assert root == mth(ENTRIES)


@pytest.mark.parametrize("path", [
    "/tile/0/002", "/tile/0/002.p/89", "/tile/1/000", "/tile/1/000.p/3", "/tile/2/000.p/1",
    "/tile/entries/002", "/tile/entries/002.p/89", "/tile/0/000.p/0", "/tile/0/000.p/256",
    "/tile/0/000.p/088", "/tile/0/x000/001", "/tile/0/1", "/tile/0/0001", "/tile/01/000",
    "/tile/64/000.p/1", "/tile/-1/000", "/tile/0/abc", "/tile/entries/x1/000",
])
def test_tiles_that_do_not_exist_or_are_not_canonical_are_404(client: TestClient,
                                                             path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404, path
    assert response.json()["error"]


def test_index_encoding() -> None:
    assert encode_index(0) == "000"
    assert encode_index(999) == "999"
    assert encode_index(1000) == "x001/000"
    assert encode_index(1234067) == "x001/x234/067"
    assert parse_tile_path("x001/x234/067").index == 1234067
    request = parse_tile_path("x001/x234/067.p/8")
    assert (request.index, request.width, request.partial) == (1234067, 8, True)
