"""``python -m syncd.simulator``: the simulator without the ``syncd`` command."""

from __future__ import annotations

import argparse
import sys

from syncd.simulator.cli import add_arguments, run


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m syncd.simulator",
        description="Run the AccessibleDocs simulator (API and storage origins).",
    )
    add_arguments(parser)

    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
