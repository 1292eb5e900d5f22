"""Where the tests find their data: committed vectors, and the CDISC pilot datasets."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (this file lives in <root>/tests/).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Published test vectors, committed with the tests (sources and licences in SOURCES.md).
VECTORS_DIR = REPO_ROOT / "tests" / "vectors"
#: The CDISC pilot datasets (too large to commit): $TRIALPROOF_PILOT_DATA, else beside the
#: repository. Only tests marked ``pilot_data`` may read them.
PILOT_DIR = Path(os.environ.get("TRIALPROOF_PILOT_DATA")
                 or REPO_ROOT.parent / "shared" / "data" / "cdisc_pilot")
