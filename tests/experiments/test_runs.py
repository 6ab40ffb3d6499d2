"""The generic training run: train, load a finished run, resume an interrupted one (equal to an
uninterrupted run), refuse a folder holding another run; and the evaluation helpers, each
checked against the same quantity computed by hand."""

import json
import math

import pytest
import torch

import funnelkit as fk
from funnelkit.checkpoints import read_checkpoint
from funnelkit.experiments import runs
from funnelkit.models.anomaly import anomaly_model

from ..conftest import small_plane_model


def circles(n, generator):
    return fk.data.four_circles(n, generator=generator)


def evaluate(model):
    x = fk.data.four_circles(300, seed=3)
    return runs.nats(model, x), {"ll": runs.log_likelihoods(model, x)}


def run(out, steps=10, sample_batch=circles, model=None, key="v1"):
    fk.seed_everything(0)
    model = model or small_plane_model("f-nsf", dtype=torch.float32)
    return runs.train_or_load(model, sample_batch, runs.train_config(steps, 32, 3e-3), out, evaluate=evaluate,
                              evaluation_key={"test": key}, progress=False)


def flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_a_run_trains_then_loads_and_an_interrupted_one_resumes_to_the_same_model(tmp_path):
    straight = run(tmp_path / "straight")
    assert straight.status == "trained"
    stored = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert stored["finished"] and stored["training"]["steps"] == 10 and stored["evaluation"] == straight.metrics["evaluation"]
    assert stored["training"]["seconds_per_step"] > 0

    again = run(tmp_path / "straight")
    assert again.status == "loaded"
    assert torch.equal(flat(again.model), flat(straight.model))
    assert again.metrics["evaluation"] == straight.metrics["evaluation"]  # reused, not recomputed
    assert torch.equal(again.arrays["ll"], straight.arrays["ll"])

    calls = {"n": 0}

    def crashing(n, generator):  # dies at step 7; train_config(10, ...) checkpoints every 2 steps
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return circles(n, generator)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "interrupted", sample_batch=crashing)
    assert not (tmp_path / "interrupted" / "metrics.json").exists()
    before = read_checkpoint(tmp_path / "interrupted")["trainer"]["seconds"]  # time spent up to the checkpoint
    assert before > 0
    resumed = run(tmp_path / "interrupted")
    assert resumed.status == "resumed"
    assert resumed.metrics["training"]["train_seconds"] > before  # the time before the crash is carried over
    assert torch.equal(flat(resumed.model), flat(straight.model))
    assert resumed.metrics["evaluation"]["ll"] == pytest.approx(straight.metrics["evaluation"]["ll"], abs=1e-6)


def test_a_changed_evaluation_is_recomputed_and_another_run_is_refused(tmp_path):
    first = run(tmp_path / "run", steps=4)
    changed = run(tmp_path / "run", steps=4, key="v2")
    assert changed.status == "loaded" and changed.metrics["evaluation_key"] == {"test": "v2"}
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    with pytest.raises(ValueError, match="holds another run: its steps are 4, this asks for 5.*--extend"):
        run(tmp_path / "run", steps=5)
    with pytest.raises(ValueError, match="holds another run: its model is 'f-nsf', this asks for 'nsf'"):
        run(tmp_path / "run", steps=4, model=small_plane_model("nsf", dtype=torch.float32))
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    assert first.metrics["latent_dim"] == 1 and first.metrics["exact"] is True


def test_image_batches_are_dequantised_afresh_and_reproducible():
    images = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    sample = runs.image_batches(images, 5)
    a = sample(20, torch.Generator().manual_seed(1))
    b = sample(20, torch.Generator().manual_seed(1))
    c = sample(20, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.dtype == torch.float32 and a.min() >= 0 and a.max() < 32
    # every batch row is one of the images, reduced to 5 bits: floor(u) is in the set
    reduced = {tuple(x.flatten().tolist()) for x in torch.div(images, 8, rounding_mode="floor")}
    assert all(tuple(torch.floor(x).to(torch.uint8).flatten().tolist()) in reduced for x in a)
    # with an index, only those rows are drawn, and the stream is that of the copied rows
    index = torch.tensor([3, 7, 11])
    picked = runs.image_batches(images, 8, index)(30, torch.Generator().manual_seed(1))
    copied = runs.image_batches(images[index], 8)(30, torch.Generator().manual_seed(1))
    assert torch.equal(picked, copied)
    assert {tuple(torch.floor(x).to(torch.uint8).flatten().tolist()) for x in picked} <= \
        {tuple(images[i].flatten().tolist()) for i in index}
    with pytest.raises(ValueError, match="uint8"):
        runs.image_batches(images.float(), 5)
    with pytest.raises(ValueError, match="rows in"):
        runs.image_batches(images, 5, torch.tensor([50]))


def test_bits_per_dim_and_error_bars_match_the_formulas():
    fk.seed_everything(0)
    model = anomaly_model("f-mlp", 4, preset="quick", widths=(32, 16, 8, 8), hidden_features=8)
    images = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8)
    bpd = runs.per_example_bpd(model, images, 8, batch_size=5)
    with torch.no_grad():
        log_p = model.log_prob(runs.dequantised(images, 8))
    assert torch.allclose(bpd, -log_p.double() / (784 * math.log(2)), rtol=1e-6)
    summary = runs.bpd_summary(bpd)
    assert summary["n"] == 12 and summary["bpd"] == pytest.approx(bpd.mean().item())
    assert summary["bpd_2se"] == pytest.approx(2 * bpd.std().item() / math.sqrt(12))


def test_held_out_split_is_a_fixed_partition():
    train, held = runs.held_out_split(100, 10, seed=4)
    again, _ = runs.held_out_split(100, 10, seed=4)
    assert torch.equal(train, again) and len(held) == 10
    assert sorted(torch.cat([train, held]).tolist()) == list(range(100))
    with pytest.raises(ValueError, match="between 1 and 99"):
        runs.held_out_split(100, 100, seed=0)


def test_settings_reject_unknown_names():
    from funnelkit.experiments.table4 import PRESETS

    assert PRESETS["quick"].vae_steps > PRESETS["quick"].steps
    only_steps = runs.choose_settings(PRESETS, "quick", {"steps": 7}, "table4")
    assert (only_steps.steps, only_steps.vae_steps) == (7, None)  # --steps: every model's
    both = runs.choose_settings(PRESETS, "quick", {"steps": 7, "vae_steps": 9}, "table4")
    assert (both.steps, both.vae_steps) == (7, 9)
    with pytest.raises(ValueError, match="unknown setting 'stepz' for table4"):
        runs.choose_settings(PRESETS, "quick", {"stepz": 7}, "table4")
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        runs.choose_settings(PRESETS, "huge", {}, "table4")
