"""The log as C2SP tlog-tiles: Merkle tiles and entry bundles read from the log database.

A tile at level L, index N holds the hashes of tree level 8·L at indices
256·N ... 256·N + W - 1 (W = 256 for a full tile, 1..255 for a partial one,
served at ``<N>.p/<W>``). Those are exactly the perfect-subtree hashes the log
stores in ``log_nodes`` (RFC 9162 §2.1.1), so a tile is one range query.
An entry bundle holds the leaf inputs of entries 256·N ... as big-endian uint16
length-prefixed byte strings.
"""

from __future__ import annotations

__all__ = [
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "TileRequest",
    "encode_index",
    "entry_bundle",
    "parse_tile_path",
    "remembered_tile",
    "tile_hashes",
]

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from anchoring._internal.log import TransparencyLog
from anchoring.errors import LogConsistencyError
from pipeline.server.errors import ApiError

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
_SEGMENT = re.compile(r"x(\d{3})")
_LAST = re.compile(r"(\d{3})(?:\.p/(\d{1,3}))?")


@dataclass(frozen=True)
class TileRequest:
    index: int
    width: int

    @property
    def partial(self) -> bool:
        return self.width < TILE_WIDTH


def encode_index(index: int) -> str:
    """``N`` as C2SP tlog-tiles path elements: 1234067 -> ``x001/x234/067``."""
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    groups.reverse()
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def parse_tile_path(path: str) -> TileRequest:
    """``x001/x234/067[.p/W]`` -> (1234067, W or 256); 404 for anything else."""
    parts = path.split("/")
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        parts = [*parts[:-2], f"{parts[-2]}/{parts[-1]}"]
    index = 0
    for part in parts[:-1]:
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise ApiError(404, f"not a tile path: {path!r}")
        index = index * 1000 + int(match.group(1))
    last = _LAST.fullmatch(parts[-1]) if parts else None
    if last is None:
        raise ApiError(404, f"not a tile path: {path!r}")
    index = index * 1000 + int(last.group(1))
    width = TILE_WIDTH
    if last.group(2) is not None:
        width = int(last.group(2))
        if not 0 < width < TILE_WIDTH or last.group(2) != str(width):
            raise ApiError(404, f"a partial tile width is 1-255 without leading zeros: {path!r}")
    if encode_index(index) != path.split(".p/", maxsplit=1)[0]:
        raise ApiError(404, f"not the canonical path of tile {index}: {path!r}")
    return TileRequest(index, width)


def _require_span(log_size: int, level: int, tile: TileRequest) -> None:
    hashes_at_level = log_size >> (TILE_HEIGHT * level)
    if tile.index * TILE_WIDTH + tile.width > hashes_at_level:
        raise ApiError(404, "the log does not have that tile yet")


#: Full tiles kept per worker: they never change, and mirrors ask for the same ones.
FULL_TILES_KEPT = 2048
_full_tiles: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
_full_tiles_lock = threading.Lock()


def remembered_tile(log: TransparencyLog, level: int | None, tile: TileRequest) -> bytes | None:
    """A full tile (``level`` None: an entry bundle) already read by this worker, or None."""
    if tile.partial:
        return None
    key = (repr(log), -1 if level is None else level, tile.index)
    with _full_tiles_lock:
        return _full_tiles.get(key)


def _remembered(key: tuple[str, int, int], tile: TileRequest, read: Callable[[], bytes]
                ) -> bytes:
    if tile.partial:
        return read()
    with _full_tiles_lock:
        data = _full_tiles.get(key)
        if data is not None:
            _full_tiles.move_to_end(key)
            return data
    data = read()
    with _full_tiles_lock:
        _full_tiles[key] = data
        if len(_full_tiles) > FULL_TILES_KEPT:
            _full_tiles.popitem(last=False)
    return data


def tile_hashes(log: TransparencyLog, level: int, tile: TileRequest) -> bytes:
    """The tile's hashes, concatenated (C2SP tlog-tiles)."""
    if not 0 <= level <= MAX_LEVEL:
        raise ApiError(404, f"no tile level {level}")
    return _remembered((repr(log), level, tile.index), tile,
                       lambda: _read_tile_hashes(log, level, tile))


def entry_bundle(log: TransparencyLog, tile: TileRequest) -> bytes:
    """The entries' leaf inputs, each as uint16 big-endian length || bytes (C2SP tlog-tiles)."""
    return _remembered((repr(log), -1, tile.index), tile, lambda: _read_entry_bundle(log, tile))


def _read_tile_hashes(log: TransparencyLog, level: int, tile: TileRequest) -> bytes:
    start = tile.index * TILE_WIDTH
    _require_span(log.size(), level, tile)
    with log.reading() as conn:
        rows = conn.all(
            "SELECT idx, hash FROM log_nodes WHERE level = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            (TILE_HEIGHT * level, start, start + tile.width),
        )
    if [int(r[0]) for r in rows] != list(range(start, start + tile.width)):
        raise LogConsistencyError(f"the log is missing stored nodes of tile {level}/{tile.index}")
    return b"".join(bytes(r[1]) for r in rows)


def _read_entry_bundle(log: TransparencyLog, tile: TileRequest) -> bytes:
    start = tile.index * TILE_WIDTH
    _require_span(log.size(), 0, tile)
    with log.reading() as conn:
        rows = conn.all(
            "SELECT idx, leaf_input FROM log_entries WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, start + tile.width),
        )
    if [int(r[0]) for r in rows] != list(range(start, start + tile.width)):
        raise LogConsistencyError(f"the log is missing entries of bundle {tile.index}")
    out = bytearray()
    for _, data in rows:
        entry = bytes(data)
        if len(entry) > 0xFFFF:
            raise LogConsistencyError("a log entry is longer than an entry bundle can hold")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)
