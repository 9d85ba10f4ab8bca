"""Exceptions with messages meant for the user: each says what went wrong and what to do."""

import shutil


class MSSError(Exception):
    """Base class of every error this package raises on purpose."""


class AudioError(MSSError, ValueError):
    """Audio that cannot be used: unreadable, empty, silent, non-finite, wrong shape."""


class DatasetError(MSSError, ValueError):
    """A dataset root that is missing or malformed, an unknown track or target."""


class InvalidSongError(DatasetError):
    """A song whose files read fine but do not make a valid song (stream lengths that disagree, a mixture
    that is not the sum of its stems: ``mss.data.song_check``); ``check`` holds the figures."""

    def __init__(self, check):
        super().__init__(check.message)
        self.check = check

    def __reduce__(self):  # picklable across processes (DataLoader workers, executors), message kept
        return (type(self), (self.check,))


class CheckpointError(MSSError, ValueError):
    """A checkpoint file that is missing, corrupt or of an unknown format."""


class MissingDependencyError(MSSError, RuntimeError):
    """A system program or library is absent (ffmpeg, FluidSynth...); the message gives the install command."""


def require_program(name: str, message: str) -> str:
    """The path of the system program ``name``, or a MissingDependencyError saying ``message`` (what needs it and
    how to install it)."""
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(message)
    return path
