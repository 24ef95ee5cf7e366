"""Every path the project uses, in one place.

Layout (cookiecutter-data-science style): ``data/raw`` holds the immutable dataset
(git-ignored), ``data/processed`` intermediate results of the stand-alone commands
(manifests, outputs, judgements), ``runs/NAME`` one run each (the folder's layout is
:class:`jasco_utils.run.Run`'s). Nothing is written outside the project root
(:func:`project_root`) unless a caller passes another path.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The installed package (its configurations, templates and notebooks are package data).
PACKAGE_DIR = Path(__file__).resolve().parent.parent
#: Environment variable naming the folder that holds ``data/`` and ``runs/``.
HOME_ENV = "JASCO_HOME"


def _is_clone(folder: Path) -> bool:
    """Whether ``folder`` is this project's source tree (a clone, installed editable)."""
    return (folder / "pyproject.toml").is_file() and (folder / "notebooks").is_dir()


def project_root() -> Path:
    """Where the project's data, runs and call store go.

    ``$JASCO_HOME`` when set; else the source tree when the package runs from a clone (the
    layout of ``make setup``); else the current working folder (an installed wheel never
    writes beside ``site-packages``).
    """
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return PACKAGE_DIR.parent if _is_clone(PACKAGE_DIR.parent) else Path.cwd().resolve()


PROJECT_ROOT = project_root()
DATA_DIR = PROJECT_ROOT / "data"
RAW_DIR = DATA_DIR / "raw"
PROCESSED_DIR = DATA_DIR / "processed"
RUNS_DIR = PROJECT_ROOT / "runs"
#: The stage notebooks: the clone's ``notebooks/`` (where JupyterLab opens them), else the
#: copy the wheel carries as package data.
NOTEBOOKS_DIR = (PACKAGE_DIR.parent if _is_clone(PACKAGE_DIR.parent) else PACKAGE_DIR) / "notebooks"
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


def project_path(path: str | os.PathLike[str]) -> str:
    """A path given relative to the project root, made absolute; absolute paths and ``""`` unchanged.

    Notebooks resolve their path parameters with it, so they run the same from JupyterLab
    (which starts them in ``notebooks/``), from papermill, and from any other folder.

    >>> project_path("runs/cpu") == str(PROJECT_ROOT / "runs" / "cpu")
    True
    >>> project_path(""), project_path("/tmp/x")
    ('', '/tmp/x')
    """
    path = os.fspath(path)
    if not path:
        return ""
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else PROJECT_ROOT / p)


#: The call store every run shares by default (cache and resume).
DEFAULT_STORE = PROCESSED_DIR / "calls.sqlite"
#: Separator between the outputs table's name and the judge's key in a judged file's name.
JUDGED_SEP = "__"
#: Suffix of the judged tables written in the original ``eval.py`` layout.
ORIGINAL_SUFFIX = ".original.csv"


def judged_name(outputs_stem: str, judge: str, suffix: str = ".csv") -> str:
    """``ALLM__JUDGE.csv``: the file name of an outputs table judged by one judge.

    >>> judged_name("Qwen2-Audio", "llama-3.1-70b", ".parquet")
    'Qwen2-Audio__llama-3.1-70b.parquet'
    """
    return f"{outputs_stem}{JUDGED_SEP}{judge}{suffix}"


def judged_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The judged tables of a folder (``*__*.csv``, without the original-layout copies), by name."""
    return [p for p in sorted(Path(folder).glob(f"*{JUDGED_SEP}*.csv")) if not p.name.endswith(ORIGINAL_SUFFIX)]
