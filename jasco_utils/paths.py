"""Every path the project uses, in one place.

Layout (cookiecutter-data-science style): ``data/raw`` holds the immutable dataset
(git-ignored), ``data/processed`` intermediate results (manifests, outputs, judgements),
``figures`` the tables and figures, ``runs`` executed notebooks. Nothing is written
outside the project root unless a caller passes another path.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DATA_DIR = PROJECT_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
FIGURES_DIR = PROJECT_ROOT / "figures"
RUNS_DIR = PROJECT_ROOT / "runs"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PROMPTS_DIR = PACKAGE_DIR / "judging" / "templates"

#: Where ``jasco data download`` puts the dataset unless told otherwise.
DEFAULT_DATASET_DIR = RAW_DIR / "jasco-v0"

#: Environment variable naming a folder that holds ``v0.csv`` and ``1.wav`` ... ``80.wav``.
DATA_DIR_ENV = "JASCO_DATA_DIR"


def dataset_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the dataset folder: ``explicit``, else ``$JASCO_DATA_DIR``, else the default.

    Args:
        explicit: A folder given by the caller (command-line argument, notebook parameter).

    Returns:
        The folder as an absolute path (it is not checked for existence here).
    """
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return DEFAULT_DATASET_DIR
