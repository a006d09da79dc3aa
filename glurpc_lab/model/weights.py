"""Locating, verifying and loading Gluformer weights."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch

from glurpc_lab.model.config import GluformerConfig
from glurpc_lab.model.gluformer import Gluformer

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
"""Folder of the small model that ships with the package."""


class WeightsError(ValueError):
    """Weights could not be found, downloaded or matched to their configuration."""


@dataclass(frozen=True)
class LoadedModel:
    """A Gluformer with its weights loaded, ready for inference.

    Attributes
    ----------
    module : Gluformer
        The network, in eval mode, on ``device``.
    config : GluformerConfig
        Architecture and scaling policy of the weights.
    model_id : str
        ``"<config name>-<12 hex digits>"``, a hash of the weights file and the config.
    sha256 : str
        Hex sha256 of the weights file.
    source : str
        Where the weights came from (``"bundled"``, a path or an ``hf:`` reference).
    device : str
        Torch device of ``module``.
    """

    module: Gluformer
    config: GluformerConfig
    model_id: str
    sha256: str
    source: str
    device: str


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def config_beside(weights: Path) -> GluformerConfig:
    """Read ``<weights stem>.json`` next to ``weights``; a ``.pth`` without one gets the published preset."""
    config_path = weights.with_suffix(".json")
    if config_path.is_file():
        try:
            return GluformerConfig.from_json(config_path)
        except (ValueError, TypeError) as error:
            raise WeightsError(f"config {config_path} is invalid: {error}") from error
    if weights.suffix == ".pth":
        logger.info("no config JSON beside %s; assuming the published Gluformer preset", weights.name)
        return GluformerConfig.published()
    raise WeightsError(f"config {config_path} not found; write the model's GluformerConfig.to_json() there")


def bundled_weights() -> Path:
    """Return the path of the bundled weights file."""
    candidates = sorted(BUNDLED_DIR.glob("*.pth"))
    if len(candidates) != 1:
        raise WeightsError(f"expected one .pth file in {BUNDLED_DIR}, found {len(candidates)}; reinstall glurpc-lab")
    return candidates[0]


def parse_hub_reference(source: str) -> tuple[str, str, str | None]:
    """Split ``"hf:OWNER/REPO/FILE[@REVISION]"`` into repo id, filename and revision."""
    reference = source[len("hf:") :]
    revision = None
    if "@" in reference:
        reference, revision = reference.rsplit("@", 1)
    parts = reference.split("/", 2)
    if len(parts) != 3 or not all(parts) or revision == "":
        raise WeightsError(f"invalid Hugging Face reference {source!r}; use hf:OWNER/REPO/FILE[@REVISION]")
    return f"{parts[0]}/{parts[1]}", parts[2], revision


def download_from_hub(source: str) -> Path:
    """Download (or reuse from the local cache) the weights named by an ``hf:`` reference."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    repo_id, filename, revision = parse_hub_reference(source)
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, revision=revision))
    except (LocalEntryNotFoundError, ConnectionError) as error:
        # LocalEntryNotFoundError (a subclass of EntryNotFoundError, so it is caught first) means
        # HF_HUB_OFFLINE=1 is set or the hub cannot be reached, and the file is not cached.
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
        raise WeightsError(
            f"cannot download {filename} from {repo_id}: {reason} and the file is not in the local cache. "
            "Download the file on a machine with internet access and pass its local path instead "
            f"(for example load_model('/path/to/{filename}'))"
        ) from error
    except (EntryNotFoundError, RepositoryNotFoundError) as error:
        raise WeightsError(f"{filename} not found in Hugging Face repo {repo_id} (revision {revision or 'default'})") from error


def check_state_dict(state: dict, module: Gluformer, config: GluformerConfig, name: str) -> None:
    """Raise ``WeightsError`` naming the first missing, unexpected or mis-shaped key."""
    expected = module.state_dict()
    summary = (
        f"config {config.name!r} (d_model {config.d_model}, {config.n_heads} heads, d_fcn {config.d_fcn}, "
        f"{config.num_enc_layers}+{config.num_dec_layers} layers, max_len {config.max_len})"
    )
    missing = [key for key in expected if key not in state]
    if missing:
        raise WeightsError(f"weights {name} do not match {summary}: missing key {missing[0]!r} ({len(missing)} missing)")
    unexpected = [key for key in state if key not in expected]
    if unexpected:
        raise WeightsError(f"weights {name} do not match {summary}: unexpected key {unexpected[0]!r} ({len(unexpected)} unexpected)")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise WeightsError(
                f"weights {name} do not match {summary}: key {key!r} has shape {tuple(state[key].shape)}, "
                f"expected {tuple(tensor.shape)}"
            )


def load_model(source: str | os.PathLike | None = None, *, device: str = "cpu") -> "LoadedModel":
    """Load a Gluformer and its weights.

    Parameters
    ----------
    source : str, os.PathLike or None
        None or ``"bundled"`` selects the small model shipped with the package.
        A path selects a weights file whose config JSON is beside it as ``<stem>.json``.
        A ``.pth`` file without that JSON is assumed to be the published model.
        ``"hf:OWNER/REPO/FILE[@REVISION]"`` selects a file on the Hugging Face hub.
    device : str
        Torch device to load onto, e.g. ``"cpu"`` or ``"cuda:0"``.

    Returns
    -------
    LoadedModel

    Raises
    ------
    WeightsError
        The file is missing, cannot be downloaded, is not a plain state_dict, or does
        not match its configuration.
    """
    if source is None or source == "bundled":
        path, label = bundled_weights(), "bundled"
    elif isinstance(source, str) and source.startswith("hf:"):
        path, label = download_from_hub(source), source
    else:
        path, label = Path(source).expanduser(), str(source)
        if not path.is_file():
            raise WeightsError(f"weights file {path} not found; pass an existing file, 'bundled' or hf:OWNER/REPO/FILE[@REVISION]")

    config = config_beside(path)
    sha256 = file_sha256(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise WeightsError(
            f"{path.name} is not a plain tensor state_dict ({type(error).__name__}); re-save it with "
            "torch.save(model.state_dict(), path)"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise WeightsError(f"{path.name} does not contain a state_dict of tensors")

    module = Gluformer(config)
    check_state_dict(state, module, config, path.name)
    module.load_state_dict(state, strict=True)
    module.to(device).eval()

    # The id covers the config too: the same weights with other interval factors or
    # scaling give other forecasts, and cached forecasts are keyed by this id.
    identity = hashlib.sha256((sha256 + json.dumps(config.to_dict(), sort_keys=True)).encode("utf-8")).hexdigest()
    model_id = f"{config.name}-{identity[:12]}"
    logger.info("loaded model %s from %s on %s", model_id, label, device)
    return LoadedModel(module=module, config=config, model_id=model_id, sha256=sha256, source=label, device=device)
