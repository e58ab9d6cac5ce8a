"""`python -m tuner`, the same command as the `tuner` console script: see tuner/commands/cli.py."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tuner.commands.cli import main

raise SystemExit(main(prog="python -m tuner"))
