"""One run's folder and the typed readers of its tables: every reader of a run goes through :class:`Run`.

A run folder (``runs/NAME``, or ``data/processed`` for the stand-alone commands) holds the
resolved configuration (``config.json``, written when the run starts: what every stage and
notebook of the run reads, instead of parsing the TOML again), the manifest, each ALLM's
outputs table, each judged table, the judge check's tables, the record of each finished
stage (``stages.jsonl``), the figures and ``results.json``. :class:`Run` reads them,
checked, with the file, line and column of any fault named:

>>> run = Run("runs/cpu")
>>> run.config_path.as_posix()
'runs/cpu/config.json'
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from jasco_utils.config import RunConfig
from jasco_utils.core.errors import ConfigError
from jasco_utils.core.io import TableError, atomic_open, make_folder, read_csv_checked, read_table_checked
from jasco_utils.core.paths import judged_files, judged_name
from jasco_utils.data.manifest import check_rows
from jasco_utils.inference.run import read_manifest
from jasco_utils.judging.parsing import ORIGINAL_OUTPUT_COLUMN
from jasco_utils.judging.tables import detect_layout, names_from_path, read_checked, read_judged, read_judged_files

#: The text columns a judged table carries beside its scored columns (:meth:`Run.judged`).
JUDGED_TEXTS: tuple[str, ...] = (
    "prompt",
    "audio",
    "audio_sound",
    "spoken_text",
    "tgt_text",
    "audio_only_target",
    "speech_only_target",
    "target_keywords",
    "allm_output",
    "judge_output",
    "reask_output",
)
#: The fields of a stage record (a line of ``stages.jsonl``, :meth:`Run.stage_records`).
STAGE_FIELDS: tuple[str, ...] = (
    "stage",
    "model",
    "input",
    "shard",
    "started_at",
    "finished_at",
    "wall_s",
    "num_gpus",
    "num_cpus",
    "executor",
    "node",
)
#: The columns of :meth:`Run.call_rows`: where a row is, then how its call went.
CALL_COLUMNS: tuple[str, ...] = (
    "stage",
    "model",
    "file",
    "from_cache",
    "cache_key",
    "latency_s",
    "prompt_tokens",
    "completion_tokens",
)


class Run:
    """A run folder: where its files go, how they are named, and the readers of its tables.

    A run folder (``runs/NAME``, or ``data/processed`` for the stand-alone commands) holds
    ``manifest.csv``, ``outputs/ALLM.csv`` (+ ``.parquet``) per ALLM, ``judged/ALLM__JUDGE.csv``
    (+ ``.parquet``, and ``.original.csv`` when asked) per ALLM and judge, and
    ``notebooks/`` (the executed notebooks), ``judge_check/`` (the judge check's tables),
    ``figures/`` (Table II, Figure 2, statistics, provenance) and ``results.json`` (the run's
    numbers in one file), so that one run never overwrites another's results.

    >>> layout = Run("runs/cpu")
    >>> layout.judged_path("Qwen2-Audio", "llama-3.1-70b").as_posix()
    'runs/cpu/judged/Qwen2-Audio__llama-3.1-70b.csv'
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        """``manifest.csv``: the run's clips x instructions (:meth:`manifest` reads it)."""
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

    @property
    def config_path(self) -> Path:
        """``config.json``: the run's configuration, resolved (every model's generation settings filled in)."""
        return self.root / "config.json"

    @property
    def stages_path(self) -> Path:
        """``stages.jsonl``: one JSON object per finished stage (:data:`STAGE_FIELDS`), appended as each ends."""
        return self.root / "stages.jsonl"

    def write_config(self, config: RunConfig) -> Path:
        """Write the resolved configuration (:meth:`RunConfig.to_json`) to :attr:`config_path`."""
        make_folder(self.root)
        with atomic_open(self.config_path, "w", encoding="utf-8") as fh:
            fh.write(config.to_json() + "\n")
        return self.config_path

    def config(self) -> RunConfig:
        """The configuration the run was started with.

        Raises:
            ConfigError: No ``config.json`` (the run was not started by ``jasco reproduce``),
                or one that cannot be read.
        """
        if not self.config_path.is_file():
            raise ConfigError(
                f"{self.config_path}: no such file; a run writes it when it starts "
                "(`jasco reproduce`, or pipeline.start_run)"
            )
        try:
            return RunConfig.from_json(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.config_path}: cannot read the run's configuration: {e}") from None

    def manifest(self) -> pd.DataFrame:
        """The run's manifest, checked (:func:`jasco_utils.inference.run.read_manifest`)."""
        return read_manifest(self.manifest_path)

    def outputs(self, allm: str | None = None) -> pd.DataFrame:
        """The ALLM outputs tables (one ALLM's when named), as text, whole clips checked.

        Each row has ``model`` (the table's, else the file's name) and ``status`` (``ok``
        where the table has none).

        Raises:
            TableError: A table is malformed (file, line, column), or no table of ``allm``.
        """
        files = self.output_files() if allm is None else [self.output_path(allm)]
        frames = []
        for path in files:
            df = read_csv_checked(path, ("id", "prompt", "allm_output"), what="outputs table")
            check_rows(df, path, what="outputs table")
            if "model" not in df.columns:
                df.insert(len(df.columns), "model", path.stem)
            df["status"] = df["status"].replace("", "ok") if "status" in df.columns else "ok"
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def judged(
        self,
        allm: str | None = None,
        judge: str | None = None,
        keep_failed: bool = False,
        files: list[Path] | None = None,
    ) -> pd.DataFrame:
        """The judged tables' rows: scored columns (:data:`jasco_utils.judging.tables.SCORED_COLUMNS`:
        the rating and orientation read again from the judge's answer, the re-ask fallback
        applied), then every other column of the table as text (the texts of
        :data:`JUDGED_TEXTS`, the judge's raw answer as ``judge_output`` in either layout, the
        provenance columns), with ``status`` (``ok`` where the table has none) and ``error``.

        Args:
            allm, judge: Only this ALLM's / judge's rows.
            keep_failed: Keep rows whose judge call failed, unparsed, instead of refusing
                the table: for showing a run, never for scoring it.
            files: These judged tables instead of the run's.

        Raises:
            TableError: As :func:`jasco_utils.judging.tables.read_judged`.
        """
        frames = []
        for path in self.judged_files() if files is None else files:
            scored = read_judged(path, keep_failed=keep_failed)
            raw = read_table_checked(path, what="judged table")
            if detect_layout(raw) != "project":
                raw = raw.assign(judge_output=raw.get(ORIGINAL_OUTPUT_COLUMN, ""))
            rest = raw[[c for c in raw.columns if c not in scored.columns]].reset_index(drop=True)
            out = pd.concat([scored.reset_index(drop=True), rest], axis=1)
            out["status"] = out["status"].replace("", "ok") if "status" in out.columns else "ok"
            if "error" not in out.columns:
                out["error"] = ""
            frames.append(out)
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if allm is not None and len(df):
            df = df[df["model"] == allm].reset_index(drop=True)
        if judge is not None and len(df):
            df = df[df["judge"] == judge].reset_index(drop=True)
        return df

    def scored(self, files: list[Path] | None = None) -> pd.DataFrame:
        """The judged tables as scored rows only (what every metric reads:
        :func:`jasco_utils.judging.tables.read_judged_files`); failed judge calls refuse the table.

        Raises:
            TableError: A table is malformed, or has rows whose judge call failed.
        """
        return read_judged_files(self.judged_files() if files is None else files)

    def judge_check_files(self) -> list[Path]:
        """The judge check's judged control tables."""
        return judged_files(self.check_dir)

    def judge_check(self) -> pd.DataFrame:
        """The judge check's rows (:func:`jasco_utils.judging.tables.read_checked`); empty when none ran."""
        files = self.judge_check_files()
        return read_checked(files) if files else pd.DataFrame()

    def stage_records(self) -> pd.DataFrame:
        """The finished stages (``stages.jsonl``): one row each, in the order they finished,
        :data:`STAGE_FIELDS` first (a field a record lacks is empty; ``wall_s``, ``num_gpus``
        and ``num_cpus`` numbers), then any other field. Empty when the file is absent. A last
        line without its line break (a writer stopped while appending) is left out.

        Raises:
            TableError: Another line that is not a JSON object with ``stage``, ``model`` and a
                non-negative ``wall_s`` (its line number named).
        """
        path = self.stages_path
        if not path.is_file():
            return pd.DataFrame(columns=list(STAGE_FIELDS))
        text, records = path.read_text(encoding="utf-8"), []
        lines = text.splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                if n == len(lines) and not text.endswith("\n"):
                    break  # torn: its writer stopped before the end of the line
                raise TableError(f"{path}: line {n}: not JSON ({e}); remove the line or finish the record") from None
            wall = rec.get("wall_s") if isinstance(rec, dict) else None
            if not (
                isinstance(rec, dict)
                and rec.get("stage")
                and rec.get("model")
                and isinstance(wall, (int, float))
                and not isinstance(wall, bool)
                and wall >= 0
            ):
                raise TableError(
                    f"{path}: line {n}: a stage record is a JSON object with stage, model and wall_s "
                    f"(seconds, 0 or more); got {line[:120]!r}"
                )
            records.append(rec)
        df = pd.DataFrame(records)
        for col in STAGE_FIELDS:
            if col not in df.columns:
                df[col] = None
        for col in ("wall_s", "num_gpus", "num_cpus"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
        return df[[*STAGE_FIELDS, *(c for c in df.columns if c not in STAGE_FIELDS)]]

    def call_rows(self) -> pd.DataFrame:
        """Every row of the run's tables (outputs, judged, the judge check's), as :data:`CALL_COLUMNS`.

        ``stage`` is ``infer``, ``judge`` or ``check``; ``model`` the key in the file's name
        (the ALLM's; the judge's for judged tables); ``from_cache`` True, False, or missing
        where the table does not say (imported answers, older tables); ``latency_s`` and
        the token counts numbers, missing where the table has none (older tables, engines
        that count none).

        Raises:
            TableError: A table cannot be read.
        """
        tables = [("infer", p, p.stem) for p in self.output_files()]
        tables += [
            (stage, p, names_from_path(p)[1])
            for stage, files in (("judge", self.judged_files()), ("check", self.judge_check_files()))
            for p in files
        ]
        frames = []
        for stage, path, model in tables:
            df = read_table_checked(path, what="table")
            out = pd.DataFrame({"stage": stage, "model": model, "file": path.name}, index=df.index)
            out["from_cache"] = df["from_cache"].map({"True": True, "False": False}) if "from_cache" in df else None
            out["cache_key"] = df.get("cache_key", "")
            for col in CALL_COLUMNS[5:]:
                out[col] = pd.to_numeric(df[col], errors="coerce") if col in df else float("nan")
            frames.append(out)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CALL_COLUMNS))


def as_run(run_dir: str | os.PathLike[str] | Run) -> Run:
    """A :class:`Run` for a folder (or the run itself)."""
    return run_dir if isinstance(run_dir, Run) else Run(run_dir)


__all__ = ["CALL_COLUMNS", "JUDGED_TEXTS", "Run", "STAGE_FIELDS", "TableError", "as_run"]
