"""The configuration floor: TOML files in, checked model specs and run configurations out.

:mod:`~jasco_utils.config.schema` holds what each file may say (pydantic models);
:mod:`~jasco_utils.config.files` reads the files, checks them whole and resolves the models'
generation settings. The names below are the floor's public face.
"""

from jasco_utils.config.files import (
    ALLMS_FILE,
    JUDGES_FILE,
    RUN_CONFIGS_DIR,
    allm_spec,
    get_judge,
    load_allms,
    load_judges,
    load_run_config,
    run_config_file,
)
from jasco_utils.config.schema import EXECUTORS, Executor, RunConfig

__all__ = [
    "ALLMS_FILE",
    "EXECUTORS",
    "Executor",
    "JUDGES_FILE",
    "RUN_CONFIGS_DIR",
    "RunConfig",
    "allm_spec",
    "get_judge",
    "load_allms",
    "load_judges",
    "load_run_config",
    "run_config_file",
]
