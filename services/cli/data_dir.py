"""The data folder ``polyhead up`` and ``polyhead keys`` share: the repository's ``var/``
whatever the current directory, so both reach the same database."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
DATA_DIR = ROOT / "var"


def database_url(data_dir: Path) -> str:
    """``DATABASE_URL`` when set, else the SQLite file in the data folder."""
    return os.environ.get("DATABASE_URL") or f"sqlite:///{data_dir.resolve() / 'polyhead.db'}"


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR,
                        help="database, artifacts, logs, key (default: %(default)s)")
