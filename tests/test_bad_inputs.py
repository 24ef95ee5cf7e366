"""Bad inputs, as a tired or hostile user gives them, across every command.

Each case runs ``jasco ...`` in-process on a fresh workspace (a 3-clip dataset, its
manifest, an outputs table, judged tables, a run configuration), after breaking one thing.
Each must end with a non-zero exit, no traceback, and a message that names what is at
fault: the file, the line an editor shows, the field or option, and what is allowed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from helpers.judged_tables import make_rows, project_layout_file
from helpers.outputs import outputs_table

from jasco_utils.cli import main
from jasco_utils.core.io import write_csv
from jasco_utils.data.manifest import build_manifest


@dataclass
class Workspace:
    root: Path
    data: Path  # dataset: v0.csv and 1.wav .. 3.wav
    manifest: Path
    outputs: Path
    judged: Path  # judged/ with A__j1.csv and B__j1.csv
    config: Path  # a run configuration (TOML)
    judges: Path  # a judges file (TOML)

    def fmt(self, arg: str) -> str:
        return arg.format(
            ws=self.root,
            data=self.data,
            manifest=self.manifest,
            outputs=self.outputs,
            judged=self.judged,
            config=self.config,
            judges=self.judges,
        )


@pytest.fixture
def ws(synthetic_dataset, tmp_path, monkeypatch) -> Workspace:
    monkeypatch.delenv("JASCO_DATA_DIR", raising=False)
    root = tmp_path / "ws"
    root.mkdir()
    manifest = build_manifest(synthetic_dataset)
    write_csv(manifest, root / "manifest.csv")
    write_csv(outputs_table([1, 2, 3]), root / "outputs.csv")
    judged = root / "judged"
    judged.mkdir()
    for seed, model in enumerate(["A", "B"]):
        ids, outs = make_rows(seed, clips=range(1, 4))
        project_layout_file(judged / f"{model}__j1.csv", ids, outs, model=model, judge="j1")
    (root / "run.toml").write_text('name = "t"\nclips = [1, 2]\n[judging]\njudges = ["smollm2"]\n')
    (root / "judges.toml").write_text('["mine"]\nengine = "embedded"\n')
    return Workspace(
        root,
        synthetic_dataset,
        root / "manifest.csv",
        root / "outputs.csv",
        judged,
        root / "run.toml",
        root / "judges.toml",
    )


# --- ways to break the workspace --------------------------------------------------------


def edit_csv(name: str, fn: Callable[[pd.DataFrame], pd.DataFrame]):
    def setup(ws: Workspace) -> None:
        path = ws.root / name if not name.startswith("data/") else ws.data / name[5:]
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        write_csv(fn(df), path)

    return setup


def write_file(name: str, content: str | bytes):
    def setup(ws: Workspace) -> None:
        path = ws.root / name if not name.startswith("data/") else ws.data / name[5:]
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(ws.fmt(content) if "{ws}" in content else content, encoding="utf-8")

    return setup


def append_line(name: str, line: str):
    def setup(ws: Workspace) -> None:
        path = ws.root / name if not name.startswith("data/") else ws.data / name[5:]
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line)

    return setup


def set_cell(name: str, row: int, column: str, value: str):
    def fn(df):
        df.loc[row, column] = value
        return df

    return edit_csv(name, fn)


def drop_column(name: str, column: str):
    return edit_csv(name, lambda df: df.drop(columns=[column]))


def multiline_answers(name: str):
    """Answers over several lines, as real judge and ALLM answers are: physical lines differ from rows."""

    def fn(df):
        col = "judge_output" if "judge_output" in df.columns else "allm_output"
        df[col] = df[col].astype(str) + "\nsecond line\nthird line"
        return df

    return edit_csv(name, fn)


def row_line(name: str, row: int) -> Callable[[Workspace], str]:
    """``line N``: where data row ``row`` of a CSV starts as an editor counts lines (the header
    is line 1; each earlier row takes one line plus the line breaks inside its cells)."""

    def expect(ws: Workspace) -> str:
        path = ws.root / name if not name.startswith("data/") else ws.data / name[5:]
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        breaks = sum(str(v).count("\n") for v in df.iloc[:row].to_numpy().ravel())
        return f"line {2 + row + breaks}"

    return expect


def last_line(name: str) -> Callable[[Workspace], str]:
    def expect(ws: Workspace) -> str:
        path = ws.root / name if not name.startswith("data/") else ws.data / name[5:]
        return f"line {path.read_text(encoding='utf-8').count(chr(10))}"

    return expect


def chain(*setups):
    def setup(ws: Workspace) -> None:
        for s in setups:
            s(ws)

    return setup


def remove(name: str):
    def setup(ws: Workspace) -> None:
        path = ws.data / name[5:] if name.startswith("data/") else ws.root / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return setup


def make_dir(name: str):
    return lambda ws: (ws.root / name).mkdir(parents=True, exist_ok=True)


@dataclass
class Case:
    id: str
    argv: list[str]
    setup: Callable[[Workspace], None] | None = None
    #: Substrings of stderr ({ws} etc. filled in), or functions of the workspace giving one.
    expect: tuple[str | Callable[[Workspace], str], ...] = ()
    env: dict[str, str] | None = None


JSONL_OK = '{"id": %d, "prompt": "%s", "allm_output": "walking"}'

CASES = [
    # ---- data validate -------------------------------------------------------------
    Case("validate-no-folder", ["data", "validate", "--data-dir", "{ws}/nope"], None, ("{ws}/nope",)),
    Case("validate-no-v0", ["data", "validate", "--data-dir", "{data}"], remove("data/v0.csv"), ("v0.csv",)),
    Case(
        "validate-v0-latin1",
        ["data", "validate", "--data-dir", "{data}"],
        write_file("data/v0.csv", "audio_id,Audio\n1,caf\xe9\n".encode("latin-1")),
        ("v0.csv", "line 2", "UTF-8"),
    ),
    Case(
        "validate-v0-missing-column",
        ["data", "validate", "--data-dir", "{data}"],
        drop_column("data/v0.csv", "Speech"),
        ("v0.csv", "Speech"),
    ),
    Case(
        "validate-v0-duplicate-id",
        ["data", "validate", "--data-dir", "{data}"],
        set_cell("data/v0.csv", 1, "audio_id", "1"),
        ("v0.csv", "audio_id repeated: [1]"),
    ),
    Case(
        "validate-v0-float-id",
        ["data", "validate", "--data-dir", "{data}"],
        set_cell("data/v0.csv", 0, "audio_id", "1.0"),
        ("v0.csv", "line 2", "audio_id", "1.0"),
    ),
    Case(
        "validate-v0-extra-field",
        ["data", "validate", "--data-dir", "{data}"],
        append_line("data/v0.csv", "4,a,b,c,d,e,f,EXTRA\n"),
        ("v0.csv", "line 5", "8 fields"),
    ),
    Case("validate-wav-missing", ["data", "validate", "--data-dir", "{data}"], remove("data/2.wav"), ("2.wav",)),
    Case(
        "validate-wav-garbage",
        ["data", "validate", "--data-dir", "{data}"],
        write_file("data/2.wav", b"not a wav at all"),
        ("2.wav",),
    ),
    Case("validate-v0-empty", ["data", "validate", "--data-dir", "{data}"], write_file("data/v0.csv", ""), ("v0.csv",)),
    # ---- manifest ------------------------------------------------------------------
    Case("manifest-no-folder", ["manifest", "--data-dir", "{ws}/nope", "--out", "{ws}/m.csv"], None, ("{ws}/nope",)),
    Case(
        "manifest-clips-reversed",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv", "--clips", "3-1"],
        None,
        ("--clips", "3-1"),
    ),
    Case(
        "manifest-clips-zero",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv", "--clips", "0-2"],
        None,
        ("--clips", "0"),
    ),
    Case(
        "manifest-clips-words",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv", "--clips", "all-of-them"],
        None,
        ("--clips",),
    ),
    Case(
        "manifest-clip-not-in-dataset",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv", "--clips", "5"],
        None,
        ("5", "v0.csv"),
    ),
    Case(
        "manifest-out-is-folder",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/judged"],
        None,
        ("{ws}/judged", "folder"),
    ),
    Case(
        "manifest-out-under-a-file",
        ["manifest", "--data-dir", "{data}", "--out", "{outputs}/m.csv"],
        None,
        ("{outputs}",),
    ),
    Case(
        "manifest-wav-garbage",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv"],
        write_file("data/2.wav", b"RIFF....WAVEfmt garbage"),
        ("2.wav",),
    ),
    Case(
        "manifest-duplicate-id",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv"],
        set_cell("data/v0.csv", 2, "audio_id", "2"),
        ("v0.csv", "line 4", "audio_id"),
    ),
    Case(
        "manifest-float-id",
        ["manifest", "--data-dir", "{data}", "--out", "{ws}/m.csv"],
        set_cell("data/v0.csv", 0, "audio_id", "1.0"),
        ("v0.csv", "line 2", "1.0"),
    ),
    # ---- infer ---------------------------------------------------------------------
    Case("infer-no-manifest", ["infer", "{ws}/nope.csv", "--import", "{outputs}"], None, ("{ws}/nope.csv",)),
    Case(
        "infer-manifest-binary",
        ["infer", "{manifest}", "--import", "{outputs}"],
        write_file("manifest.csv", b"\x00\x01\x02\xff\xfe"),
        ("manifest.csv",),
    ),
    Case(
        "infer-manifest-missing-column",
        ["infer", "{manifest}", "--import", "{outputs}"],
        drop_column("manifest.csv", "prompt"),
        ("manifest.csv", "prompt"),
    ),
    Case(
        "infer-manifest-extra-field",
        ["infer", "{manifest}", "--import", "{outputs}"],
        append_line("manifest.csv", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n"),
        ("manifest.csv", last_line("manifest.csv"), "fields"),
    ),
    Case(
        "infer-manifest-bad-id",
        ["infer", "{manifest}", "--import", "{outputs}"],
        set_cell("manifest.csv", 3, "id", "x"),
        ("manifest.csv", "line 5", "id"),
    ),
    Case("infer-vllm-no-model", ["infer", "{manifest}", "--engine", "vllm"], None, ("--model",)),
    Case("infer-import-missing", ["infer", "{manifest}", "--import", "{ws}/answers.jsonl"], None, ("answers.jsonl",)),
    Case(
        "infer-jsonl-array-line",
        ["infer", "{manifest}", "--import", "{ws}/a.jsonl"],
        write_file("a.jsonl", '[1, "x", "walking"]\n'),
        ("a.jsonl", "line 1", "object"),
    ),
    Case(
        "infer-jsonl-not-json",
        ["infer", "{manifest}", "--import", "{ws}/a.jsonl"],
        write_file("a.jsonl", "{id: 1, allm_output: walking}\n"),
        ("a.jsonl", "line 1", "JSON"),
    ),
    Case(
        "infer-jsonl-latin1",
        ["infer", "{manifest}", "--import", "{ws}/a.jsonl"],
        write_file("a.jsonl", '{"id": 1, "allm_output": "caf\xe9"}\n'.encode("latin-1")),
        ("a.jsonl", "line 1", "UTF-8"),
    ),
    Case(
        "infer-jsonl-answer-object",
        ["infer", "{manifest}", "--import", "{ws}/a.jsonl"],
        write_file("a.jsonl", '{"id": 1, "prompt": "x", "allm_output": {"text": "walking"}}\n'),
        ("a.jsonl", "line 1", "allm_output"),
    ),
    Case(
        "infer-import-answer-too-long",
        ["infer", "{manifest}", "--import", "{outputs}", "--name", "X"],
        set_cell("outputs.csv", 2, "allm_output", "walking " * 25_000),
        ("outputs.csv", "line 4", "200 kB", "100 kB"),
    ),
    Case(
        "infer-import-csv-no-answers",
        ["infer", "{manifest}", "--import", "{ws}/a.csv"],
        write_file("a.csv", "id,prompt\n1,x\n"),
        ("a.csv", "allm_output"),
    ),
    Case(
        "infer-concurrency-zero",
        ["infer", "{manifest}", "--engine", "openai", "--model", "m", "--concurrency", "0"],
        None,
        ("--concurrency", "0"),
    ),
    Case(
        "infer-max-tokens-negative", ["infer", "{manifest}", "--cascade", "--max-tokens", "-5"], None, ("--max-tokens",)
    ),
    Case(
        "infer-temperature-negative",
        ["infer", "{manifest}", "--cascade", "--temperature", "-1"],
        None,
        ("--temperature",),
    ),
    Case(
        "infer-engine-arg-no-equals",
        ["infer", "{manifest}", "--engine", "vllm", "--model", "m", "--engine-arg", "trust_remote_code"],
        None,
        ("--engine-arg", "KEY=VALUE"),
    ),
    Case(
        "infer-engine-arg-unknown",
        ["infer", "{manifest}", "--engine", "openai", "--model", "m", "--engine-arg", "concurency=4"],
        None,
        ("concurency",),
    ),
    Case("infer-clips-reversed", ["infer", "{manifest}", "--import", "{outputs}", "--clips", "3-1"], None, ("3-1",)),
    Case("infer-clips-absent", ["infer", "{manifest}", "--import", "{outputs}", "--clips", "9"], None, ("9",)),
    Case(
        "infer-out-is-folder",
        ["infer", "{manifest}", "--import", "{outputs}", "--name", "X", "--out", "{judged}"],
        None,
        ("{judged}", "folder"),
    ),
    Case("infer-store-is-folder", ["infer", "{manifest}", "--cascade", "--store", "{judged}"], None, ("{judged}",)),
    Case("infer-limit-zero", ["infer", "{manifest}", "--import", "{outputs}", "--limit", "0"], None, ("--limit",)),
    Case(
        "infer-api-key-abbreviated",
        ["infer", "{manifest}", "--engine", "openai", "--model", "m", "--api-key", "sk-canary"],
        None,
        ("--api-key",),
    ),
    Case("infer-allm-unknown", ["infer", "{manifest}", "--allm", "qwen-audio"], None, ("qwen-audio", "qwen2-audio")),
    Case("infer-two-sources", ["infer", "{manifest}", "--cascade", "--import", "{outputs}"], None, ("--import",)),
    Case(
        "infer-api-key-env-unset",
        ["infer", "{manifest}", "--engine", "openai", "--model", "m", "--api-key-env", "JASCO_TEST_NO_SUCH_KEY"],
        None,
        ("JASCO_TEST_NO_SUCH_KEY",),
    ),
    # ---- judge ---------------------------------------------------------------------
    Case("judge-no-outputs", ["judge", "{ws}/nope.csv", "--judge", "smollm2"], None, ("{ws}/nope.csv",)),
    Case(
        "judge-empty-answer",
        ["judge", "{outputs}", "--judge", "smollm2"],
        chain(multiline_answers("outputs.csv"), set_cell("outputs.csv", 5, "allm_output", "")),
        ("outputs.csv", row_line("outputs.csv", 5), "allm_output"),
    ),
    Case(
        "judge-not-whole-clips",
        ["judge", "{outputs}", "--judge", "smollm2"],
        edit_csv("outputs.csv", lambda df: df.drop(index=[3])),
        ("outputs.csv", "clip 1"),
    ),
    Case("judge-unknown-judge", ["judge", "{outputs}", "--judge", "llama-3-70b"], None, ("llama-3-70b", "smollm2")),
    Case(
        "judge-judges-file-missing",
        ["judge", "{outputs}", "--judge", "mine", "--judges-file", "{ws}/j.toml"],
        None,
        ("{ws}/j.toml",),
    ),
    Case(
        "judge-judges-file-bad-toml",
        ["judge", "{outputs}", "--judge", "mine", "--judges-file", "{judges}"],
        write_file("judges.toml", '["mine"\nengine = "embedded"\n'),
        ("judges.toml", "line"),
    ),
    Case(
        "judge-judges-file-unknown-template",
        ["judge", "{outputs}", "--judge", "mine", "--judges-file", "{judges}"],
        write_file("judges.toml", '["mine"]\nengine = "embedded"\ntemplate = "judge_nope"\n'),
        ("judges.toml", "judge_nope", "judge_original"),
    ),
    Case(
        "judge-judges-file-unknown-option",
        ["judge", "{outputs}", "--judge", "mine", "--judges-file", "{judges}"],
        write_file("judges.toml", '["mine"]\nengine = "embedded"\noptions = { n_ctxx = 9 }\n'),
        ("judges.toml", "n_ctxx"),
    ),
    Case(
        "judge-judges-file-api-key",
        ["judge", "{outputs}", "--judge", "mine", "--judges-file", "{judges}"],
        write_file("judges.toml", '["mine"]\nengine = "openai"\nmodel = "m"\noptions = { api_key = "sk-canary" }\n'),
        ("judges.toml", "api_key", "api_key_env"),
    ),
    Case(
        "judge-regex-on-embedded",
        ["judge", "{outputs}", "--judge", "smollm2", "--structured", "regex"],
        None,
        ("regex", "embedded"),
    ),
    Case(
        "judge-explanation-without-structured",
        ["judge", "{outputs}", "--judge", "smollm2", "--max-explanation-chars", "50"],
        None,
        ("--structured",),
    ),
    Case(
        "judge-chunk-size-zero",
        ["judge", "{outputs}", "--judge", "smollm2", "--chunk-size", "0"],
        None,
        ("--chunk-size",),
    ),
    Case(
        "judge-out-dir-is-file",
        ["judge", "{outputs}", "--judge", "smollm2", "--out-dir", "{manifest}"],
        None,
        ("{manifest}",),
    ),
    Case(
        "judge-parquet-corrupt",
        ["judge", "{ws}/o.parquet", "--judge", "smollm2"],
        write_file("o.parquet", b"PAR1 this is not parquet"),
        ("o.parquet", "Parquet"),
    ),
    Case(
        "judge-failed-allm-rows",
        ["judge", "{outputs}", "--judge", "smollm2"],
        chain(
            set_cell("outputs.csv", 2, "allm_output", ""),
            set_cell("outputs.csv", 2, "model", "allm"),
            edit_csv(
                "outputs.csv", lambda df: df.assign(status=["failed" if i == 2 else "ok" for i in range(len(df))])
            ),
        ),
        ("outputs.csv", row_line("outputs.csv", 2), "failed", "jasco infer"),
    ),
    Case("judge-no-judge", ["judge", "{outputs}"], None, ("--judge",)),
    # ---- check-judge ---------------------------------------------------------------
    Case("check-judge-judged-missing", ["check-judge", "--judged", "{ws}/nope.csv"], None, ("{ws}/nope.csv",)),
    Case("check-judge-nothing", ["check-judge"], None, ("--judge",)),
    Case(
        "check-judge-clip-out-of-range",
        ["check-judge", "--judge", "smollm2", "--clips", "99", "--data-dir", "{data}"],
        None,
        ("99",),
    ),
    Case(
        "check-judge-not-controls",
        ["check-judge", "--judged", "{judged}/A__j1.csv"],
        None,
        ("A__j1.csv", "control_kind"),
    ),
    # ---- score ---------------------------------------------------------------------
    Case("score-missing", ["score", "{ws}/nope.csv"], None, ("{ws}/nope.csv",)),
    Case("score-empty-folder", ["score", "{ws}/empty"], make_dir("empty"), ("{ws}/empty",)),
    Case("score-not-judged", ["score", "{manifest}"], None, ("manifest.csv", "judge_output")),
    Case(
        "score-failed-rows",
        ["score", "{judged}/A__j1.csv"],
        chain(
            multiline_answers("judged/A__j1.csv"),
            edit_csv(
                "judged/A__j1.csv", lambda df: df.assign(status=["failed" if i == 4 else "ok" for i in range(len(df))])
            ),
        ),
        ("A__j1.csv", row_line("judged/A__j1.csv", 4), "status"),
    ),
    Case(
        "score-latin1",
        ["score", "{ws}/x__j.csv"],
        write_file("x__j.csv", "id,llama3_extract\n1,caf\xe9\n".encode("latin-1")),
        ("x__j.csv", "UTF-8"),
    ),
    Case(
        "score-extra-field",
        ["score", "{judged}/A__j1.csv"],
        chain(multiline_answers("judged/A__j1.csv"), append_line("judged/A__j1.csv", "1,x,y,A,j1,z,EXTRA\n")),
        ("A__j1.csv", last_line("judged/A__j1.csv"), "fields"),
    ),
    Case(
        "score-bad-id",
        ["score", "{judged}/A__j1.csv"],
        chain(multiline_answers("judged/A__j1.csv"), set_cell("judged/A__j1.csv", 9, "id", "abc")),
        ("A__j1.csv", row_line("judged/A__j1.csv", 9), "id", "abc"),
    ),
    Case(
        "score-unknown-prompt",
        ["score", "{judged}/A__j1.csv"],
        chain(multiline_answers("judged/A__j1.csv"), set_cell("judged/A__j1.csv", 1, "prompt", "What now?")),
        ("A__j1.csv", row_line("judged/A__j1.csv", 1), "prompt"),
    ),
    Case(
        "score-duplicate-row",
        ["score", "{judged}/A__j1.csv"],
        edit_csv("judged/A__j1.csv", lambda df: pd.concat([df, df.iloc[[0]]], ignore_index=True)),
        ("A__j1.csv", lambda ws: "lines 2, " + row_line("judged/A__j1.csv", 24)(ws).split()[-1]),
    ),
    Case("score-n-resamples-zero", ["score", "{judged}", "--ci", "--n-resamples", "0"], None, ("--n-resamples",)),
    Case(
        "score-same-table-twice",
        ["score", "{judged}/A__j1.csv", "{ws}/copy/A__j1.csv"],
        lambda ws: (ws.root / "copy").mkdir() or shutil.copy(ws.judged / "A__j1.csv", ws.root / "copy"),
        ("A__j1.csv", "also in"),
    ),
    Case(
        "score-empty-table",
        ["score", "{ws}/x__j.csv"],
        write_file("x__j.csv", "id,prompt,model,judge,judge_output\n"),
        ("x__j.csv", "no rows"),
    ),
    # ---- compare -------------------------------------------------------------------
    Case("compare-unknown-model", ["compare", "A", "C", "{judged}"], None, ("'C'", "A", "B")),
    Case("compare-same-model", ["compare", "A", "A", "{judged}"], None, ("A",)),
    Case(
        "compare-n-resamples-negative",
        ["compare", "A", "B", "{judged}", "--n-resamples", "-1"],
        None,
        ("--n-resamples",),
    ),
    Case("compare-unknown-judge", ["compare", "A", "B", "{judged}", "--judge", "j9"], None, ("j9", "j1")),
    # ---- reproduce -----------------------------------------------------------------
    Case("reproduce-no-config", ["reproduce", "--config", "{ws}/nope.toml"], None, ("{ws}/nope.toml",)),
    Case("reproduce-unknown-config-name", ["reproduce", "--config", "papr"], None, ("papr", "cpu", "paper")),
    Case(
        "reproduce-bad-toml",
        ["reproduce", "--config", "{config}"],
        write_file("run.toml", 'name = "t\n'),
        ("run.toml", "line 1"),
    ),
    Case(
        "reproduce-misspelled-key",
        ["reproduce", "--config", "{config}"],
        write_file("run.toml", 'name = "t"\ncllips = [1]\n'),
        ("run.toml", "cllips"),
    ),
    Case(
        "reproduce-unknown-judge",
        ["reproduce", "--config", "{config}"],
        write_file("run.toml", '[judging]\njudges = ["gpt-5"]\n'),
        ("run.toml", "gpt-5", "smollm2"),
    ),
    Case(
        "reproduce-bad-structured",
        ["reproduce", "--config", "{config}"],
        write_file("run.toml", '[judging]\nstructured = "regexp"\n'),
        ("run.toml", "structured", "regex"),
    ),
    Case(
        "reproduce-wrong-type",
        ["reproduce", "--config", "{config}"],
        write_file("run.toml", '[allm_sampling]\nmax_tokens = "lots"\n'),
        ("run.toml", "max_tokens", "integer"),
    ),
    Case(
        "reproduce-key-in-config",
        ["reproduce", "--config", "{config}"],
        write_file(
            "run.toml", '[[allms]]\nname = "X"\nengine = "openai"\nmodel = "m"\noptions = { api_key = "sk-canary" }\n'
        ),
        ("run.toml", "api_key"),
    ),
    Case(
        "reproduce-negative-max-tokens",
        ["reproduce", "--config", "{config}"],
        write_file("run.toml", "[judging]\nmax_tokens = -3\n"),
        ("run.toml", "max_tokens"),
    ),
    Case("reproduce-clips-reversed", ["reproduce", "--clips", "9-2"], None, ("9-2",)),
    Case(
        "reproduce-run-dir-is-file",
        ["reproduce", "--config", "{config}", "--run-dir", "{manifest}", "--data-dir", "{data}"],
        None,
        ("{manifest}",),
    ),
    # ---- view, runs, download ------------------------------------------------------
    Case("view-no-run", ["view", "{ws}/runs/nope"], None, ("{ws}/runs/nope",)),
    Case("view-empty-run", ["view", "{ws}/runs/empty"], make_dir("runs/empty"), ("{ws}/runs/empty",)),
    Case("runs-not-a-folder", ["runs", "--runs-dir", "{manifest}"], None, ("{manifest}",)),
    Case("download-dest-is-file", ["data", "download", "--dest", "{manifest}"], None, ("{manifest}",)),
    Case("download-retries-zero", ["data", "download", "--dest", "{ws}/d", "--retries", "0"], None, ("--retries",)),
]


#: Options that keep an accepted input's outputs in the workspace, per command.
_ISOLATE = {
    "infer": {"--out": "{ws}/out/answers.csv", "--store": "{ws}/calls.sqlite", "--data-dir": "{data}"},
    "judge": {"--out-dir": "{ws}/out", "--store": "{ws}/calls.sqlite"},
    "check-judge": {"--out-dir": "{ws}/out", "--store": "{ws}/calls.sqlite", "--data-dir": "{data}"},
    "reproduce": {"--run-dir": "{ws}/run", "--store": "{ws}/calls.sqlite", "--data-dir": "{data}"},
    "manifest": {"--out": "{ws}/out/manifest.csv"},
}


def isolated(argv: list[str]) -> list[str]:
    """``argv`` with the output, store and dataset options it does not set pointing into the
    workspace: a case that is wrongly accepted must not write into the project."""
    extra = [x for opt, value in _ISOLATE.get(argv[0], {}).items() if opt not in argv for x in (opt, value)]
    return [*argv, *extra]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_error(case: Case, ws: Workspace, capsys, monkeypatch):
    if case.setup:
        case.setup(ws)
    for k, v in (case.env or {}).items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("JASCO_TEST_NO_SUCH_KEY", raising=False)
    try:
        rc = main([ws.fmt(a) for a in isolated(case.argv)])
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    seen = capsys.readouterr()
    err = seen.err + seen.out  # a report command (data validate) says what is wrong on stdout
    assert rc not in (0, None), f"accepted: {err}"
    assert "Traceback" not in err
    for want in case.expect:
        want = want(ws) if callable(want) else ws.fmt(want)
        assert want.lower() in err.lower(), f"{want!r} not in: {err}"


def test_the_matrix_is_large_and_covers_every_command():
    assert len(CASES) >= 60
    commands = {c.argv[0] if c.argv[0] != "data" else " ".join(c.argv[:2]) for c in CASES}
    assert {
        "data validate",
        "data download",
        "manifest",
        "infer",
        "judge",
        "check-judge",
        "score",
        "compare",
        "reproduce",
        "view",
        "runs",
    } <= commands
