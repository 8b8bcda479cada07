"""Streams a torch.profiler Chrome trace (.json or .json.gz) into TraceEvents without loading it whole.

Two parsers feed the same EventCollector:

* fast (default): reads 1 MiB blocks, finds the events we want with one regex on their `"cat"` field
  and decodes only those with the stdlib's C JSON scanner (`raw_decode`). CPU ops, flow events and
  metadata, which are most of a trace, are skipped without being parsed. It relies on two facts of
  kineto's writer: an event's `"cat"` key comes before any nested object in it, and no event is
  larger than 1 MiB. Each decoded event is checked against its match, and the text must end by
  closing the event array and the document (a cut inside a skipped event would otherwise pass). On
  any surprise the read restarts with ijson, so a trace from another writer is still read
  correctly, only slower, and a damaged one fails with ijson's parse error.
* ijson: the generic streaming parser (C backend yajl2_c when installed) over `traceEvents.item`.
  It parses every event into a dict, so it runs at about the speed of json.load on one core.
"""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import ijson

from diffexp.errors import DiffexpError
from diffexp.profile.events import WANTED_TRACE_CATEGORIES, EventCollector, TraceEvents

log = logging.getLogger(__name__)

Parser = Literal["auto", "fast", "ijson"]
ProgressCallback = Callable[[int, int], None]  # (bytes of the file read so far, file size in bytes)

# Larger blocks are no faster (measured 1–8 MiB) and cost 4 copies of a block in peak memory.
BLOCK_BYTES = 1 << 20
# Bytes kept from the end of a block whose events were all decoded: a "cat" split across blocks sits
# within a few dozen characters of its event's opening brace, so this margin is generous.
_TAIL_CHARS = 1 << 16
_MAX_EVENT_CHARS = 1 << 20
_CATEGORY_RE = re.compile(r'"cat"\s*:\s*"(' + "|".join(re.escape(c) for c in sorted(WANTED_TRACE_CATEGORIES)) + r')"')


@dataclass(frozen=True)
class ReadStats:
    """How a trace was read: which parser, how many raw (uncompressed) bytes, how many events kept."""

    parser: str
    raw_bytes: int
    events_kept: int


class _LayoutMismatch(Exception):
    """The fast parser met a layout it does not handle; the ijson parser takes over."""


def read_trace(
    path: Path | str,
    parser: Parser = "auto",
    progress: ProgressCallback | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> tuple[TraceEvents, ReadStats]:
    """Stream one trace file into compact columns. `parser="auto"` is fast with ijson as the fallback."""
    source = Path(path)
    if not source.is_file():
        raise DiffexpError(f"trace file {source} does not exist")
    if parser not in ("auto", "fast", "ijson"):
        raise DiffexpError(f"parser = {parser!r}: expected one of auto, fast, ijson")
    if parser in ("auto", "fast"):
        try:
            return _read_with(source, "fast", progress, block_bytes)
        except _LayoutMismatch as err:
            if parser == "fast":
                raise DiffexpError(f"{source}: the fast parser cannot read this layout ({err})") from err
            log.warning("%s: %s; re-reading with ijson (slower)", source, err)
    return _read_with(source, "ijson", progress, block_bytes)


def _read_with(
    source: Path, parser: str, progress: ProgressCallback | None, block_bytes: int
) -> tuple[TraceEvents, ReadStats]:
    collector = EventCollector()
    handlers = collector.handlers
    kept = 0
    with _open_counting(source, progress) as stream:
        if parser == "fast":
            events = _fast_events(stream, block_bytes)
        else:
            events = _ijson_events(stream, _ijson_prefix(source))
        try:
            for category, event in events:
                handlers[category](event)
                kept += 1
        except (ijson.JSONError, ijson.IncompleteJSONError, json.JSONDecodeError, EOFError, OSError) as err:
            raise DiffexpError(f"{source} is not a readable Chrome trace: {err}") from err
        raw_bytes = stream.raw_bytes
    if raw_bytes == 0:
        raise DiffexpError(f"trace file {source} is empty")
    return collector.finish(), ReadStats(parser=parser, raw_bytes=raw_bytes, events_kept=kept)


class _CountingStream:
    """The decompressed byte stream; counts raw bytes and reports progress on the file on disk."""

    def __init__(self, inner: IO[bytes], disk: IO[bytes], size: int, progress: ProgressCallback | None):
        self._inner, self._disk, self._size, self._progress = inner, disk, size, progress
        self.raw_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.raw_bytes += len(data)
        if self._progress is not None:
            self._progress(self._disk.tell(), self._size)
        return data


@contextmanager
def _open_counting(source: Path, progress: ProgressCallback | None) -> Iterator[_CountingStream]:
    """Open a trace for reading its uncompressed bytes; gzip is recognised by its magic number, not its name."""
    with open(source, "rb") as disk:
        compressed = disk.read(2) == b"\x1f\x8b"
        disk.seek(0)
        inner: IO[bytes] = gzip.GzipFile(fileobj=disk, mode="rb") if compressed else disk
        yield _CountingStream(inner, disk, source.stat().st_size, progress)


def _ijson_prefix(source: Path) -> str:
    """`traceEvents.item` for the object form of the Chrome trace format, `item` for the bare-array form."""
    with _open_counting(source, None) as stream:
        head = stream.read(4096).lstrip()
    return "item" if head.startswith(b"[") else "traceEvents.item"


def _ijson_events(stream: _CountingStream, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if ijson.backend != "yajl2_c":
        log.warning("ijson is using its %s backend; install ijson's C extension for speed", ijson.backend)
    for event in ijson.items(stream, prefix, use_float=True):
        if isinstance(event, dict):
            category = event.get("cat")
            if category in WANTED_TRACE_CATEGORIES:
                yield category, event


class _Utf8Blocks:
    """Incremental UTF-8 decoding; pure-ASCII blocks (nearly all of a trace) take a much faster path."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def __call__(self, data: bytes, final: bool) -> str:
        if data.isascii() and not self._decoder.getstate()[0]:
            # ASCII is a subset of latin-1, whose codec is a plain widening copy (~20x the utf-8 codec here).
            return data.decode("latin-1")
        return self._decoder.decode(data, final)


def _fast_events(stream: _CountingStream, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[str, dict[str, Any]]]:
    raw_decode = json.JSONDecoder().raw_decode
    decode = _Utf8Blocks()
    text = ""
    at_end = False
    opening = ""
    while not at_end:
        block = stream.read(block_bytes)
        at_end = not block
        text += decode(block, final=at_end)
        opening = opening or text.lstrip()[:1]
        decoded_to = 0  # end of the last event decoded from `text`
        resume_at = -1  # start of an event cut by the block's end
        for match in _CATEGORY_RE.finditer(text):
            cat_at = match.start()
            if cat_at < decoded_to:
                raise _LayoutMismatch(f"a wanted category inside another event near character {cat_at}")
            start = text.rfind("{", decoded_to, cat_at)
            if start < 0:
                raise _LayoutMismatch(f"no opening brace before the event category at character {cat_at}")
            try:
                event, end = raw_decode(text, start)
            except json.JSONDecodeError as err:
                if at_end or len(text) - start > _MAX_EVENT_CHARS:
                    raise _LayoutMismatch(f"undecodable event ({err.msg})") from err
                resume_at = start
                break
            category = match.group(1)
            if end <= match.end() or not isinstance(event, dict) or event.get("cat") != category:
                raise _LayoutMismatch(f"the object at character {start} is not the event whose category matched")
            decoded_to = end
            yield category, event
        text = text[resume_at:] if resume_at >= 0 else text[max(decoded_to, len(text) - _TAIL_CHARS) :]
    if not _ends_document(text, opening):
        # Skipped events are never parsed, so a cut inside one would go unnoticed: let ijson judge the file.
        raise _LayoutMismatch("the text does not end like a complete trace")


def _ends_document(tail: str, opening: str) -> bool:
    """Does `tail` close the event array (after a complete event) and then the document?"""
    stripped = tail.rstrip()
    position = len(stripped)
    for _ in range(64):  # a `]` inside a trailing top-level value is possible, a few dozen are not
        position = stripped.rfind("]", 0, position)
        if position < 0:
            return False
        if not stripped[:position].rstrip().endswith(("}", "[")):
            continue
        rest = stripped[position + 1 :].strip()
        if opening == "[":
            return rest == ""
        if opening != "{" or not rest.endswith("}"):
            continue
        members = rest[:-1].strip()
        if members and not members.startswith(","):
            continue
        try:
            json.loads("{" + members[1:] + "}")
        except json.JSONDecodeError:
            continue
        return True
    return False
