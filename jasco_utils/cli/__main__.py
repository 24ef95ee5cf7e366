"""``python -m jasco_utils.cli``: the ``jasco`` command."""

import sys

from jasco_utils.cli import main

sys.exit(main())
