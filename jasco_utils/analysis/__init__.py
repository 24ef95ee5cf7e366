"""Stage 4, analysis (notebooks/03_analysis, 04_explorer): metrics, scoring, statistics, plots, Table II, the explorer."""
