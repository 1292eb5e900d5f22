"""The HTTP API and web page over a trialproof home (docs/architecture.md): FastAPI, run by uvicorn.

The app holds no state of its own: every request reads the home (files and the
log database), so several instances can serve one home.
"""

from pipeline.server.app import create_app

__all__ = ["create_app"]
