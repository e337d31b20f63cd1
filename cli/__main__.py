"""``python -m greenflame.cli``: the same as the ``greenflame`` command."""

import sys

from .main import main

sys.exit(main())
