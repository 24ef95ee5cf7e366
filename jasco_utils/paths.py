"""Every path the project uses, in one place.

Layout (cookiecutter-data-science style): ``data/raw`` holds the immutable dataset
(git-ignored), ``data/processed`` intermediate results of the stand-alone commands
(manifests, outputs, judgements), ``runs/NAME`` one run each (:class:`RunLayout`: its tables,
figures, executed notebooks and ``results.json``). Nothing is written
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


#: Words that mark a name as a secret's (a notebook parameter, a configuration option), as
#: one of its ``_``-separated parts (``hf_token``, not ``tokenizer_mode``).
SECRET_WORDS: tuple[str, ...] = ("api_key", "apikey", "key", "token", "secret", "password", "passwd", "credentials")


def looks_secret(name: str) -> bool:
    """Whether a parameter or option name is a secret's (``*_env`` names a variable: not one).

    >>> [looks_secret(n) for n in ("api_key", "hf_token", "api_key_env", "tokenizer_mode", "max_tokens")]
    [True, True, False, False, False]
    """
    low = name.lower().replace("-", "_")
    if low.endswith("_env"):
        return False
    parts = low.split("_")
    return any(w in parts or ("_" in w and w in low) for w in SECRET_WORDS)


def refuse_secret_parameters(namespace: dict) -> None:
    """Stop a notebook given a parameter named like a secret (``papermill -p api_key ...``).

    Keys reach the project from environment variables only (``api_key_env`` names one).

    Raises:
        ValueError: Naming the parameter and what to do instead.

    >>> refuse_secret_parameters({"run_dir": "runs/cpu", "api_key_env": "OPENAI_API_KEY"})
    >>> refuse_secret_parameters({"api_key": "sk-1"})
    Traceback (most recent call last):
    ...
    ValueError: parameter 'api_key' looks like a secret: keys are read from environment variables only (name one with api_key_env in the judges file or run configuration); delete this executed notebook, which holds the value papermill injected
    """
    for name, value in namespace.items():
        if isinstance(value, (str, int, float, bool, list, dict)) and not name.startswith("_") and looks_secret(name):
            raise ValueError(
                f"parameter {name!r} looks like a secret: keys are read from environment variables only (name one "
                "with api_key_env in the judges file or run configuration); delete this executed notebook, which "
                "holds the value papermill injected"
            )


#: The call store every run shares by default (cache and resume).
DEFAULT_STORE = PROCESSED_DIR / "calls.sqlite"
#: Separator between the outputs table's name and the judge's key in a judged file's name.
JUDGED_SEP = "__"
#: Suffix of the judged tables written in the original ``eval.py`` layout.
ORIGINAL_SUFFIX = ".original.csv"


class RunLayout:
    """Where one run's files go, and how they are named.

    A run folder (``runs/NAME``, or ``data/processed`` for the stand-alone commands) holds
    ``manifest.csv``, ``outputs/ALLM.csv`` (+ ``.parquet``) per ALLM, ``judged/ALLM__JUDGE.csv``
    (+ ``.parquet``, and ``.original.csv`` when asked) per ALLM and judge, and
    ``notebooks/`` (the executed notebooks), ``judge_check/`` (the judge check's tables),
    ``figures/`` (Table II, Figure 2, statistics, provenance) and ``results.json`` (the run's
    numbers in one file), so that one run never overwrites another's results.

    >>> layout = RunLayout("runs/cpu")
    >>> layout.judged_path("Qwen2-Audio", "llama-3.1-70b").as_posix()
    'runs/cpu/judged/Qwen2-Audio__llama-3.1-70b.csv'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.csv"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def judged_dir(self) -> Path:
        return self.root / "judged"

    @property
    def notebooks_dir(self) -> Path:
        return self.root / "notebooks"

    @property
    def check_dir(self) -> Path:
        """The judge check: the control table and each judge's judged control table."""
        return self.root / "judge_check"

    @property
    def figures_dir(self) -> Path:
        """Table II, Figure 2, the statistics and the provenance of this run."""
        return self.root / "figures"

    @property
    def results(self) -> Path:
        """``results.json``: configuration, scores, intervals, judge check and provenance."""
        return self.root / "results.json"

    def output_path(self, allm: str, suffix: str = ".csv") -> Path:
        """The outputs table of one ALLM."""
        return self.outputs_dir / f"{allm}{suffix}"

    def judged_path(self, outputs_stem: str, judge: str, suffix: str = ".csv") -> Path:
        """The judged table of one outputs table by one judge (``suffix`` ``.original.csv`` too)."""
        return self.judged_dir / judged_name(outputs_stem, judge, suffix)

    def output_files(self) -> list[Path]:
        """The ALLM outputs tables present (CSV), by name."""
        return sorted(self.outputs_dir.glob("*.csv"))

    def judged_files(self) -> list[Path]:
        """The judged tables present (CSV, this project's layout), by name."""
        return judged_files(self.judged_dir)


def judged_name(outputs_stem: str, judge: str, suffix: str = ".csv") -> str:
    """``ALLM__JUDGE.csv``: the file name of an outputs table judged by one judge.

    >>> judged_name("Qwen2-Audio", "llama-3.1-70b", ".parquet")
    'Qwen2-Audio__llama-3.1-70b.parquet'
    """
    return f"{outputs_stem}{JUDGED_SEP}{judge}{suffix}"


def judged_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The judged tables of a folder (``*__*.csv``, without the original-layout copies), by name."""
    return [p for p in sorted(Path(folder).glob(f"*{JUDGED_SEP}*.csv")) if not p.name.endswith(ORIGINAL_SUFFIX)]
