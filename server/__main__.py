"""``python -m greenflame.server``: the same as the ``greenflame`` command."""

import sys

from .cli import main

sys.exit(main())
