"""Gluformer hyper-parameters and the input scaling policy that goes with a set of weights."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

COVARIATE_NAMES = ("day", "month", "year", "hour", "minute", "second")
"""Calendar covariates fed to the model, in the order the published weights expect."""


@dataclass(frozen=True)
class ScalingPolicy:
    """How glucose and calendar covariates are min-max scaled before they reach the model.

    ``kind="fixed"`` maps glucose from ``[glucose_min, glucose_max]`` (mg/dL) and each
    calendar covariate from its fixed range to [0, 1], so the same window always gets
    the same input and nothing is fitted on the data. ``kind="per-series"`` fits the
    ranges on each series (glucose on observed, non-imputed points only), which is how
    the predecessor service fed the published weights; the fixed ranges are then unused.
    A covariate whose range is empty (min == max) maps to 0.

    Attributes
    ----------
    kind : str
        ``"fixed"`` or ``"per-series"``.
    version : int
        Version of the policy definition; bump it when the mapping changes.
    glucose_min, glucose_max : float
        Fixed glucose range in mg/dL.
    covariate_min, covariate_max : tuple of float
        Fixed range of each covariate, in the order of ``COVARIATE_NAMES``.
    """

    kind: str = "fixed"
    version: int = 1
    glucose_min: float = 40.0
    glucose_max: float = 400.0
    # The year is mapped to a constant 0: it carries no physiology and would let a
    # model tell the training data sets apart by their recording years.
    covariate_min: tuple[float, ...] = (1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    covariate_max: tuple[float, ...] = (31.0, 12.0, 0.0, 23.0, 59.0, 59.0)

    def __post_init__(self) -> None:
        if self.kind not in ("fixed", "per-series"):
            raise ValueError(f"scaling kind {self.kind!r} is invalid; use 'fixed' or 'per-series'")
        if len(self.covariate_min) != len(COVARIATE_NAMES) or len(self.covariate_max) != len(COVARIATE_NAMES):
            raise ValueError(f"covariate ranges need {len(COVARIATE_NAMES)} values each ({', '.join(COVARIATE_NAMES)})")
        if self.kind == "fixed" and not self.glucose_max > self.glucose_min:
            raise ValueError(f"glucose_max ({self.glucose_max}) must be greater than glucose_min ({self.glucose_min})")


@dataclass(frozen=True)
class GluformerConfig:
    """Architecture of a Gluformer and the scaling policy its weights were trained with.

    Attributes
    ----------
    name : str
        Short label used in model ids, e.g. ``"published"``.
    d_model : int
        Token width.
    n_heads : int
        Attention heads; each head is ``d_model // n_heads`` wide.
    d_fcn : int
        Hidden width of the position-wise feed-forward blocks.
    r_drop : float
        Dropout probability everywhere in the network.
    activ : str
        ``"gelu"`` or ``"relu"`` in the feed-forward blocks.
    num_enc_layers, num_dec_layers : int
        Encoder and decoder layers.
    distil : bool
        Whether a distilling ConvLayer (halving the tokens) follows every encoder layer but the last.
    len_seq : int
        Input length in 5-minute points.
    label_len : int
        Past points repeated at the start of the decoder input.
    len_pred : int
        Forecast horizon in 5-minute points.
    num_dynamic_features : int
        Calendar covariates per point.
    num_static_features : int
        Static features per window (the subject id).
    max_len : int
        Rows of the sinusoidal positional table; 5000 in the published weights.
    anchor : str
        ``"none"`` feeds scaled glucose as it is (the published weights).
        ``"last"`` subtracts each window's last input value from the input and adds
        it back to the forecast, so the network learns the change from the last
        reading and an output of zero is the persistence forecast.
    anchor_gain : float
        Factor applied to the anchored values before the network sees them (and
        removed from its outputs), so that changes of a few mg/dL are not tiny
        numbers in scaled units. Used only with ``anchor="last"``.
    interval_coefficients : tuple of tuple of float
        Empty, or for each forecast step the 4 coefficients of a log-linear model of
        the interval width (see ``glurpc_lab.forecast.calibration``). The network gives
        one variance per window, while errors grow with the horizon and with how fast
        glucose moves. These are fitted after training on validation windows
        (``glurpc_lab.training.calibrate``).
    step_std_scale : tuple of float
        Empty, or one factor per forecast step that multiplies the standard deviation
        of every dropout sample at that step, fitted with the coefficients so that the
        central 80% interval covers 80% of the validation targets at every step.
    scaling : ScalingPolicy
        Input scaling the weights expect.
    """

    name: str = "custom"
    d_model: int = 512
    n_heads: int = 10
    d_fcn: int = 1024
    r_drop: float = 0.2
    activ: str = "gelu"
    num_enc_layers: int = 2
    num_dec_layers: int = 2
    distil: bool = True
    len_seq: int = 96
    label_len: int = 32
    len_pred: int = 12
    num_dynamic_features: int = 6
    num_static_features: int = 1
    max_len: int = 5000
    anchor: str = "none"
    anchor_gain: float = 1.0
    interval_coefficients: tuple[tuple[float, ...], ...] = ()
    step_std_scale: tuple[float, ...] = ()
    scaling: ScalingPolicy = field(default_factory=ScalingPolicy)

    def __post_init__(self) -> None:
        if self.d_model // self.n_heads < 1:
            raise ValueError(f"d_model ({self.d_model}) must be at least n_heads ({self.n_heads})")
        if self.activ not in ("gelu", "relu"):
            raise ValueError(f"activ {self.activ!r} is invalid; use 'gelu' or 'relu'")
        if self.max_len < max(self.len_seq, self.label_len + self.len_pred):
            raise ValueError(f"max_len ({self.max_len}) is shorter than the longest token sequence")
        if self.anchor not in ("none", "last"):
            raise ValueError(f"anchor {self.anchor!r} is invalid; use 'none' or 'last'")
        if not self.anchor_gain > 0:
            raise ValueError(f"anchor_gain must be positive, got {self.anchor_gain}")
        if self.step_std_scale and (len(self.step_std_scale) != self.len_pred or min(self.step_std_scale) <= 0):
            raise ValueError(f"step_std_scale needs {self.len_pred} positive factors (one per forecast step) or none")
        if self.interval_coefficients and (
            len(self.interval_coefficients) != self.len_pred or any(len(row) != 4 for row in self.interval_coefficients)
        ):
            raise ValueError(f"interval_coefficients needs {self.len_pred} rows of 4 coefficients (one row per forecast step) or none")
        if not 0 < self.label_len <= self.len_seq:
            raise ValueError(f"label_len ({self.label_len}) must be in 1..len_seq ({self.len_seq})")

    @classmethod
    def published(cls) -> GluformerConfig:
        """Return the configuration of the published ``livia_large`` weights (11,294,272 parameters)."""
        return cls(name="published", scaling=ScalingPolicy(kind="per-series"))

    @classmethod
    def tiny(cls) -> GluformerConfig:
        """Return a very small configuration for fast tests on CPU."""
        return cls(name="tiny", d_model=16, n_heads=2, d_fcn=32, num_enc_layers=2, num_dec_layers=1, max_len=128)

    @classmethod
    def small(cls) -> GluformerConfig:
        """Return the configuration of the bundled model: small enough to train on a CPU in an hour.

        It forecasts the change from the last reading (``anchor="last"``), which
        makes persistence the starting point that training improves on.
        """
        return cls(
            name="small", d_model=64, n_heads=4, d_fcn=128, r_drop=0.1, num_enc_layers=2, num_dec_layers=2,
            max_len=128, anchor="last", anchor_gain=10.0,
        )

    @classmethod
    def preset(cls, name: str) -> GluformerConfig:
        """Return the preset called ``name`` (``published``, ``small`` or ``tiny``)."""
        presets = {"published": cls.published, "small": cls.small, "tiny": cls.tiny}
        if name not in presets:
            raise ValueError(f"unknown config preset {name!r}; choose one of {', '.join(presets)}")
        return presets[name]()

    def to_dict(self) -> dict:
        """Return the configuration as plain JSON types."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GluformerConfig:
        """Build a configuration from ``to_dict`` output; unknown keys raise ``ValueError``."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Gluformer config field(s): {', '.join(unknown)}")
        values = dict(data)
        if "step_std_scale" in values:
            values["step_std_scale"] = tuple(float(v) for v in values["step_std_scale"])
        if "interval_coefficients" in values:
            values["interval_coefficients"] = tuple(tuple(float(v) for v in row) for row in values["interval_coefficients"])
        if "scaling" in values and isinstance(values["scaling"], dict):
            scaling = dict(values["scaling"])
            for key in ("covariate_min", "covariate_max"):
                if key in scaling:
                    scaling[key] = tuple(float(v) for v in scaling[key])
            values["scaling"] = ScalingPolicy(**scaling)
        return cls(**values)

    def to_json(self, path: str | os.PathLike) -> None:
        """Write the configuration to a JSON file."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> GluformerConfig:
        """Read a configuration written by ``to_json``."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
