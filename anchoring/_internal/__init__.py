"""The producer side of :mod:`anchoring`: what a log operator runs, not what a verifier needs.

Nothing here is part of the light public surface (see :mod:`anchoring`): the
transparency log's database lives in :mod:`anchoring._internal.log`.
"""

__all__: list[str] = []
