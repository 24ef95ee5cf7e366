"""jasco_utils.report.plots: every figure renders, from generated rows, without pyplot."""

from __future__ import annotations

import sys

from helpers.judged_tables import random_scored_rows

from jasco_utils.analysis import agreement, bootstrap, sensitivity
from jasco_utils.analysis.scoring import scores_from_rows
from jasco_utils.report import plots


def test_plots_render(tmp_path):
    rows = random_scored_rows(seed=19, clips=range(1, 21))
    figures = {
        "figure2": plots.figure2(scores_from_rows(rows), title="Modality dependence"),
        "table2_ci": plots.plot_table2_with_ci(bootstrap.bootstrap_scores(rows, n_resamples=100)),
        "kappa": plots.plot_agreement_heatmap(agreement.cohen_kappas(rows)),
        "prompts": plots.plot_prompt_sensitivity(sensitivity.instruction_means(rows)),
        "best_of_k": plots.plot_best_of_k(sensitivity.best_of_k(rows)),
    }
    for name, fig in figures.items():
        path = plots.save_figure(fig, tmp_path / f"{name}.png", dpi=60)
        assert path.stat().st_size > 1000, name
    # Figures live outside pyplot: nothing registered with it (if it was imported at all).
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert pyplot is None or pyplot.get_fignums() == []


def test_figure2_panels_and_files(tmp_path):
    rows = random_scored_rows(
        seed=20, models=("cascade", "Qwen2-Audio", "WavLLM"), judges=("j1", "j2"), clips=range(1, 11)
    )
    fig = plots.figure2(scores_from_rows(rows))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == len(fig.axes)  # no empty cell
    assert [ax.get_title() for ax in visible] == ["j1", "j2", "Average"]
    # one row of panels, left to right, on one 0-100% axis with its 0% tick
    assert [ax.get_position().y0 for ax in visible] == [visible[0].get_position().y0] * 3
    assert all(ax.get_xticks()[0] == 0 and ax.get_xticklabels()[0].get_text() == "0%" for ax in visible)
    # The paper's ALLMs first, in Table II's order, drawn top to bottom.
    assert [t.get_text() for t in visible[0].get_yticklabels()][::-1] == ["WavLLM", "Qwen2-Audio", "cascade"]
    assert visible[0].patches[0].get_facecolor()[:3] == (0xF4 / 255, 0xC7 / 255, 0xC3 / 255)  # audio red
    paths = plots.write_figure2(scores_from_rows(rows), tmp_path)
    assert [p.name for p in paths] == ["figure2.png", "figure2.pdf"]
    assert all(p.stat().st_size > 10_000 for p in paths)
