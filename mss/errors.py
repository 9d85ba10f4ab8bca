"""Exceptions with messages meant for the user: each says what went wrong and what to do."""


class MSSError(Exception):
    """Base class of every error this package raises on purpose."""


class AudioError(MSSError, ValueError):
    """Audio that cannot be used: unreadable, empty, silent, non-finite, wrong shape."""


class DatasetError(MSSError, ValueError):
    """A dataset root that is missing or malformed, an unknown track or target."""


class CheckpointError(MSSError, ValueError):
    """A checkpoint file that is missing, corrupt or of an unknown format."""


class MissingDependencyError(MSSError, RuntimeError):
    """A system program or library is absent (ffmpeg, FluidSynth...); the message gives the install command."""
