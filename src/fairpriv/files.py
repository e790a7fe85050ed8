"""Reading the data files a user points fairpriv at (CSV, JSONL, JSON, TXT): one place decides what a bad file says.

UTF-8 is read with or without a byte-order mark. Every other problem raises :class:`DataError` naming the file, the
problem and the fix: a folder where a file belongs, a missing or empty file, another encoding (UTF-16/32 by their
byte-order mark; anything else as "not UTF-8" with the byte offset of the first bad byte), a broken JSON line (its
line number) or malformed CSV quoting. Each caller describes its file once with a :class:`FileKind`.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """A data file or source that cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class FileKind:
    """How messages name a file: ``what`` it is, what it ``needs`` to hold, and what to use ``instead``."""

    what: str  # "pair file"
    needs: str  # "a header line 'prompt,response' and one row per pair"
    instead: str = ""  # "use source 'builtin'"

    def or_instead(self) -> str:
        return f", or {self.instead}" if self.instead else ""


OTHER_BOMS = (  # UTF-32 first: its little-endian mark begins with UTF-16's
    (codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"),
)


def save_as_utf8(encoding: str) -> str:
    return f"save it as UTF-8 (your editor's 'Save as' > UTF-8, or `iconv -f {encoding} -t UTF-8 FILE > NEW`)"


def check_file(path: Path, kind: FileKind) -> Path:
    """``path`` if it is a file; a folder or a missing path raises :class:`DataError`."""
    if path.is_dir():
        raise DataError(f"{path} is a folder, expected a file ({kind.what}); pass the path of a file in it"
                        f"{kind.or_instead()}")
    if not path.is_file():
        raise DataError(f"{kind.what} {path} does not exist; check the path{kind.or_instead()}")
    return path


def decode(data: bytes, where: str, offset: int = 0) -> str:
    """``data`` (found at byte ``offset`` of the file) as text: UTF-8, a UTF-8 byte-order mark at the start dropped;
    any other encoding raises :class:`DataError`."""
    if offset == 0:
        check_bom(data, where)
    start = len(codecs.BOM_UTF8) if offset == 0 and data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = start + exc.start
        raise DataError(f"{where} is not UTF-8: byte 0x{data[bad]:02x} at byte offset {offset + bad} cannot start or "
                        f"continue a UTF-8 character (Latin-1 or Windows-1252 text?); {save_as_utf8('LATIN1')}"
                        ) from None


def check_bom(head: bytes, where: str) -> None:
    for bom, encoding in OTHER_BOMS:
        if head.startswith(bom):
            raise DataError(f"{where} is {encoding} text (it starts with a {encoding} byte-order mark), not UTF-8; "
                            f"{save_as_utf8(encoding)}")


def read_text(path: Path, kind: FileKind) -> str:
    """The text of a UTF-8 file that holds more than whitespace."""
    path = check_file(Path(path), kind)
    text = decode(path.read_bytes(), f"{kind.what} {path}")
    if not text.strip():
        raise empty(path, kind)
    return text


def empty(path: Path, kind: FileKind) -> DataError:
    return DataError(f"{kind.what} {path} is empty; it needs {kind.needs}{kind.or_instead()}")


def jsonl_rows(path: Path, kind: FileKind) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a JSON-lines file; each line must be a JSON object."""
    for number, line in enumerate(read_text(path, kind).splitlines(), 1):
        if line.strip():
            yield number, json_object(line, f"{path}:{number}")


def read_jsonl(path: Path, kind: FileKind) -> list[dict[str, Any]]:
    return [row for _, row in jsonl_rows(path, kind)]


def json_object(line: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); fix that line or delete it"
                        ) from None
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected a JSON object {{...}} on every line, got a {type(value).__name__}")
    return value


def read_json(path: Path, kind: FileKind) -> Any:
    """The value of a JSON file (not JSON lines)."""
    try:
        return json.loads(read_text(path, kind))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
                        "fix the file") from None


def read_csv_rows(path: Path, kind: FileKind) -> tuple[list[str], list[dict[str, Any]]]:
    """(header, rows) of a CSV file with a header line; cells may be quoted and span lines."""
    reader = csv.DictReader(io.StringIO(read_text(path, kind), newline=""))
    try:
        return list(reader.fieldnames or []), list(reader)
    except csv.Error as exc:
        raise DataError(f"{path}: malformed CSV near line {reader.line_num} ({exc}); check the quotes on that "
                        "line (a cell with a comma, quote or line break must be in double quotes, quotes doubled)"
                        ) from None


def stream_lines(path: Path, kind: FileKind) -> Iterator[str]:
    """Lines of a large UTF-8 file, gzip-compressed when its name ends in ``.gz``, decoded as they stream."""
    where, offset = f"{kind.what} {check_file(Path(path), kind)}", 0
    if Path(path).stat().st_size == 0:
        raise empty(path, kind)
    opener = gzip.open if Path(path).suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for raw in fh:
                yield decode(raw, where, offset)
                offset += len(raw)
    except (OSError, EOFError) as exc:  # a .gz name on a file that is not (complete) gzip
        if opener is open:
            raise
        raise DataError(f"{where} is not a readable gzip file ({exc}); compress it again with gzip, or pass the "
                        "uncompressed file") from None
