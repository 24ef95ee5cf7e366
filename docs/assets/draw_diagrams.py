"""Draws docs/assets/layers.svg and docs/assets/dataflow.svg, the architecture page's pictures.

Run it after changing the layers or the stages: .venv/bin/python docs/assets/draw_diagrams.py
"""

import os
from html import escape

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

FONT = 'font-family="Helvetica, Arial, sans-serif"'


def box(x, y, w, h, title, sub="", fill="#eef2fb", stroke="#3f51b5", tsize=15):
    out = [
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
    ]
    if sub:
        out.append(
            f'<text x="{x + w / 2}" y="{y + h / 2 - 4}" text-anchor="middle" font-size="{tsize}" font-weight="bold" fill="#1a237e">{escape(title)}</text>'
        )
        out.append(
            f'<text x="{x + w / 2}" y="{y + h / 2 + 14}" text-anchor="middle" font-size="11.5" fill="#333">{escape(sub)}</text>'
        )
    else:
        out.append(
            f'<text x="{x + w / 2}" y="{y + h / 2 + 5}" text-anchor="middle" font-size="{tsize}" font-weight="bold" fill="#1a237e">{escape(title)}</text>'
        )
    return out


def arrow(x1, y1, x2, y2, color="#555"):
    return [f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="1.6" marker-end="url(#a)"/>']


def svg(w, h, body, title):
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" {FONT} role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    return "\n".join(head + body + ["</svg>", ""])


# --- layers, bottom to top -------------------------------------------------------------------
layers = [
    ("cli", "the jasco command: one module per command"),
    ("doctor", "machine facts, the run plan"),
    ("pipeline", "reproduce, jobs, the stage child process, local and Ray executors"),
    ("report", "Table II files, plots, results.json, the run's page, explorer, check report"),
    ("analysis", "numbers: metrics, scoring, bootstrap, agreement, sensitivity, judge check, usage"),
    ("run", "one run folder: its layout and readers"),
    ("config", "TOML files -> checked specs, RunConfig"),
    (
        ("inference", "stage 2: ALLM answers, cascade, ablations"),
        ("judging", "stage 3: prompts, parsing, controls, reference judge"),
    ),
    (
        "models",
        "spec (GenerateConfig, ModelSpec, the only defaults), registry, engine contract, call store, runner, engines",
    ),
    ("data", "dataset, clips, manifest"),
    ("core", "paths, io, secrets, errors"),
]
W, X, LW, H, GAP, TOP = 760, 120, 600, 50, 12, 50
body = [
    f'<text x="{W / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold" fill="#222">jasco_utils: each layer imports only the layers below it</text>'
]
y = TOP
for item in layers:
    if isinstance(item[0], tuple):
        half = (LW - GAP) / 2
        body += box(X, y, half, H, item[0][0], item[0][1], fill="#e8f5e9", stroke="#2e7d32")
        body += box(X + half + GAP, y, half, H, item[1][0], item[1][1], fill="#e8f5e9", stroke="#2e7d32")
    else:
        body += box(X, y, LW, H, item[0], item[1])
    y += H + GAP
# the "imports" arrow on the left
body += [
    f'<line x1="60" y1="{y - GAP - 10}" x2="60" y2="{TOP + 10}" stroke="#555" stroke-width="1.6" marker-start="url(#a)"/>',
    f'<text x="48" y="{(y + TOP) / 2}" text-anchor="middle" font-size="12" fill="#555" transform="rotate(-90 48 {(y + TOP) / 2})">imports point down: a layer never imports one above it</text>',
]
body += [
    f'<text x="{W / 2}" y="{y + 14}" text-anchor="middle" font-size="12" fill="#555">Declared as an import-linter layers contract in pyproject.toml and checked by make lint.</text>'
]
open("docs/assets/layers.svg", "w").write(svg(W, y + 30, body, "The package's layers"))

# --- the data flow ---------------------------------------------------------------------------
W2 = 980
b = [
    f'<text x="{W2 / 2}" y="26" text-anchor="middle" font-size="16" font-weight="bold" fill="#222">A run: the tables each stage reads and writes (runs/CONFIG/)</text>'
]
row1 = 60
bw, bh = 165, 56
xs = [10, 205, 400, 595, 790]
items1 = [
    ("dataset", "data/raw/jasco-v0, 80 clips"),
    ("manifest", "640 rows: clip x instruction"),
    ("outputs/", "ALLM.csv: its answers"),
    ("judged/", "ALLM__JUDGE.csv: ratings"),
    ("Table II, Figure 2", "figures/, results.json"),
]
fills = ["#fff8e1", "#fff8e1", "#fff8e1", "#fff8e1", "#fce4ec"]
for x, (t, s), f in zip(xs, items1, fills, strict=False):
    b += box(x, row1, bw + 15 if x == 790 else bw, bh, t, s, fill=f, stroke="#8d6e63", tsize=14)
labels = ["data validate, manifest", "infer (stage 2)", "judge (stage 3)", "analysis, report"]
for i, lab in enumerate(labels):
    x1, x2 = xs[i] + bw, xs[i + 1]
    b += arrow(x1 + 2, row1 + bh / 2, x2 - 2, row1 + bh / 2)
    b.append(
        f'<text x="{(x1 + x2) / 2}" y="{row1 + bh + 18}" text-anchor="middle" font-size="11" fill="#333">{escape(lab)}</text>'
    )
# models row
row2 = 190
b += box(
    300,
    row2,
    380,
    56,
    "models: one contract for every model",
    "ALLMs and judges alike: ModelSpec -> cached runner -> engine",
    tsize=14,
)
b += box(720, row2, 170, 56, "call store", "calls.sqlite: cache, resume", fill="#ede7f6", stroke="#5e35b1", tsize=14)
b += arrow(xs[2] - 30, row1 + bh + 26, 420, row2 - 2)
b += arrow(xs[3] - 30, row1 + bh + 26, 560, row2 - 2)
b += [
    f'<line x1="680" y1="{row2 + 28}" x2="718" y2="{row2 + 28}" stroke="#555" stroke-width="1.6" marker-end="url(#a)" marker-start="url(#a)"/>'
]
b += box(
    20, row2, 240, 56, "engines", "vllm, openai, embedded, reference, ...", fill="#f1f8e9", stroke="#558b2f", tsize=14
)
b += [
    f'<line x1="298" y1="{row2 + 28}" x2="262" y2="{row2 + 28}" stroke="#555" stroke-width="1.6" marker-end="url(#a)"/>'
]
# judge check row
row3 = 300
b += box(xs[1], row3, bw, bh, "controls", "10 known answers a clip", fill="#e0f7fa", stroke="#00838f", tsize=14)
b += box(xs[3], row3, bw, bh, "judge_check/", "the judges on the controls", fill="#e0f7fa", stroke="#00838f", tsize=14)
b += arrow(xs[1] + bw / 2, row1 + bh + 2, xs[1] + bw / 2, row3 - 2)
b += arrow(xs[1] + bw + 2, row3 + bh / 2, xs[3] - 2, row3 + bh / 2)
b.append(
    f'<text x="{(xs[1] + bw + xs[3]) / 2}" y="{row3 + bh / 2 - 8}" text-anchor="middle" font-size="11" fill="#333">judge (the judge check)</text>'
)
b += [
    f'<polyline points="{xs[3] + bw + 2},{row3 + bh / 2} 940,{row3 + bh / 2} 940,{row1 + bh + 4}" fill="none" stroke="#555" stroke-width="1.6" marker-end="url(#a)"/>'
]
b.append(
    f'<text x="{W2 / 2}" y="{row3 + bh + 34}" text-anchor="middle" font-size="12" fill="#555">Each model stage runs in its own process (local executor) or as a Ray task (ray executor); the notebooks read the same tables.</text>'
)
open("docs/assets/dataflow.svg", "w").write(svg(W2, row3 + bh + 50, b, "A run's data flow"))
