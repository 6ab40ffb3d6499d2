"""benchmarks/gpu_check.py (`make gpu-check`) on the CPU: its arguments, the refusal without CUDA,
the plan, and every measuring path on the quick models (--tiny)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_without_cuda_it_refuses_in_one_line_with_exit_2(gpu_check, capsys, tmp_path):
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: needs a CUDA GPU") and "--device cpu --tiny" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["--budget-minutes", "0"], "--budget-minutes must be a positive number"),
    (["--budget-minutes", "nan"], "--budget-minutes must be a positive number"),
    (["--device", "mps"], "--device must be cuda or cpu"),
    (["--device", "cpu"], "add --tiny"),
])
def test_bad_arguments_are_refused_in_one_line(gpu_check, capsys, argv, message):
    assert gpu_check.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_the_dry_run_prints_the_plan_and_runs_nothing(gpu_check, capsys, tmp_path):
    assert gpu_check.main(["--dry-run", "--out", str(tmp_path / "out"), "--budget-minutes", "12"]) == 0
    plan = capsys.readouterr().out
    assert "budget 12 min" in plan and "-k cuda" in plan
    assert "train f-nsf cifar10 paper batch 512 bf16 compiled workers 0" in plan
    assert "--preset classroom" in plan and "for the minutes left" in plan
    assert not (tmp_path / "out").exists()


def test_the_plan_measures_every_eager_row_before_any_compiled_one(gpu_check):
    plan = gpu_check.throughput_plan()
    assert len(plan) == 2 * 2 * 2 * 2 + 1  # data x model x precision x (eager, compiled), and the worker
    first_compiled = next(i for i, row in enumerate(plan) if row["compile"])
    assert all(not row["compile"] for row in plan[:first_compiled])
    assert {(r["dataset"], r["model"], r["precision"]) for r in plan if r["compile"]} == \
        {(r["dataset"], r["model"], r["precision"]) for r in plan[:first_compiled] if r["workers"] == 0}


def test_a_failed_measurement_costs_its_row_only(gpu_check):
    def broken(*args):
        raise RuntimeError("inductor could not compile this\nsecond line")

    assert gpu_check.attempt(broken, 1) == {"reason": "failed: RuntimeError: inductor could not compile this"}
    assert gpu_check.attempt(lambda x: {"images_per_s": x}, 3.0) == {"images_per_s": 3.0}


def test_tiny_measurements_and_their_report(gpu_check):
    cpu = torch.device("cpu")
    row = dict(dataset="cifar10", model="f-nsf", precision="fp32", compile=False, workers=1)
    trained = gpu_check.measure_training(row, cpu, tiny=True)
    assert trained["batch_size"] == 2 and trained["timed_steps"] == 1 and trained["images_per_s"] > 0
    assert trained["preset"] == "quick" and torch.isfinite(torch.tensor(trained["loss"]))
    sampled = gpu_check.measure_sampling("nsf", "mnist", cpu, tiny=True)
    assert sampled["n"] == 4 and sampled["finite"] and sampled["seconds"] > 0
    assert gpu_check.skip_reason(dict(row, precision="bf16"), cpu, True, 600) == \
        "bfloat16 autocast (amp) is for CUDA GPUs only"
    assert "budget" in gpu_check.skip_reason(dict(row, compile=True), torch.device("cuda"), False, 100)
    result = {"gpu": "CPU (test)", "tiny": True, "torch": torch.__version__, "cuda": None, "budget_minutes": 1,
              "started": "now", "seconds": 12.0, "tests": {"summary": "not run"}, "throughput": [trained],
              "skipped": [dict(row, precision="bf16", reason="bfloat16 autocast (amp) is for CUDA GPUs only")],
              "sampling": [sampled], "classroom": {"command": "train images", "skipped": "less than 5 s of budget left"}}
    text = gpu_check.markdown(result)
    assert text.startswith("# GPU check: CPU (test) (--tiny")
    assert f"| cifar10 | f-nsf | quick | 2 | fp32 | no | 1 | {trained['images_per_s']:,.0f} |" in text
    assert "Not run: less than 5 s of budget left." in text


@pytest.mark.slow
def test_a_tiny_check_on_the_cpu_writes_every_section(gpu_check, tmp_path):
    """The whole script with --device cpu --tiny and a 2-minute budget: every measurement, then the
    classroom stand-in (quick F-NSF, 2 steps) trained to its end with what is left."""
    assert gpu_check.main(["--device", "cpu", "--tiny", "--budget-minutes", "2", "--out", str(tmp_path / "out"),
                           "--runs", str(tmp_path / "runs")]) == 0
    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert result["tiny"] and result["device"] == "cpu" and result["gpu"].startswith("CPU")
    assert {(r["dataset"], r["model"]) for r in result["sampling"]} == {(d, m) for d in ("mnist", "cifar10")
                                                                        for m in ("f-nsf", "nsf")}
    assert len(result["throughput"]) == 5  # the four models in float32, eager, and the DataLoader worker
    assert all(r["precision"] == "fp32" and not r["compile"] and r["images_per_s"] > 0 for r in result["throughput"])
    assert {r["reason"] for r in result["skipped"]} == {"bfloat16 autocast (amp) is for CUDA GPUs only",
                                                        "--tiny: compiling an image flow takes minutes on a CPU"}
    classroom = result["classroom"]
    assert classroom["returncode"] == 0 and not classroom["stopped_at_budget"]
    assert classroom["finished"] and classroom["step"] == classroom["steps"] == 2 and classroom["bpd"] > 0
    assert "## The classroom F-NSF" in (tmp_path / "out" / "gpu_check.md").read_text()


@pytest.mark.slow
def test_the_classroom_training_is_stopped_at_the_budget(gpu_check, tmp_path):
    """Three seconds are less than the training command needs to start: SIGTERM stops it (exit 143
    once the command's handler is set, -15 before), and the report says so."""
    args = gpu_check.parse_args(["--device", "cpu", "--tiny"])
    record = gpu_check.train_classroom(args, tmp_path / "run", 3.0)
    assert record["stopped_at_budget"] and record["returncode"] in (143, -15)
    assert 3.0 <= record["wall_s"] < 60 and not record.get("finished")
