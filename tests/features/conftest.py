"""Test setup for the feature library: make the shared checks module importable.

pytest runs with --import-mode=importlib, where test modules cannot import each other, so
the helpers every feature test uses live in ``feature_checks.py`` beside this file.
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
