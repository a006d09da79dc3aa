"""The Gluformer network, its configuration and weight loading (arrays in, arrays out)."""

from glurpc_lab.model.config import COVARIATE_NAMES, GluformerConfig, ScalingPolicy
from glurpc_lab.model.gluformer import Gluformer
from glurpc_lab.model.weights import BUNDLED_DIR, LoadedModel, WeightsError, load_model

__all__ = [
    "BUNDLED_DIR",
    "COVARIATE_NAMES",
    "Gluformer",
    "GluformerConfig",
    "LoadedModel",
    "ScalingPolicy",
    "WeightsError",
    "load_model",
]
