"""``python -m otplogin.cli``: the same as ``otplogin-admin``."""

import sys

from otplogin.cli import main

sys.exit(main())
