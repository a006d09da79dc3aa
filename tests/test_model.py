"""Gluformer architecture, configuration and weight loading, without any download."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from glurpc_lab.model import GluformerConfig, ScalingPolicy, WeightsError, load_model
from glurpc_lab.model.gluformer import Gluformer


def published_key_shapes() -> dict[str, tuple[int, ...]]:
    """Return every state_dict key of the published weights with its shape, written out from the weights' layout."""
    d, inner, fcn = 512, 510, 1024
    shapes: dict[str, tuple[int, ...]] = {}
    for side in ("enc_embedding", "dec_embedding"):
        shapes.update({
            f"{side}.value_embedding.conv.weight": (d, 1, 3),
            f"{side}.value_embedding.conv.bias": (d,),
            f"{side}.time_embedding.embed.weight": (d, 6),
            f"{side}.time_embedding.embed.bias": (d,),
            f"{side}.positional_embedding.pos_emb": (1, 5000, d),
            f"{side}.subject_embedding.id_embedding.weight": (d, 1),
            f"{side}.subject_embedding.id_embedding.bias": (d,),
        })

    def attention(prefix: str) -> None:
        for name in ("proj_q", "proj_k", "proj_v"):
            shapes[f"{prefix}.{name}.weight"] = (inner, d)
            shapes[f"{prefix}.{name}.bias"] = (inner,)
        shapes[f"{prefix}.proj_out.weight"] = (d, inner)
        shapes[f"{prefix}.proj_out.bias"] = (d,)

    def feed_forward(prefix: str, norms: int) -> None:
        shapes[f"{prefix}.conv1.weight"] = (fcn, d, 1)
        shapes[f"{prefix}.conv1.bias"] = (fcn,)
        shapes[f"{prefix}.conv2.weight"] = (d, fcn, 1)
        shapes[f"{prefix}.conv2.bias"] = (d,)
        for index in range(1, norms + 1):
            shapes[f"{prefix}.norm{index}.weight"] = (d,)
            shapes[f"{prefix}.norm{index}.bias"] = (d,)

    for layer in (0, 1):
        attention(f"encoder.enc_layers.{layer}.att")
        feed_forward(f"encoder.enc_layers.{layer}", norms=2)
    shapes.update({
        "encoder.conv_layers.0.downConv.weight": (d, d, 3),
        "encoder.conv_layers.0.downConv.bias": (d,),
        "encoder.conv_layers.0.norm.weight": (d,),
        "encoder.conv_layers.0.norm.bias": (d,),
        "encoder.conv_layers.0.norm.running_mean": (d,),
        "encoder.conv_layers.0.norm.running_var": (d,),
        "encoder.conv_layers.0.norm.num_batches_tracked": (),
        "encoder.norm.weight": (d,),
        "encoder.norm.bias": (d,),
    })
    for layer in (0, 1):
        attention(f"decoder.layers.{layer}.self_att")
        attention(f"decoder.layers.{layer}.cross_att")
        feed_forward(f"decoder.layers.{layer}", norms=3)
    shapes.update({
        "decoder.norm.weight": (d,),
        "decoder.norm.bias": (d,),
        "projection.weight": (1, d),
        "projection.bias": (1,),
        "var.proj1.weight": (1, d),
        "var.proj1.bias": (1,),
        "var.proj2.weight": (1, 97),
        "var.proj2.bias": (1,),
    })
    return shapes


def tiny_inputs(config: GluformerConfig, batch: int = 3) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(1)
    dec_len = config.label_len + config.len_pred
    return (
        torch.zeros(batch, config.num_static_features),
        torch.rand(batch, config.len_seq, 1, generator=generator),
        torch.rand(batch, config.len_seq, config.num_dynamic_features, generator=generator),
        torch.rand(batch, dec_len, 1, generator=generator),
        torch.rand(batch, dec_len, config.num_dynamic_features, generator=generator),
    )


def save_weights(module: torch.nn.Module, config: GluformerConfig, folder: Path, stem: str = "model") -> Path:
    path = folder / f"{stem}.pth"
    torch.save(module.state_dict(), path)
    config.to_json(path.with_suffix(".json"))
    return path


def test_published_keys_match_weights_layout():
    state = Gluformer(GluformerConfig.published()).state_dict()
    expected = published_key_shapes()

    assert len(expected) == 115
    assert sorted(state) == sorted(expected)
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert state["encoder.conv_layers.0.norm.num_batches_tracked"].dtype == torch.int64


def test_published_parameter_count():
    module = Gluformer(GluformerConfig.published())

    assert sum(p.numel() for p in module.parameters()) == 11_294_272


def test_forward_shapes_and_logvar_bounds():
    config = GluformerConfig.tiny()
    module = Gluformer(config).eval()

    pred, logvar = module(*tiny_inputs(config, batch=4))

    assert pred.shape == (4, config.len_pred, 1)
    assert logvar.shape == (4, 1, 1)
    assert torch.all(logvar.abs() < 10)


def test_decoder_is_causal():
    config = GluformerConfig.tiny()
    module = Gluformer(config).eval()
    inputs = list(tiny_inputs(config, batch=2))

    with torch.no_grad():
        before, _ = module(*inputs)
        changed = inputs[4].clone()
        changed[:, -1, :] += 5.0
        inputs[4] = changed
        after, _ = module(*inputs)

    # Each covariate row enters only its own token, so only the last position may change.
    # Glucose values would not do here, because their embedding is a circular convolution.
    assert torch.equal(before[:, :-1], after[:, :-1])
    assert not torch.equal(before[:, -1], after[:, -1])


def test_config_json_round_trip(tmp_path):
    config = GluformerConfig.published()
    config.to_json(tmp_path / "config.json")

    assert GluformerConfig.from_json(tmp_path / "config.json") == config
    assert GluformerConfig.from_dict(GluformerConfig.small().to_dict()) == GluformerConfig.small()


def test_config_rejects_unknown_field():
    data = GluformerConfig.tiny().to_dict()
    data["d_modle"] = 8

    with pytest.raises(ValueError, match="d_modle"):
        GluformerConfig.from_dict(data)


def test_scaling_policy_rejects_unknown_kind():
    with pytest.raises(ValueError, match="per-upload"):
        ScalingPolicy(kind="per-upload")


def test_load_local_weights(tmp_path):
    config = GluformerConfig.tiny()
    torch.manual_seed(3)
    original = Gluformer(config).eval()
    path = save_weights(original, config, tmp_path)

    loaded = load_model(path)

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.sha256 == digest
    assert loaded.model_id.startswith("tiny-")
    assert loaded.config == config
    assert not loaded.module.training

    # Other interval factors in the config change the forecasts, so they change the id.
    recalibrated = GluformerConfig(**{**config.to_dict(), "scaling": config.scaling, "step_std_scale": (2.0,) * config.len_pred})
    recalibrated.to_json(path.with_suffix(".json"))
    assert load_model(path).model_id != loaded.model_id
    inputs = tiny_inputs(config)
    with torch.no_grad():
        assert torch.equal(loaded.module(*inputs)[0], original(*inputs)[0])


def test_load_mismatched_weights_names_key(tmp_path):
    wider = dataclasses.replace(GluformerConfig.tiny(), name="wider", d_model=32)
    path = save_weights(Gluformer(GluformerConfig.tiny()), wider, tmp_path)

    with pytest.raises(WeightsError, match=r"config 'wider'.*key 'enc_embedding\.value_embedding\.conv\.weight' has shape \(16, 1, 3\), expected \(32, 1, 3\)"):
        load_model(path)


def test_load_missing_key_named(tmp_path):
    config = GluformerConfig.tiny()
    state = Gluformer(config).state_dict()
    del state["var.proj2.bias"]
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    config.to_json(tmp_path / "partial.json")

    with pytest.raises(WeightsError, match=r"missing key 'var\.proj2\.bias'"):
        load_model(path)


def test_pth_without_config_assumes_published(tmp_path, caplog):
    path = tmp_path / "weights.pth"
    torch.save(Gluformer(GluformerConfig.tiny()).state_dict(), path)

    with caplog.at_level(logging.INFO, logger="glurpc_lab.model.weights"):
        with pytest.raises(WeightsError, match="config 'published'"):
            load_model(path)
    assert "assuming the published Gluformer preset" in caplog.text


def test_pickled_module_rejected(tmp_path):
    config = GluformerConfig.tiny()
    path = tmp_path / "module.pth"
    torch.save(Gluformer(config), path)
    config.to_json(tmp_path / "module.json")

    with pytest.raises(WeightsError, match="not a plain tensor state_dict"):
        load_model(path)


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_model(tmp_path / "absent.pth")


def test_invalid_hub_reference():
    with pytest.raises(WeightsError, match=r"hf:OWNER/REPO/FILE\[@REVISION\]"):
        load_model("hf:only-a-repo")


def test_hub_offline_fails_fast(tmp_path):
    # A subprocess, because huggingface_hub reads HF_HUB_OFFLINE when it is imported.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf-home"))
    code = (
        "from glurpc_lab.model import load_model, WeightsError\n"
        "try:\n"
        "    load_model('hf:Livia-Zaharia/gluformer_models/weights.pth@main')\n"
        "except WeightsError as error:\n"
        "    print(error)\n"
    )

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    assert "HF_HUB_OFFLINE is set" in result.stdout
    assert "pass its local path" in result.stdout
    assert elapsed < 30


def test_bundled_model_loads():
    loaded = load_model()

    assert loaded.source == "bundled"
    assert loaded.model_id.startswith(f"{loaded.config.name}-")
    assert loaded.config.scaling.kind == "fixed"
    assert load_model("bundled").sha256 == loaded.sha256
