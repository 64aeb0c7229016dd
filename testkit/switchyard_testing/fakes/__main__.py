"""Run a fake provider as a process; see `cli.py`."""

import sys

from switchyard_testing.fakes.cli import main

sys.exit(main())
