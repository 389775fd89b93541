"""The checkpointer behind the history: SQLite (embedded default) or PostgreSQL, chosen
by the same database URL as the session index."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from sqlalchemy.engine import make_url

from graph.thread_fence import ThreadFence


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite+aiosqlite:///path` URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError(f"a SQLite history needs a file path, got {url!r}")
    return Path(database)


class PendingBlob:
    """A large value's encoding, compressed when first asked for its bytes.

    The SQLite saver hands these to the connection's thread as statement parameters, so
    compression (which releases the GIL) runs there instead of on the event loop. The
    result is kept and the uncompressed bytes released: a value encoded twice (its write,
    then its checkpoint) is compressed once."""

    __slots__ = ("_compress", "_data", "_packed", "_type")

    def __init__(self, type_: str, data: bytes, compress: Callable[[bytes], bytes]) -> None:
        self._type, self._data, self._compress = type_, data, compress
        self._packed: tuple[str, bytes] | None = None

    def packed(self) -> tuple[str, bytes]:
        done = self._packed
        if done is None:
            done = (CompressedSerde.PREFIX + self._type, self._compress(self._data))
            self._packed, self._data = done, b""
        return done


Encoded = tuple[str, bytes] | PendingBlob
"""What `CompressedSerde.encode` returns: a small value's (type, bytes), or a large one
to compress."""


def packed(encoded: Encoded) -> tuple[str, bytes]:
    """The (type, bytes) to store for `encoded`."""
    return encoded.packed() if isinstance(encoded, PendingBlob) else encoded


class CompressedSerde:
    """Compresses checkpoint values (Zstandard, fast level): our state is mostly text
    (runbook, prompts, tool output), which shrinks several-fold. Small values are left as
    they are. Compressed values are tagged "zstd:" + the inner type, so uncompressed rows
    still load, and so do rows of earlier versions, compressed with zlib ("z:").

    Zstandard level 1 compresses an investigation's values 3.4 times faster than zlib's
    fastest level did, and smaller. Its compressors are not thread-safe and cost more to
    make than a compression: each thread keeps its own.

    `encode` leaves the compression to whoever needs the bytes (`PendingBlob`);
    `dumps_typed` compresses at once. A node's output is encoded twice: as the task's
    write, and moments later as the new value of its channel in the checkpoint — the same
    object, as LangGraph keeps written values as they are. The encodings of the last
    `recent` large objects are kept and reused for that second time (the objects are
    held, so their ids stay theirs)."""

    PREFIX = "zstd:"
    ZLIB_PREFIX = "z:"
    """Rows written before Zstandard."""

    def __init__(
        self, inner: Any, *, level: int = 1, min_size: int = 256, recent: int = 512
    ) -> None:
        self.inner, self.level, self.min_size, self.recent = inner, level, min_size, recent
        self._encoded: OrderedDict[int, tuple[Any, PendingBlob]] = OrderedDict()
        self._codecs = threading.local()

    def compress(self, data: bytes) -> bytes:
        compressor = getattr(self._codecs, "compressor", None)
        if compressor is None:
            import zstandard

            compressor = self._codecs.compressor = zstandard.ZstdCompressor(level=self.level)
        return cast(bytes, compressor.compress(data))

    def decompress(self, blob: bytes) -> bytes:
        decompressor = getattr(self._codecs, "decompressor", None)
        if decompressor is None:
            import zstandard

            decompressor = self._codecs.decompressor = zstandard.ZstdDecompressor()
        return cast(bytes, decompressor.decompress(blob))

    def encode(self, obj: Any, *, remember: bool = True) -> Encoded:
        """`obj`'s encoding; `remember=False` for an object never encoded again."""
        hit = self._encoded.get(id(obj))
        if hit is not None:  # the object is held by the entry: the id is still its own
            return hit[1]
        type_, data = self.inner.dumps_typed(obj)
        if len(data) < self.min_size:
            return type_, data
        pending = PendingBlob(type_, data, self.compress)
        if not remember:
            return pending
        self._encoded[id(obj)] = (obj, pending)
        if len(self._encoded) > self.recent:
            self._encoded.popitem(last=False)
        return pending

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return packed(self.encode(obj))

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, blob = data
        if type_.startswith(self.PREFIX):
            return self.inner.loads_typed((type_[len(self.PREFIX) :], self.decompress(blob)))
        if type_.startswith(self.ZLIB_PREFIX):
            inner_type = type_[len(self.ZLIB_PREFIX) :]
            return self.inner.loads_typed((inner_type, zlib.decompress(blob)))
        return self.inner.loads_typed(data)

    def __getattr__(self, name: str) -> Any:  # dumps/loads and anything else
        return getattr(self.inner, name)


@contextlib.asynccontextmanager
async def open_checkpointer(
    url: str, *, write_lock: asyncio.Lock | None = None, fence: ThreadFence | None = None
) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """Open (and set up) the saver for `url`; closed on exit. With SQLite, `write_lock` is
    shared with the session index so the writers of the one file queue instead of
    contending for SQLite's lock. `fence`: threads not to write (graph/thread_fence.py)."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        import aiosqlite

        from graph.sqlite_saver import BlobSqliteSaver

        path = sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(path, timeout=30) as conn:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA synchronous=NORMAL")
            saver = BlobSqliteSaver(conn)
            saver.serde = CompressedSerde(saver.serde)
            saver.fence = fence
            if write_lock is not None:
                saver.lock = write_lock
            await saver.setup()
            try:
                yield saver
            finally:
                await saver.aclose()
    elif backend == "postgresql":
        try:
            from graph.postgres_saver import BatchedPostgresSaver
        except ImportError as exc:
            raise RuntimeError(
                "PostgreSQL history needs: pip install 'sre-agent[postgres]'"
            ) from exc
        plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        async with BatchedPostgresSaver.from_conn_string(plain) as pg_saver:
            assert isinstance(pg_saver, BatchedPostgresSaver)  # typed as the stock saver
            pg_saver.fence = fence
            await pg_saver.setup()
            try:
                yield pg_saver
            finally:
                await pg_saver.aclose()
    else:
        raise ValueError(
            f"unsupported history database {url!r}: use sqlite+aiosqlite or postgresql+psycopg"
        )
