"""A run end to end: the notebooks headlessly (:mod:`~jasco_utils.pipeline.reproduce`, where the
executor is chosen), the run's stage jobs (:mod:`~jasco_utils.pipeline.jobs`), one stage in a
process of its own (:mod:`~jasco_utils.pipeline.stage`), and the executors that run the jobs
(:mod:`~jasco_utils.pipeline.local`, :mod:`~jasco_utils.pipeline.ray_executor`)."""
