"""The CPU default's stages, timed in one run on this machine (nothing downloaded, empty store).

(a) speech recognition of the clips (the bundled Whisper tiny.en);
(b) the cascade's text LLM (the bundled SmolLM2-135M) answering the clips' instructions;
(c) the reference judge: loading it, then judging the cascade's answers;
(d) the reference judge's check: every control answer of the clips (ten kinds per clip);
(e) SmolLM2 as a judge (structured JSON, short explanations, as in the ``cpu`` run) on the
    control answers of a few clips.

Each stage goes through the project's own code path (the call store, the judging runner), so
the times are what a run spends. Prints seconds per stage and per row, the ratios between
them, and what the main job would take on all 80 clips with the reference judge and SmolLM2
on a few clips. A benchmark, not a test: its numbers depend on the machine and its load.

    .venv/bin/python bench/cpu_default.py --data-dir ../shared/jasco-v0 --clips 1-4
    .venv/bin/python bench/cpu_default.py --data-dir ../shared/jasco-v0 --clips 1-80 --smollm2-clips 3
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _clips(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _timed(label: str, times: dict[str, float], fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    times[label] = time.perf_counter() - t0
    print(f"  {label}: {times[label]:.1f} s", flush=True)
    return out


def run(
    data_dir: str | None, clips: list[int], smollm2_clips: int, llm_tokens: int, work: Path, threads: int | None = None
) -> dict[str, float]:
    """Run the stages; return seconds per stage and the row counts."""
    from jasco_utils.data.manifest import build_manifest
    from jasco_utils.inference.asr import transcribe_clips
    from jasco_utils.inference.cascade import cascade_table
    from jasco_utils.judging.controls import build_controls
    from jasco_utils.judging.judge import judge_table
    from jasco_utils.judging.prompts import structured_output
    from jasco_utils.models import SamplingConfig, make_backend
    from jasco_utils.models.store import Store
    from jasco_utils.models.whisper import SpeechRecognizer

    times: dict[str, float] = {}
    manifest = build_manifest(data_dir, clips=clips)
    controls = build_controls(data_dir, clips)
    few = build_controls(data_dir, clips[: max(2, smollm2_clips)])
    times.update(rows=len(manifest), clips=len(clips), controls=len(controls), few=len(few))
    with Store(work / "calls.sqlite") as store:
        recognizer = SpeechRecognizer()
        _timed("a_asr", times, transcribe_clips, manifest, recognizer, store, data_dir, False)
        with make_backend("embedded", threads=threads) as llm:
            outputs, _, _ = _timed(
                "b_cascade_llm",
                times,
                cascade_table,
                manifest,
                recognizer,
                llm,
                store,
                data_dir=data_dir,
                sampling=SamplingConfig(max_tokens=llm_tokens),
                progress=False,
            )
            json_form = structured_output("json", "judge_original", 120)
            _timed(
                "e_smollm2_judge",
                times,
                judge_table,
                few,
                llm,
                store,
                judge="smollm2",
                sampling=SamplingConfig(max_tokens=160),
                structured=json_form,
                progress=False,
                whole_clips=False,
            )
        reference = _timed("c0_reference_load", times, make_backend, "reference")
        _timed("c_reference_judge", times, judge_table, outputs, reference, store, judge="reference", progress=False)
        _timed(
            "d_reference_check",
            times,
            judge_table,
            controls,
            reference,
            store,
            judge="reference",
            progress=False,
            whole_clips=False,
        )
    return times


def report(t: dict[str, float], all_clips: int = 80, smollm2_clips: int = 3) -> str:
    """The per-row figures, their ratios, and the main job's estimate for all clips."""
    per = {
        "asr per clip": t["a_asr"] / t["clips"],
        "cascade LLM per row": t["b_cascade_llm"] / t["rows"],
        "reference judge per row (answers)": t["c_reference_judge"] / t["rows"],
        "reference judge per row (controls)": t["d_reference_check"] / t["controls"],
        "SmolLM2 judge per row": t["e_smollm2_judge"] / t["few"],
    }
    ref_row = (t["c_reference_judge"] + t["d_reference_check"]) / (t["rows"] + t["controls"])
    lines = [f"{k}: {v * 1000:.1f} ms" for k, v in per.items()]
    lines += [
        f"SmolLM2 judge row / reference judge row: {per['SmolLM2 judge per row'] / ref_row:.0f}x",
        f"cascade LLM row / reference judge row: {per['cascade LLM per row'] / ref_row:.0f}x",
        f"reference judge load: {t['c0_reference_load']:.1f} s",
    ]
    rows, controls = 8 * all_clips, 10 * all_clips
    estimate = {
        "speech recognition": per["asr per clip"] * all_clips,
        "cascade LLM": per["cascade LLM per row"] * rows,
        "reference judge (answers + check)": t["c0_reference_load"] + ref_row * (rows + controls),
        f"SmolLM2 judge, 2 prompts x {smollm2_clips} clips of controls": per["SmolLM2 judge per row"]
        * 2
        * 10
        * smollm2_clips,
    }
    lines.append(f"estimate for {all_clips} clips ({rows} answers, {controls} control rows):")
    lines += [f"  {k}: {v / 60:.1f} min" for k, v in estimate.items()]
    total = sum(estimate.values())
    lines.append(
        f"  total (without notebooks and process starts): {total / 60:.1f} min; "
        f"the cascade LLM is {100 * estimate['cascade LLM'] / total:.0f}% of it"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="the dataset folder (default: JASCO_DATA_DIR or data/raw)")
    ap.add_argument("--clips", default="1-4", help="clips to run, e.g. 1-4 (default) or 1-80")
    ap.add_argument("--smollm2-clips", type=int, default=2, help="clips whose controls SmolLM2 judges (default 2)")
    ap.add_argument("--llm-tokens", type=int, default=96, help="the cascade LLM's max_tokens (cpu run: 96)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="SmolLM2's CPU threads (default all cores; 1 is faster when another process is busy)",
    )
    args = ap.parse_args()
    clips = _clips(args.clips)
    with tempfile.TemporaryDirectory(prefix="jasco-bench-") as tmp:
        print(f"timing the CPU default's stages on clips {args.clips} ({os.cpu_count()} cores):", flush=True)
        times = run(args.data_dir, clips, args.smollm2_clips, args.llm_tokens, Path(tmp), args.threads)
    print(report(times, smollm2_clips=args.smollm2_clips))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
