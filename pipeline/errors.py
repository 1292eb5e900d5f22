"""Every exception raised by :mod:`pipeline`, as one hierarchy.

::

    PipelineError
    ├── UsageError        a command or argument that cannot be acted on
    └── HomeError         the trialproof home is missing, incomplete or already exists
"""

from __future__ import annotations

__all__ = ["HomeError", "PipelineError", "UsageError"]


class PipelineError(Exception):
    """Base class of every error raised by this package."""


class UsageError(PipelineError):
    """A command or argument that cannot be acted on."""


class HomeError(PipelineError):
    """The trialproof home is missing, incomplete, or already exists."""
