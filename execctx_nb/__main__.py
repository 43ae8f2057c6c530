"""``python -m execctx_nb``: the ``execctx`` command."""

from __future__ import annotations

import sys

from execctx_nb.cli import main

sys.exit(main())
