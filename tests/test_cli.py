"""The command line, run as a user runs it: train, eval, sample, reproduce, and bad input."""

import json
import subprocess
import sys

import pytest


def funnelkit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "funnelkit", *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    result = funnelkit("train", "four-circles", "--model", "f-nsf", "--preset", "quick", "--steps", "15", "--out", out, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "true density: -2.8" in result.stdout
    return out


def test_train_writes_a_checkpoint_and_metrics(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["format"] == 1 and metrics["experiment"] == "four-circles" and metrics["finished"]
    assert metrics["training"]["steps"] == 15 and metrics["model"]["name"] == "f-nsf"
    evaluation = metrics["evaluation"]
    assert evaluation["gap"] > 0  # 15 steps cannot match the truth
    assert evaluation["gap"] == pytest.approx(evaluation["true_ll"] - evaluation["model_ll"], abs=1e-12)
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "metrics.json"]  # no lock, no temporaries


def test_eval_reports_the_model_beside_the_true_density(run_dir):
    result = funnelkit("eval", run_dir, "--n", "4000")
    assert result.returncode == 0, result.stderr
    assert "4,000 points" in result.stdout and "true density:" in result.stdout and "latent dim 1" in result.stdout


def test_sample_writes_a_png(run_dir, tmp_path):
    out = tmp_path / "samples.png"
    result = funnelkit("sample", run_dir, "--temperature", "0.5", "--n", "500", "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sample_tempers_the_four_circles_funnels_decoder_on_request(run_dir, tmp_path):
    for temper, said in (("all", "the base and the decoders' noise"), ("mean", "the base noise; decoder means")):
        out = tmp_path / f"{temper}.png"
        result = funnelkit("sample", run_dir, "--temperature", "0.5", "--temper", temper, "--n", "500", "--out", out)
        assert result.returncode == 0, result.stderr
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"temperature 0.5 ({said})" in result.stdout
    result = funnelkit("sample", run_dir, "--temper", "warm", "--out", tmp_path / "bad.png")
    assert result.returncode == 2 and "--temper: unknown temper 'warm'" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "bad.png").exists()


def test_resume_continues_an_existing_run(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    import torch

    from funnelkit.checkpoints import read_checkpoint

    payload = read_checkpoint(copy)  # made into an interrupted 18-step run: its checkpoint at step 15 of 18
    payload["trainer"]["config"]["steps"] = 18
    torch.save(payload, copy / "checkpoint.pt")
    (copy / "metrics.json").unlink()
    result = funnelkit("train", "four-circles", "--steps", "18", "--out", copy, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "resuming at step 15 of 18" in result.stdout
    assert json.loads((copy / "metrics.json").read_text())["training"]["steps"] == 18


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "five-circles"], "unknown experiment 'five-circles'"),
        (["train", "four-circles", "--model", "glow"], "unknown plane model 'glow'"),
        (["train", "four-circles", "--preset", "huge"], "unknown preset 'huge'"),
        (["train", "four-circles", "--device", "tpu"], "unknown device 'tpu'"),
        (["reproduce", "fig9"], "unknown result 'fig9'"),
    ],
)
def test_bad_arguments_fail_clearly_and_write_nothing(tmp_path, args, message):
    result = funnelkit(*args, "--out", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()


def test_missing_and_corrupt_runs_fail_clearly(tmp_path):
    result = funnelkit("eval", tmp_path / "absent")
    assert result.returncode == 2 and "no checkpoint at" in result.stderr
    (tmp_path / "checkpoint.pt").write_text("garbage")
    result = funnelkit("sample", tmp_path, "--out", tmp_path / "x.png")
    assert result.returncode == 2 and "not a readable funnelkit checkpoint" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_reproduce_fig2_writes_figures_and_a_table(tmp_path):
    result = funnelkit("reproduce", "fig2", "--preset", "quick", "--out", tmp_path, "--device", "cpu")
    assert result.returncode == 0, result.stderr
    for name in ("fig2.png", "fig2_nsf.png", "fig5.png", "fig2.json", "fig2.md"):
        assert (tmp_path / name).stat().st_size > 0
    result = json.loads((tmp_path / "fig2.json").read_text())
    assert result["models"]["f-nsf"]["source"].startswith("shipped checkpoint")
    assert result["models"]["f-nsf"]["gap"] < 0.08
    assert "true density" in (tmp_path / "fig2.md").read_text()
