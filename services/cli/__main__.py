"""``python -m services.cli``: the ``polyhead`` command."""

import sys

from services.cli.main import main

sys.exit(main())
