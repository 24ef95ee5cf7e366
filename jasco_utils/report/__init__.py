"""What a run shows: Table II's files (:mod:`~jasco_utils.report.tables`), the figures in one style
(:mod:`~jasco_utils.report.plots`), ``results.json`` and the analysis notebook's stage functions
(:mod:`~jasco_utils.report.results`), the judge check's report (:mod:`~jasco_utils.report.check`),
the run's page (:mod:`~jasco_utils.report.browser`) and the explorer
(:mod:`~jasco_utils.report.explorer`). The numbers come from :mod:`jasco_utils.analysis`."""
