"""User-facing errors.

Everything a user can get wrong (a bad file, a bad parameter, a foreign checkpoint) raises a subclass of
:class:`VarEmitterError` whose message names the file or parameter and the problem. The CLI prints it as one
line on stderr; the napari widgets show it as a notification.
"""

from __future__ import annotations

from os import PathLike


class VarEmitterError(Exception):
    """Base class of errors whose message is meant for the user."""


class InputFileError(VarEmitterError, ValueError):
    """A file that cannot be read as what it should be."""

    def __init__(self, path: str | PathLike | None, problem: str):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class OutputFileError(InputFileError):
    """An output path that cannot be written (no such folder, not writable) or must not be (it exists)."""


class ParameterError(VarEmitterError, ValueError):
    """A parameter (CLI flag, config key, widget value) with a bad value."""


class CheckpointError(InputFileError):
    """A checkpoint that is missing, corrupt, foreign, unsafe or of an unknown version."""


class CancelledError(VarEmitterError):
    """Raised inside long jobs when the caller asked them to stop."""
