"""Stage 4, analysis (notebooks/03_analysis, 04_explorer): judged tables -> Table II, Figure 2, statistics.

The modules, in pipeline order:

- :mod:`~jasco_utils.analysis.scoring`: read judged tables (this project's layout or the
  original eval.py's) into scored rows, one per (model, judge, clip, instruction).
- :mod:`~jasco_utils.analysis.metrics`: the gating rule, the per-clip table and the
  registered metrics (Best-Mean, modality dependence), each defined once; the Average.
- :mod:`~jasco_utils.report.tables`: Table II (with the paper's numbers,
  :mod:`~jasco_utils.analysis.paper`) and provenance.
- :mod:`~jasco_utils.analysis.bootstrap`: intervals over clips and paired comparisons.
- :mod:`~jasco_utils.analysis.agreement`: agreement between judges.
- :mod:`~jasco_utils.analysis.sensitivity`: the instructions' wording, best of k.
- :mod:`~jasco_utils.analysis.difficulty`: the clips the ALLMs solve, and those none does.
- :mod:`~jasco_utils.analysis.judge_check`: the judges measured on control answers with
  known labels (:mod:`jasco_utils.judging.controls`).
- :mod:`~jasco_utils.report.browser`: a run as one self-contained HTML page (``jasco view``).
- :mod:`~jasco_utils.report.plots`: Figure 2 and the statistics' plots, in one style.
- :mod:`~jasco_utils.report.results`: the stage functions the notebook calls
  (:func:`~jasco_utils.report.results.run_analysis`,
  :func:`~jasco_utils.report.results.run_statistics`).
- :mod:`~jasco_utils.report.explorer`: per-clip failure exploration (notebooks/04_explorer).
"""
