"""The run plan: what a run configuration will do on this machine, before any weight loads.

Per model (every ALLM, every judge): its rows, the answers already in the call store, and its
:class:`~jasco_utils.doctor.fit.Verdict` (:func:`~jasco_utils.doctor.fit.fit`). ``jasco
reproduce`` prints it first and stops when a model cannot run; ``jasco doctor --config`` prints
it with the machine's facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jasco_utils.config import RunConfig
from jasco_utils.data.dataset import N_CLIPS
from jasco_utils.doctor.fit import GB, Machine, ModelFacts, Verdict, fit, import_file
from jasco_utils.models.spec import ModelSpec


@dataclass
class PlanRow:
    """One model of a run plan: its verdict, the rows it computes, and how many may be stored."""

    verdict: Verdict
    rows: int
    stored: int | None  # answers of this model in the call store (any settings), None: unknown

    @property
    def stored_text(self) -> str:
        if self.verdict.engine == "import" or self.rows == 0:
            return ""
        if self.stored is None:
            return "cached: unknown"
        if self.stored == 0:
            return f"{self.rows} to compute (none stored)"
        return f"{max(0, self.rows - self.stored)}-{self.rows} to compute ({self.stored} stored)"


@dataclass
class RunPlan:
    """The models of a run in order, what each computes, and whether it runs here."""

    name: str
    n_clips: int
    rows: list[PlanRow]

    @property
    def blocking(self) -> list[Verdict]:
        """The verdicts that stop the run."""
        return [r.verdict for r in self.rows if r.verdict.blocking]

    def format(self) -> str:
        """The plan as a table, then each model's reason and what to change."""
        head = (
            "#",
            "role",
            "model",
            "engine",
            "rows",
            "call store",
            "params",
            "weights",
            "dtype",
            "TP x PP",
            "verdict",
        )
        table = [head]
        notes = []
        for i, row in enumerate(self.rows, 1):
            v = row.verdict
            gpu = v.engine == "vllm"
            table.append(
                (
                    str(i),
                    v.role,
                    v.key,
                    v.engine,
                    str(row.rows) if row.rows else "",
                    row.stored_text,
                    ("?" if v.params is None else f"{v.params / 1e9:.1f}B") if gpu else "",
                    f"{v.weight_bytes / GB:.1f} GB" if gpu and v.weight_bytes else "",
                    v.dtype if gpu else "",
                    f"{v.tp} x {v.pp}" if gpu else "",
                    v.status,
                )
            )
            if v.reason:
                notes.append(f"  {v.key}: {v.reason}")
            notes += [f"    change: {a}" for a in v.advice]
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
        title = f"run plan: {self.name}, {self.n_clips} clips, {len(self.rows)} models in this order"
        end = (
            f"stops before anything loads: {', '.join(v.key for v in self.blocking)} cannot run here"
            if self.blocking
            else "every model can run here (or cannot be told)"
        )
        return "\n".join([title, *lines, *notes, end])


def clip_count(config: RunConfig, clips: list[int] | None = None, all_clips: bool = False) -> int:
    """The run's clips: ``clips`` when given, else all 80 with ``all_clips``, else the configuration's."""
    return len(clips) if clips else (N_CLIPS if all_clips or not getattr(config, "clips", None) else len(config.clips))


def row_counts(
    config: RunConfig, clips: list[int] | None = None, all_clips: bool = False, n_controls: int = 10
) -> dict[str, int]:
    """Rows each model of a run computes, by ``role:key``.

    An ALLM answers clips x 8 instructions; a judge rates every ALLM's answers (imported ones
    whose file is there included) and, with the judge check, ``n_controls`` control answers
    for each clip of the check.
    """
    allm_rows = clip_count(config, clips, all_clips) * 8
    check_clips = getattr(config, "judge_check_clips", None)
    per_judge = getattr(config, "judge_check_judge_clips", {}) or {}
    checking = getattr(config, "judge_check", False)
    answering = [s for s in config.allms if s.engine != "import" or import_file(s).is_file()]
    out = {f"ALLM:{s.key}": allm_rows for s in config.allms if s.engine != "import" or import_file(s).is_file()}
    for judge in config.judges:
        clips_checked = per_judge.get(judge.key, check_clips)
        check_rows = (len(clips_checked) if clips_checked else N_CLIPS) * n_controls if checking else 0
        out[f"judge:{judge.key}"] = allm_rows * len(answering) + check_rows
    return out


def _stored_for(spec: ModelSpec, role: str, stored: dict[tuple[str, str, str], int] | None) -> int | None:
    if stored is None:
        return None
    if role == "ALLM":
        tasks = {"cascade"} if spec.engine == "cascade" else {"allm"}
    else:
        tasks = {getattr(spec, "template", None) or ""}
    engine = getattr(spec, "backend_engine", None) or spec.engine
    return sum(
        n
        for (task, eng, model), n in stored.items()
        if task in tasks and eng == engine and (spec.model is None or model == spec.model)
    )


def build_plan(
    config: RunConfig,
    machine: Machine,
    facts: Mapping[str, ModelFacts],
    rows: Mapping[str, int],
    stored: dict[tuple[str, str, str], int] | None,
    n_clips: int,
) -> RunPlan:
    """A run's plan: every ALLM, then every judge, with its rows, store count and verdict.

    Args:
        config: The run configuration (its ``name``, ``allms`` and ``judges`` are read).
        machine: The machine (:func:`jasco_utils.doctor.machine.gather_machine`, or made up in tests).
        facts: Per ``role:key``, what is known of each model (missing: nothing known).
        rows: Per ``role:key``, the rows it computes (:func:`row_counts`).
        stored: The call store's counts (:func:`jasco_utils.doctor.machine.stored_answers`).
        n_clips: The run's clips (:func:`clip_count`).
    """
    out = []
    for role, specs in (("ALLM", config.allms), ("judge", config.judges)):
        for spec in specs:
            key = f"{role}:{spec.key}"
            verdict = fit(spec, facts.get(key, ModelFacts()), machine, role)
            n = rows.get(key, 0)
            out.append(PlanRow(verdict, n, _stored_for(spec, role, stored) if n else None))
    return RunPlan(getattr(config, "name", ""), n_clips, out)
