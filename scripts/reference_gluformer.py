"""Import the predecessor's ``Gluformer`` class without its training-only dependencies.

Shared by ``scripts/parity/make_fixture.py`` and ``bench/predecessor_predict.py``,
which both run in the environment ``scripts/reference_env.sh`` makes (torch, numpy,
six, tqdm and ``glucosedao-glucobench`` 0.4.1 installed with ``--no-deps``). The
module ``glucobench.lib.gluformer.model`` imports optuna, darts, tensorboard and the
package's darts dataset module at import time for training and data loading only;
forward() and predict() need none of them.
"""

from __future__ import annotations

import importlib.util
import sys
import types

TRAINING_ONLY_MODULES = ("optuna", "darts", "torch.utils.tensorboard", "glucobench.utils.darts_dataset")
"""Modules replaced by stand-ins while the model module is imported."""

OPTIONAL_MODULES = ("tqdm", "six")
"""Modules predict() uses; replaced by stand-ins only where they are not installed."""


class StandInModule(types.ModuleType):
    """Module whose every attribute is another stand-in, enough for import-time names and annotations."""

    def __getattr__(self, name: str) -> StandInModule:
        if name.startswith("__"):
            raise AttributeError(name)
        return StandInModule(f"{self.__name__}.{name}")


def import_reference_gluformer():
    """Return the package's ``Gluformer`` class, imported with stand-ins that are removed again."""
    missing = tuple(name for name in OPTIONAL_MODULES if importlib.util.find_spec(name) is None)
    stand_ins = TRAINING_ONLY_MODULES + missing
    saved = {name: sys.modules.get(name) for name in stand_ins}
    try:
        for name in stand_ins:
            sys.modules[name] = StandInModule(name)
        from glucobench.lib.gluformer.model import Gluformer
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return Gluformer
