"""Puts the repository root on sys.path so tests import `tests.support` and `tools`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
