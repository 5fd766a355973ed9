"""Sequential reading for the predictor: frames in large blocks, and a reader thread that runs ahead.

:class:`BlockReader` turns the predictor's many small ``data[lo:hi]`` requests (one per batch) into few large
reads of a lazy stack (at least ``chunk_bytes`` each), keeping only the current block: memory is bounded by
the block, not by the stack. :func:`prefetch` runs an iterator (reading and converting the next batches) in a
background thread, ``depth`` items ahead, so that file reads overlap the forward passes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

#: bytes read from a lazy stack per read (at least one batch)
CHUNK_BYTES = 16 << 20


class BlockReader:
    """``reader[lo:hi]`` of ``data`` (T, Y, X) through a cache of one block of consecutive frames.

    A request outside the cached block reads ``[lo, max(hi, lo + chunk))`` (clipped to ``stop``); requests
    must be for frames below ``stop``. In-memory numpy arrays are passed through without a cache.
    """

    def __init__(self, data: Any, chunk_frames: int, stop: int | None = None) -> None:
        self.data = data
        self.shape = tuple(int(s) for s in data.shape)
        self.dtype = data.dtype
        self.chunk = max(1, int(chunk_frames))
        self.stop = self.shape[0] if stop is None else min(int(stop), self.shape[0])
        self._lo, self._block = 0, None
        self.reads = 0  #: number of reads of ``data`` (for tests and profiles)

    @classmethod
    def for_stack(cls, data: Any, batch_span: int, stop: int | None = None) -> BlockReader:
        """A reader whose blocks hold ``CHUNK_BYTES`` of frames, and at least ``batch_span`` frames."""
        frame_bytes = int(np.prod(data.shape[1:])) * np.dtype(data.dtype).itemsize
        return cls(data, max(batch_span, CHUNK_BYTES // max(frame_bytes, 1)), stop)

    def __getitem__(self, key: slice) -> np.ndarray:
        lo, hi, _ = key.indices(self.shape[0])
        if isinstance(self.data, np.ndarray):
            return self.data[lo:hi]
        block = self._block
        if block is None or lo < self._lo or hi > self._lo + len(block):
            end = max(hi, min(lo + self.chunk, self.stop))
            block = self._block = np.asarray(self.data[lo:end])
            self._lo = lo
            self.reads += 1
        return block[lo - self._lo : hi - self._lo]


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead of the consumer.

    An exception raised by ``items`` is re-raised in the consumer at the item where it happened. Closing the
    returned generator early (``break``, a cancelled run) stops the thread after its current item.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, int(depth)))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failure(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="var-emitter-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)
