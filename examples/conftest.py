"""Makes the example projects importable however pytest is run (``python -m pytest examples`` from the
repository root, or ``pytest`` inside one example): each example is a package next to the shared
``voice_callbacks`` module, as they would sit in an integrator's own source tree."""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
