"""Errors of the listening study, each with a message meant for the experimenter or the participant."""

from mss.errors import MSSError


class StudyError(MSSError, ValueError):
    """A study file or study configuration that cannot be used (unknown song/target, bad excerpt...)."""


class StimulusError(StudyError):
    """A stimulus id that is not part of the study, or a stimulus that cannot be rendered."""


class SessionError(StudyError):
    """An unknown or malformed session id or participant id."""


class SubmissionError(StudyError):
    """A submission that was refused; nothing was written."""


class RatingsFileError(StudyError):
    """A ratings CSV with the wrong header or malformed rows; the file is left untouched."""
