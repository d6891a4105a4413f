"""Run configuration: the sections (:mod:`.sections`), the typed builder that checks them (:mod:`.typed`) and how
they are read and written (:mod:`.io`)."""

from latentprior.config.io import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    eval_config_from_dict,
    expost_config,
    expost_config_from_dict,
    flatten,
    load_config,
    parse_yaml,
    read_yaml,
    save_config,
    section_from_dict,
)
from latentprior.config.sections import (
    BINARY_LIKELIHOODS,
    DENSITY_PRIORS,
    EXPOST_PRIORS,
    FLOW_PRIORS,
    LEARNABLE_PRIORS,
    Config,
    ConfigError,
    DataConfig,
    EvalConfig,
    ExPostPriorConfig,
    ModelConfig,
    NetConfig,
    ObjectiveConfig,
    PriorConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError", "DataConfig", "NetConfig", "PriorConfig", "ModelConfig", "ObjectiveConfig", "TrainConfig",
    "Config", "EvalConfig", "ExPostPriorConfig", "EXPOST_PRIORS",
    "FLOW_PRIORS", "DENSITY_PRIORS", "LEARNABLE_PRIORS", "BINARY_LIKELIHOODS",
    "eval_config_from_dict", "section_from_dict", "expost_config", "expost_config_from_dict",
    "load_config", "read_yaml", "parse_yaml", "config_from_dict", "config_to_dict", "flatten", "apply_overrides",
    "save_config",
]
