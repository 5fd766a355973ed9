"""Ctrl-C during training: finish the current step, save an exactly resumable ``last.pt``, then stop.

A ``KeyboardInterrupt`` raised in the middle of a step would leave the weights, the optimizer and the random
number generators half-way through that step, so a checkpoint written then could not continue the run
exactly. :func:`deferred_sigint` therefore turns the first SIGINT into a request to stop at the next step
boundary; a second SIGINT raises ``KeyboardInterrupt`` at once (the trainer then saves only if it is between
steps).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger("napari_var_emitter.training")


@contextlib.contextmanager
def deferred_sigint(requested: threading.Event) -> Iterator[bool]:
    """Within the block, the first SIGINT sets ``requested`` instead of raising; yields whether installed.

    Signal handlers can only be installed from the main thread; elsewhere (a GUI worker thread) this does
    nothing and yields False.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        log.warning("interrupted: stopping after the current step (press Ctrl-C again to abort at once)")

    signal.signal(signal.SIGINT, handler)
    try:
        yield True
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
