"""Parity with the published Gluformer implementation (glucosedao-glucobench 0.4.1).

The fixture in tests/fixtures/parity was written by scripts/parity/make_fixture.py
from the package's own Gluformer class: its state_dict, a few input windows and the
eval-mode outputs. These tests need neither that package nor its dependencies. Set
GLURPC_PARITY_FIXTURE to another folder written by the same script (for example the
published preset) to check that one too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from glurpc_lab.model import GluformerConfig, load_model
from glurpc_lab.model.gluformer import Gluformer
from glurpc_lab.model.weights import check_state_dict

FIXTURE_DIRS = [Path(__file__).resolve().parent / "fixtures" / "parity"]
if os.environ.get("GLURPC_PARITY_FIXTURE"):
    FIXTURE_DIRS.append(Path(os.environ["GLURPC_PARITY_FIXTURE"]))

INPUT_NAMES = ("x_id", "x_enc", "x_mark_enc", "x_dec", "x_mark_dec")
TOLERANCE = 1e-5


def read_fixture(folder: Path) -> tuple[dict, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Return the fixture's metadata, its state_dict as tensors and its input/output arrays."""
    metadata = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    with np.load(folder / "state_dict.npz") as archive:
        state = {key: torch.from_numpy(archive[key]) for key in archive.files}
    with np.load(folder / "cases.npz") as archive:
        cases = {key: archive[key] for key in archive.files}
    return metadata, state, cases


def our_config(metadata: dict) -> GluformerConfig:
    """Map the reference constructor arguments onto a GluformerConfig (the reference table has 5000 rows)."""
    args = metadata["gluformer_args"]
    return GluformerConfig(
        name=f"parity-{metadata['preset']}",
        d_model=args["d_model"],
        n_heads=args["n_heads"],
        d_fcn=args["d_fcn"],
        r_drop=args["r_drop"],
        activ=args["activ"],
        num_enc_layers=args["num_enc_layers"],
        num_dec_layers=args["num_dec_layers"],
        distil=args["distil"],
        len_seq=args["len_seq"],
        label_len=args["label_len"],
        len_pred=args["len_pred"],
        num_dynamic_features=args["num_dynamic_features"],
        num_static_features=args["num_static_features"],
        max_len=5000,
    )


def eval_forward(module: torch.nn.Module, cases: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    inputs = [torch.from_numpy(cases[name]) for name in INPUT_NAMES]
    with torch.inference_mode():
        pred, logvar = module.eval()(*inputs)
    return pred.numpy(), logvar.numpy()


@pytest.fixture(params=FIXTURE_DIRS, ids=lambda folder: folder.name)
def fixture_dir(request) -> Path:
    folder = request.param
    if not (folder / "state_dict.npz").is_file():
        pytest.skip(f"no parity fixture in {folder}; write one with scripts/parity/make_fixture.py")
    return folder


def test_fixture_heads_do_not_divide_width(fixture_dir):
    args = read_fixture(fixture_dir)[0]["gluformer_args"]

    # The published model's 512 / 10 heads leaves Q/K/V narrower than d_model; the fixture must too.
    assert args["d_model"] % args["n_heads"] != 0
    assert args["activ"] == "gelu"
    assert args["distil"] is True


def test_reference_state_dict_loads_strictly(fixture_dir):
    metadata, state, _ = read_fixture(fixture_dir)
    config = our_config(metadata)
    module = Gluformer(config)

    check_state_dict(state, module, config, "parity fixture")
    result = module.load_state_dict(state, strict=True)

    assert not result.missing_keys
    assert not result.unexpected_keys
    assert sorted(module.state_dict()) == sorted(state)


def test_positional_table_matches_reference(fixture_dir):
    metadata, state, _ = read_fixture(fixture_dir)
    module = Gluformer(our_config(metadata))

    ours = module.state_dict()
    for side in ("enc_embedding", "dec_embedding"):
        key = f"{side}.positional_embedding.pos_emb"
        torch.testing.assert_close(ours[key], state[key], rtol=0, atol=1e-6)


def test_eval_forward_matches_reference(fixture_dir):
    metadata, state, cases = read_fixture(fixture_dir)
    module = Gluformer(our_config(metadata))
    module.load_state_dict(state, strict=True)

    pred, logvar = eval_forward(module, cases)

    assert pred.shape == cases["pred"].shape
    assert logvar.shape == cases["logvar"].shape
    np.testing.assert_allclose(pred, cases["pred"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(logvar, cases["logvar"], rtol=0, atol=TOLERANCE)


def test_forward_differs_without_reference_weights(fixture_dir):
    # Guards the comparison above: a model with other weights must not pass it.
    metadata, _, cases = read_fixture(fixture_dir)
    torch.manual_seed(0)
    module = Gluformer(our_config(metadata))

    pred, _ = eval_forward(module, cases)

    assert np.abs(pred - cases["pred"]).max() > 100 * TOLERANCE


def test_load_model_reproduces_reference(fixture_dir, tmp_path):
    metadata, state, cases = read_fixture(fixture_dir)
    config = our_config(metadata)
    torch.save(state, tmp_path / "reference.pth")
    config.to_json(tmp_path / "reference.json")

    loaded = load_model(tmp_path / "reference.pth")

    pred, logvar = eval_forward(loaded.module, cases)
    np.testing.assert_allclose(pred, cases["pred"], rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(logvar, cases["logvar"], rtol=0, atol=TOLERANCE)
