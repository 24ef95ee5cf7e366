"""What a run used: rows, calls, tokens, wall time, GPU-seconds and cost, per model and per stage.

Stages are ``infer`` (an ALLM's outputs table), ``judge`` (a judge's judged tables) and
``check`` (a judge's judged control tables of the judge check). Per (stage, model), from the
run's tables (:meth:`jasco_utils.run.Run.call_rows`), the run's record of finished stages
(:meth:`~jasco_utils.run.Run.stage_records`) and its configuration (prices):

- ``rows``; ``calls``, the requests sent this run (rows not served from the call store,
  identical requests of one table counted once, as the runner sends them once);
  ``from_store``, the rows served from the store. Imported answers are neither.
- ``prompt_tokens`` / ``completion_tokens``: the tokens of all rows (each distinct request
  once: what the run would take without a cache); ``new_prompt_tokens`` /
  ``new_completion_tokens``: those of this run's calls only (0 when it made none). The counts are the engine's
  own (the usage an OpenAI-compatible server reports; vLLM's and llama.cpp's counts); a
  judged row's include its re-ask. Missing (NaN, shown as "unknown"), never 0, where no row
  has any: engines that count none (the reference judge), imported answers, tables written
  before the counts were kept. ``rows_without_tokens`` counts the rows lacking them.
- ``wall_s`` and ``gpu_s``: the stage records' ``wall_s`` and ``wall_s * num_gpus``, summed
  (shards that ran side by side add up) over the last record of each job (stage, model,
  input, shard): the run that made the tables as they are, not earlier runs in the same
  folder; ``wall_source`` ``stages``. Without a record of that stage and model, the sum of
  the rows' call latencies (``wall_source`` ``latency``: the time the answers took when
  they were called, this run or before, not this run's time), and GPU-seconds unknown.
- ``cost_usd`` (all rows' tokens) and ``new_cost_usd`` (this run's calls), where the model's
  entry has a ``price`` (:class:`jasco_utils.config.TokenPrice`, dollars per million tokens).
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import pandas as pd

from jasco_utils.core.errors import ConfigError
from jasco_utils.models.spec import ModelSpec
from jasco_utils.run import Run, as_run

#: The stages, in the order a run goes through them.
STAGES: tuple[str, ...] = ("infer", "judge", "check")
#: The columns of :func:`usage_table`.
USAGE_COLUMNS: tuple[str, ...] = (
    "stage",
    "model",
    "rows",
    "calls",
    "from_store",
    "prompt_tokens",
    "completion_tokens",
    "new_prompt_tokens",
    "new_completion_tokens",
    "rows_without_tokens",
    "wall_s",
    "gpu_s",
    "wall_source",
    "cost_usd",
    "new_cost_usd",
)
_SUMMED = (
    "rows",
    "calls",
    "from_store",
    "prompt_tokens",
    "completion_tokens",
    "new_prompt_tokens",
    "new_completion_tokens",
    "rows_without_tokens",
    "wall_s",
    "gpu_s",
    "cost_usd",
    "new_cost_usd",
)


def _specs(run: Run) -> dict[tuple[str, str], ModelSpec]:
    """(stage, key) -> the run's model spec; empty without ``config.json``."""
    try:
        config = run.config()
    except ConfigError:
        return {}
    out = {("infer", s.key): s for s in config.allms}
    out.update({(stage, s.key): s for s in config.judges for stage in ("judge", "check")})
    return out


def _distinct(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with each table's identical requests (one cache key) once: the runner sends them once."""
    keyed = rows["cache_key"].fillna("").astype(str).ne("")
    return pd.concat([rows[keyed].drop_duplicates(["file", "cache_key"]), rows[~keyed]])


def _tokens(requests: pd.DataFrame) -> tuple[float, float]:
    """Prompt and completion tokens of ``requests``: 0 for none, NaN when none of them has counts."""
    return tuple(
        float(requests[c].sum(min_count=min(1, len(requests)))) for c in ("prompt_tokens", "completion_tokens")
    )


def _cost(spec: ModelSpec | None, prompt: float, completion: float) -> float:
    if spec is None or spec.price is None or (math.isnan(prompt) and math.isnan(completion)):
        return math.nan
    return spec.price.cost(0 if math.isnan(prompt) else prompt, 0 if math.isnan(completion) else completion)


def usage_table(run_dir: str | os.PathLike[str] | Run) -> pd.DataFrame:
    """The run's usage, one row per stage and model (:data:`USAGE_COLUMNS`; see the module).

    Raises:
        TableError: A table or ``stages.jsonl`` cannot be read.
    """
    run = as_run(run_dir)
    calls, stages, specs = run.call_rows(), run.stage_records(), _specs(run)
    stages = stages[stages["stage"].isin(STAGES)].assign(gpu_s=lambda d: d["wall_s"] * d["num_gpus"])
    jobs = [
        json.dumps(job, default=str)
        for job in zip(*(stages[c] for c in ("stage", "model", "input", "shard")), strict=False)
    ]
    last = stages[~pd.Series(jobs, index=stages.index, dtype=object).duplicated(keep="last")]
    timed = last.groupby(["stage", "model"])[["wall_s", "gpu_s"]].sum(min_count=1)
    out = []
    for (stage, model), rows in calls.groupby(["stage", "model"], sort=False):
        requests = _distinct(rows)
        new = requests[requests["from_cache"].eq(False)]
        tokens, new_tokens = _tokens(requests), _tokens(new)
        spec = specs.get((stage, model))
        if (stage, model) in timed.index:
            wall, gpu = timed.loc[(stage, model)]
            source = "stages"
        else:
            wall, gpu, source = float(requests["latency_s"].sum(min_count=1)), math.nan, "latency"
        out.append(
            {
                "stage": stage,
                "model": model,
                "rows": len(rows),
                "calls": len(new),
                "from_store": int(rows["from_cache"].eq(True).sum()),
                "prompt_tokens": tokens[0],
                "completion_tokens": tokens[1],
                "new_prompt_tokens": new_tokens[0],
                "new_completion_tokens": new_tokens[1],
                "rows_without_tokens": int((rows["prompt_tokens"].isna() & rows["completion_tokens"].isna()).sum()),
                "wall_s": float(wall),
                "gpu_s": float(gpu),
                "wall_source": source,
                "cost_usd": _cost(spec, *tokens),
                "new_cost_usd": _cost(spec, *new_tokens),
            }
        )
    table = pd.DataFrame(out, columns=list(USAGE_COLUMNS))
    order = {s: i for i, s in enumerate(STAGES)}
    return table.sort_values("stage", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)


def usage_totals(table: pd.DataFrame) -> pd.DataFrame:
    """Sums of :func:`usage_table` per stage and over all (``stage`` ``all``), ``model`` ``all``.

    A sum is missing only where every row's value is (priced models only add to the cost).
    """
    sums = [(stage, g) for stage, g in table.groupby("stage", sort=False)] + [("all", table)]
    rows = [
        {
            "stage": stage,
            "model": "all",
            **{c: float(g[c].sum(min_count=1)) for c in _SUMMED},
            "wall_source": "+".join(sorted(set(g["wall_source"]))),
        }
        for stage, g in sums
        if len(g)
    ]
    return pd.DataFrame(rows, columns=list(USAGE_COLUMNS))


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records"))  # NaN -> null


def usage_report(run_dir: str | os.PathLike[str] | Run) -> dict[str, Any]:
    """The run's usage as JSON-ready data: ``records`` (:func:`usage_table`) and ``totals``
    (:func:`usage_totals`), missing numbers as ``None`` (``results.json``'s ``usage``, the run's page)."""
    table = usage_table(run_dir)
    return {"records": _records(table), "totals": _records(usage_totals(table))}


def _n(value: float) -> str:
    return "unknown" if value is None or math.isnan(value) else f"{value:,.0f}"


def _seconds(value: float, source: str) -> str:
    if math.isnan(value):
        return "time unknown"
    number = f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    return f"{number} s {_WALL.get(source, '')}".rstrip()


def _usd(value: float) -> str:
    value = 0.0 if math.isnan(value) else value
    return f"${value:,.4f}" if value < 0.01 else f"${value:,.2f}"


#: How :func:`usage_lines` says where a stage's time comes from (:func:`usage_totals`' ``wall_source``).
_WALL = {"stages": "wall", "latency": "of call latency", "latency+stages": "wall (partly call latency)"}


def usage_lines(run_dir: str | os.PathLike[str] | Run) -> list[str]:
    """A few lines for the run's summary: per stage, its rows, calls, tokens and time; the cost
    where a model is priced. Empty for a run without tables.

    >>> usage_lines("no/such/run")
    []
    """
    totals = usage_totals(usage_table(run_dir))
    lines = []
    for r in totals[totals["stage"] != "all"].itertuples():
        tokens = r.prompt_tokens + r.completion_tokens
        uncounted = f", {r.rows_without_tokens:,.0f} rows uncounted" if r.rows_without_tokens else ""
        tokens = (
            "tokens unknown"
            if math.isnan(tokens)
            else f"{_n(tokens)} tokens ({_n(r.new_prompt_tokens + r.new_completion_tokens)} new{uncounted})"
        )
        gpu = "" if math.isnan(r.gpu_s) else f", {r.gpu_s:,.0f} GPU-s"
        lines.append(
            f"{r.stage:<6} {_n(r.rows)} rows: {_n(r.calls)} calls, {_n(r.from_store)} from the store; "
            f"{tokens}; {_seconds(r.wall_s, r.wall_source)}{gpu}"
        )
    total = totals[totals["stage"] == "all"]
    if len(total) and not math.isnan(total["cost_usd"].iloc[0]):
        lines.append(
            f"cost   {_usd(total['new_cost_usd'].iloc[0])} for this run's calls "
            f"({_usd(total['cost_usd'].iloc[0])} without the call store; priced models only)"
        )
    return lines


__all__ = ["STAGES", "USAGE_COLUMNS", "usage_lines", "usage_report", "usage_table", "usage_totals"]
