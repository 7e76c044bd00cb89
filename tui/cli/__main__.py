"""`python -m tui.cli`: the `runctl` command."""

import sys

from tui.cli.main import main

sys.exit(main())
