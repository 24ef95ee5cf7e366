"""One run's folder and the typed readers of its tables: every reader of a run goes through :class:`Run`.

A run folder (``runs/NAME``; layout in :class:`jasco_utils.paths.RunLayout`) holds the
resolved configuration (``config.json``, written when the run starts: what every stage and
notebook of the run reads, instead of parsing the TOML again), the manifest, each ALLM's
outputs table, each judged table, the judge check's tables, the figures and
``results.json``. :class:`Run` reads them, checked, with the file, line and column of any
fault named:

>>> run = Run("runs/cpu")
>>> run.config_path.as_posix()
'runs/cpu/config.json'
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from jasco_utils.config import ConfigError, RunConfig
from jasco_utils.io import TableError, atomic_open, read_csv_checked, read_table_checked
from jasco_utils.paths import RunLayout

#: The text columns a judged table carries beside its scored columns (:meth:`Run.judged`).
JUDGED_TEXTS: tuple[str, ...] = ("prompt", "audio", "audio_sound", "spoken_text", "tgt_text", "audio_only_target",
                                 "speech_only_target", "target_keywords", "allm_output", "judge_output", "reask_output")


class Run(RunLayout):
    """A run folder, with readers of its configuration and tables."""

    @property
    def config_path(self) -> Path:
        """``config.json``: the run's configuration, resolved (every model's generation settings filled in)."""
        return self.root / "config.json"

    def write_config(self, config: RunConfig) -> Path:
        """Write the resolved configuration (:meth:`RunConfig.to_json`) to :attr:`config_path`."""
        from jasco_utils.io import make_folder

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
            raise ConfigError(f"{self.config_path}: no such file; a run writes it when it starts "
                              "(`jasco reproduce`, or pipeline.start_run)")
        try:
            return RunConfig.from_json(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.config_path}: cannot read the run's configuration: {e}") from None

    def manifest(self) -> pd.DataFrame:
        """The run's manifest, checked (:func:`jasco_utils.inference.run.read_manifest`)."""
        from jasco_utils.inference.run import read_manifest

        return read_manifest(self.manifest)

    def outputs(self, allm: str | None = None) -> pd.DataFrame:
        """The ALLM outputs tables (one ALLM's when named), as text, whole clips checked.

        Each row has ``model`` (the table's, else the file's name) and ``status`` (``ok``
        where the table has none).

        Raises:
            TableError: A table is malformed (file, line, column), or no table of ``allm``.
        """
        from jasco_utils.data.manifest import check_rows

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

    def judged(self, allm: str | None = None, judge: str | None = None, keep_failed: bool = False,
               files: list[Path] | None = None) -> pd.DataFrame:
        """The judged tables' rows: scored columns (:data:`jasco_utils.analysis.scoring.SCORED_COLUMNS`:
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
            TableError: As :func:`jasco_utils.analysis.scoring.read_judged`.
        """
        from jasco_utils.analysis.scoring import detect_layout, read_judged
        from jasco_utils.judging.parsing import ORIGINAL_OUTPUT_COLUMN

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
        :func:`jasco_utils.analysis.scoring.read_judged_files`); failed judge calls refuse the table.

        Raises:
            TableError: A table is malformed, or has rows whose judge call failed.
        """
        from jasco_utils.analysis.scoring import read_judged_files

        return read_judged_files(self.judged_files() if files is None else files)

    def judge_check_files(self) -> list[Path]:
        """The judge check's judged control tables."""
        from jasco_utils.paths import judged_files

        return judged_files(self.check_dir)

    def judge_check(self) -> pd.DataFrame:
        """The judge check's rows (:func:`jasco_utils.analysis.judge_check.read_checked`); empty when none ran."""
        from jasco_utils.analysis.judge_check import read_checked

        files = self.judge_check_files()
        return read_checked(files) if files else pd.DataFrame()


def as_run(run_dir: str | os.PathLike[str] | Run) -> Run:
    """A :class:`Run` for a folder (or the run itself)."""
    return run_dir if isinstance(run_dir, Run) else Run(run_dir)


__all__ = ["JUDGED_TEXTS", "Run", "TableError", "as_run"]
