"""Project settings (Kedro defaults, plus the project's hooks and the run env)."""

from kedro.config import OmegaConfigLoader

from world_models_kedro.hooks import (
    DvcRecordHook,
    RunProgressHook,
    StageTimesHook,
    SweepTemporariesHook,
    ValidateParametersHook,
)

HOOKS = (
    ValidateParametersHook(),
    SweepTemporariesHook(),
    StageTimesHook(),
    RunProgressHook(),
    DvcRecordHook(),
)

# Installed plugins for which to disable hook auto-registration.
# DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment's parameter file may override single keys: deep merge with conf/base.
    "merge_strategy": {"parameters": "soft"},
}
