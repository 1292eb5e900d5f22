"""Reading text deliveries: UTF-8 with the place of a bad byte, and JSON in which a key
repeated in one object is an error (docs/formats.md §2)."""

from __future__ import annotations

__all__ = ["decode_utf8", "first_line_json", "head", "json_error", "json_lines",
           "loads_line", "loads_strict", "utf8_error"]

import codecs
import json
from pathlib import Path
from typing import Any

from pipeline.errors import ReadError
from pipeline.quoting import quote_name


def head(path: Path, size: int = 4096) -> bytes:
    """The first ``size`` bytes of a file."""
    with open(path, "rb") as f:
        return f.read(size)


def utf8_error(path: Path, data: bytes | None = None) -> ReadError | None:
    """A ReadError locating the first byte that is not UTF-8, or None if all of it is."""
    if data is None:
        data = path.read_bytes()
    try:
        codecs.decode(data, "utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ReadError(f"{path}: not valid UTF-8 at byte {exc.start} (line {line}); "
                         f"the file must be encoded as UTF-8")
    return None


def decode_utf8(path: Path) -> str:
    """The whole file as text (a byte order mark dropped); ReadError if it is not UTF-8."""
    data = path.read_bytes()
    error = utf8_error(path, data)
    if error is not None:
        raise error
    return data.decode("utf-8-sig")


def json_error(path: Path, exc: json.JSONDecodeError, line_offset: int = 0) -> ReadError:
    """The parser's error with the file's line number (``line_offset`` for one line of many)."""
    return ReadError(f"{path}: not valid JSON at line {exc.lineno + line_offset} column "
                     f"{exc.colno}: {exc.msg}")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def loads_strict(path: Path, text: str, line: int | None = None) -> Any:
    """Parse JSON where a key repeated in one object is an error: parsers disagree on which
    of the two counts (the last, for Python), so the file says two things at once."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as dup:
        where = f" (line {line})" if line is not None else ""
        raise ReadError(f"{path}: duplicate JSON key {quote_name(dup.key)} in one "
                        f"object{where}") from None


def loads_line(path: Path, text: str, line: int) -> Any:
    """One line of a JSON-lines file, parsed as :func:`loads_strict` does."""
    try:
        return loads_strict(path, text, line)
    except json.JSONDecodeError as exc:
        raise json_error(path, exc, line - 1) from None


def first_line_json(path: Path) -> Any:
    """The first line parsed as JSON, or None when it is not JSON on its own."""
    with open(path, "rb") as f:
        line = f.readline()
    try:
        return json.loads(line.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def json_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers."""
    return [(i, line) for i, line in enumerate(decode_utf8(path).split("\n"), 1) if line.strip()]

