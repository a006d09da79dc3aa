"""Command-line options shared by ``glurpc-lab train``, ``calibrate`` and ``evaluate``."""

from __future__ import annotations

import argparse
from pathlib import Path

from glurpc_lab.training.glucobench import PROTOCOLS

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
"""Default folder of the GlucoBench files: ``../shared/datasets`` beside the checkout."""


def dataset_names(text: str) -> list[str]:
    """Parse a comma-separated list of data set names, rejecting unknown ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PROTOCOLS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown data set(s) {', '.join(unknown)}; choose from {', '.join(PROTOCOLS)}")
    if not names:
        raise argparse.ArgumentTypeError(f"no data set named; choose from {', '.join(PROTOCOLS)}")
    return names


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data-dir`` and ``--datasets`` (parsed to a list of names) to ``parser``."""
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="folder with the GlucoBench data set files (default: ../shared/datasets beside the checkout, %(default)s)")
    parser.add_argument("--datasets", type=dataset_names, default=",".join(PROTOCOLS),
                        help=f"comma-separated data set names among {', '.join(PROTOCOLS)} (default all four; iglu is Broll)")
