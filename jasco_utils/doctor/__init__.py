"""This machine as a run meets it (:mod:`~jasco_utils.doctor.machine`: GPUs, vLLM build, disk,
token, dataset) and the run plan (:mod:`~jasco_utils.doctor.plan`: whether each model of a
configuration fits, with nothing loaded)."""
