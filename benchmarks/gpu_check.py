"""``make gpu-check``: what the image models do on a CUDA GPU, measured once and written down
(issue 11, item 5). Ready; not yet run on a GPU.

In order, within ``--budget-minutes`` (wall time of the whole script):

1. the CUDA tests: ``pytest -k cuda`` on the test files that have some (autocast, the DataLoader
   worker's pinned batches, ``torch.compile``, the models on the GPU);
2. training throughput (images/s, median of timed steps after the first ones) of the paper-size
   F-NSF and NSF (``--preset paper``) on MNIST-shaped (1 x 28 x 28) and CIFAR-10-shaped
   (3 x 32 x 32) random 5-bit data at the paper's batch size: float32 and bfloat16 autocast,
   eager first, then compiled (``torch.compile``; its compilation time is recorded apart) while the
   budget lasts; and the CIFAR-10 F-NSF with a DataLoader worker drawing the batches ahead;
3. the seconds to sample 64 images at T = 0.5 (base-only tempering, the paper's) from each;
4. the classroom F-NSF (``funnelkit train images --dataset mnist --bits 5 --model f-nsf --preset
   classroom``) for the minutes left, in ``runs/gpu-check/`` (a later call resumes it); stopped by
   SIGTERM at the budget, the run keeps its last checkpoint.

Every number goes, with the GPU's name, into ``benchmarks/results/gpu_check.json`` and ``.md``.
Without CUDA it refuses in one line (exit 2). ``--dry-run`` prints the plan and runs nothing;
``--device cpu --tiny`` runs every measuring path on the quick models in seconds (results in a
temporary folder unless ``--out`` is given; compile and bfloat16 are GPU-only and recorded as
skipped).

Run: ``make gpu-check`` or ``python benchmarks/gpu_check.py [--budget-minutes 10]``.
"""

import argparse
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
NAME = "gpu_check"
CUDA_TEST_FILES = ("tests/test_train.py", "tests/test_distributed.py", "tests/models/test_funnel_flow.py")
MODELS = ("f-nsf", "nsf")
DATASETS = ("mnist", "cifar10")
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
BITS = 5
SAMPLES, SAMPLE_TEMPERATURE = 64, 0.5
CLASSROOM = ["images", "--dataset", "mnist", "--bits", "5", "--model", "f-nsf", "--preset", "classroom"]


class Refused(Exception):
    """A reason to stop before measuring anything: printed as one line, exit 2."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-minutes", type=float, default=8.0,
                        help="wall minutes for everything; the classroom training gets what is left, at least "
                             "30%% of it or 3 minutes (default 8)")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny only)")
    parser.add_argument("--tiny", action="store_true",
                        help="quick models, batch 2, one timed step: exercise every path in seconds (with --device cpu)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and exit without running anything")
    parser.add_argument("--out", help="folder for gpu_check.json and .md (default benchmarks/results; --tiny: a "
                                      "temporary folder)")
    parser.add_argument("--runs", help="folder of the classroom run (default runs/gpu-check)")
    parser.add_argument("--skip-tests", action="store_true", help="do not run the CUDA tests")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.budget_minutes) and args.budget_minutes > 0):
        raise Refused(f"--budget-minutes must be a positive number of minutes, got {args.budget_minutes}")
    if args.device not in ("cuda", "cpu"):
        raise Refused(f"--device must be cuda or cpu, got {args.device!r}")
    if args.device == "cpu" and not args.tiny and not args.dry_run:
        raise Refused("--device cpu measures nothing worth recording: add --tiny to exercise the code paths")
    return args


def check_cuda(args):
    """Refuse (:class:`Refused`) when the device asked for is CUDA and torch sees none."""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise Refused(f"needs a CUDA GPU and torch {torch.__version__} sees none (built for CUDA "
                      f"{torch.version.cuda or 'none'}); run it on a GPU machine, or add --device cpu --tiny "
                      "to exercise the code")


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------

def throughput_plan():
    """The throughput measurements in the order they run: every eager one first (cheap), then the
    compiled ones (minutes of compilation each), then the DataLoader worker."""
    eager = [dict(dataset=d, model=m, precision=p, compile=False, workers=0)
             for d in DATASETS for m in MODELS for p in ("fp32", "bf16")]
    # CIFAR-10's larger images first: where compiling is likelier to pay
    compiled = [dict(row, compile=True) for row in sorted(eager, key=lambda r: r["dataset"] != "cifar10")]
    worker = [dict(dataset="cifar10", model="f-nsf", precision="fp32", compile=False, workers=1)]
    return eager + worker + compiled


def settings_of(dataset, model, tiny):
    """``(preset, batch_size)``: the paper's model and batch (commands.training_settings), or tiny's."""
    if tiny:
        return "quick", 2
    from funnelkit.experiments.commands import make_spec, training_settings

    return "paper", training_settings(make_spec("images", model, "paper", dataset, BITS))["batch_size"]


def classroom_command(args, out):
    words = [sys.executable, "-m", "funnelkit", "train"]
    if args.tiny:
        words += ["images", "--dataset", "mnist", "--bits", "5", "--model", "f-nsf", "--preset", "quick",
                  "--steps", "2"]
    else:
        words += CLASSROOM
    return words + ["--device", args.device, "--out", str(out)]


def describe_plan(args, out, run_folder):
    lines = [f"gpu check on {args.device}{' (tiny)' if args.tiny else ''}, budget {args.budget_minutes:g} min, "
             f"results in {out}"]
    if not args.skip_tests:
        lines.append("1. " + " ".join(test_command()))
    for i, row in enumerate(throughput_plan()):
        preset, batch = settings_of(row["dataset"], row["model"], args.tiny)
        lines.append(f"2.{i + 1} train {row['model']} {row['dataset']} {preset} batch {batch} {row['precision']} "
                     f"{'compiled' if row['compile'] else 'eager'} workers {row['workers']}")
    lines.append(f"3. sample {SAMPLES if not args.tiny else 4} images at T = {SAMPLE_TEMPERATURE} from each model")
    lines.append("4. " + " ".join(classroom_command(args, run_folder)) + "  (for the minutes left)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------

def test_command():
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", *CUDA_TEST_FILES]


def run_cuda_tests(timeout):
    """``pytest -k cuda`` on the files with CUDA tests: exit code, the summary line, seconds."""
    start = time.perf_counter()
    try:
        done = subprocess.run(test_command(), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"returncode": None, "summary": f"stopped after {timeout:.0f} s", "seconds": timeout}
    summary = next((line.strip("= ") for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ (passed|failed"
                                                                                               r"|skipped|error)", line)),
                   done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "no output")
    return {"returncode": done.returncode, "summary": summary, "seconds": time.perf_counter() - start,
            "failures": done.stdout[-4000:] if done.returncode else ""}


def synchronize(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(model_name, dataset, preset, device):
    import funnelkit as fk
    from funnelkit.models.image import image_model

    fk.seed_everything(0)
    return image_model(model_name, dataset, BITS, preset=preset).to(device)


def random_images(dataset, n=1024, seed=0):
    import torch

    return torch.randint(0, 256, (n, *SHAPES[dataset]), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def measure_training(row, device, tiny, warmup=3, timed_seconds=5.0, max_steps=40):
    """Images/s of ``train_step`` for one row of :func:`throughput_plan` (median of timed steps),
    the seconds of the first ``warmup`` steps (a compiled run compiles there), peak GPU memory."""
    import torch

    import funnelkit as fk
    from funnelkit.experiments.runs import image_batches
    from funnelkit.train import Speed

    preset, batch = settings_of(row["dataset"], row["model"], tiny)
    if tiny:
        warmup, timed_seconds, max_steps = 1, 0.0, 1
    model = build(row["model"], row["dataset"], preset, device)
    config = fk.TrainConfig(steps=1_000_000, batch_size=batch, lr=1e-4, schedule="constant",
                            amp=row["precision"] == "bf16")
    trainer = fk.Trainer(model, image_batches(random_images(row["dataset"]), BITS), config,
                         speed=Speed(compile=row["compile"], workers=row["workers"]))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(warmup):
        trainer.train_step()
    synchronize(device)
    first = time.perf_counter() - start
    times, start_all = [], time.perf_counter()
    while len(times) < max_steps and (len(times) == 0 or time.perf_counter() - start_all < timed_seconds):
        start = time.perf_counter()
        trainer.train_step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    trainer.close_batches()
    step = statistics.median(times)
    return {**row, "preset": preset, "batch_size": batch, "parameters": model.num_parameters(),
            "images_per_s": batch / step, "seconds_per_step": step, "timed_steps": len(times),
            "first_steps_s": first, "warmup_steps": warmup, "loss": trainer.history["loss"][-1],
            "peak_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def measure_sampling(model_name, dataset, device, tiny, repeats=3):
    """Seconds to draw ``SAMPLES`` images at T = 0.5 (median of ``repeats`` after one warm-up)."""
    import torch

    n = 4 if tiny else SAMPLES
    preset, _ = settings_of(dataset, model_name, tiny)
    model = build(model_name, dataset, preset, device).eval()
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            synchronize(device)
            start = time.perf_counter()
            images = model.sample(n, temperature=SAMPLE_TEMPERATURE)
            synchronize(device)
            if i:
                times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"dataset": dataset, "model": model_name, "preset": preset, "n": n, "temperature": SAMPLE_TEMPERATURE,
            "seconds": seconds, "images_per_s": n / seconds, "finite": bool(torch.isfinite(images).all())}


def train_classroom(args, run_folder, seconds):
    """The classroom F-NSF for at most ``seconds``; SIGTERM at the limit (the CLI then unwinds and
    keeps its last checkpoint). Returns what the run folder says afterwards."""
    from funnelkit.checkpoints import read_checkpoint
    from funnelkit.runs import read_metrics

    command = classroom_command(args, run_folder)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=max(seconds, 1.0))
        stopped = False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=120)
        stopped = True
    record = {"command": " ".join(command[3:]), "budget_s": seconds, "wall_s": time.perf_counter() - start,
              "returncode": process.returncode, "stopped_at_budget": stopped, "output_tail": output[-1500:]}
    checkpoint = run_folder / "checkpoint.pt"
    if checkpoint.is_file():
        trainer = read_checkpoint(checkpoint).get("trainer") or {}
        record.update(step=trainer.get("step"), steps=(trainer.get("config") or {}).get("steps"),
                      train_seconds=trainer.get("seconds"))
    if (run_folder / "metrics.json").is_file():
        metrics = read_metrics(run_folder)
        if metrics.get("finished"):
            evaluation = metrics.get("evaluation") or {}
            record.update(finished=True, bpd=evaluation.get("bpd"), bpd_2se=evaluation.get("bpd_2se"),
                          seconds_per_step=(metrics.get("training") or {}).get("seconds_per_step"))
    return record


# --------------------------------------------------------------------------------------------
# The check and its report
# --------------------------------------------------------------------------------------------

def device_name(device):
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()})"


def run_check(args, out, run_folder, clock=time.perf_counter):
    import torch

    device = torch.device(args.device)
    deadline = clock() + args.budget_minutes * 60
    left = lambda: deadline - clock()  # noqa: E731
    result = {"gpu": device_name(device), "device": args.device, "tiny": args.tiny, "torch": torch.__version__,
              "cuda": torch.version.cuda, "budget_minutes": args.budget_minutes,
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "tests": None, "throughput": [], "skipped": [],
              "sampling": [], "classroom": None}
    if args.skip_tests or args.tiny:
        result["tests"] = {"summary": "not run (--skip-tests or --tiny)"}
    else:
        result["tests"] = run_cuda_tests(timeout=max(60.0, 0.25 * left()))
    reserve = min(0.3 * args.budget_minutes * 60, 180.0)  # seconds kept for the classroom training
    for row in throughput_plan():
        why = skip_reason(row, device, args.tiny, left() - reserve)
        if why:
            result["skipped"].append({**row, "reason": why})
            continue
        measured = attempt(measure_training, row, device, args.tiny)
        (result["skipped"] if "reason" in measured else result["throughput"]).append({**row, **measured})
        print(f"gpu check: {row} done, {left() / 60:.1f} min left", flush=True)
    for dataset in DATASETS:
        for model_name in MODELS:
            sampled = attempt(measure_sampling, model_name, dataset, device, args.tiny)
            if "reason" not in sampled:
                result["sampling"].append(sampled)
            else:
                result["skipped"].append({"dataset": dataset, "model": model_name, "precision": "fp32",
                                          "compile": False, "workers": 0, "reason": f"sampling: {sampled['reason']}"})
    least = 5 if args.tiny else 30  # seconds worth starting the classroom run for
    result["classroom"] = train_classroom(args, run_folder, left()) if left() > least else {
        "command": " ".join(classroom_command(args, run_folder)[3:]), "skipped": f"less than {least} s of budget left"}
    result["seconds"] = args.budget_minutes * 60 - left()
    return result


def attempt(measure, *args):
    """``measure(*args)``, or ``{"reason": ...}`` when it fails (out of GPU memory, a compiler
    error): one failure costs its row, not the other measurements."""
    import torch

    try:
        return measure(*args)
    except Exception as error:  # noqa: BLE001 - recorded in the report, named by type
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        first = (str(error).strip().splitlines() or [""])[0][:200]
        return {"reason": f"failed: {type(error).__name__}: {first}"}


def skip_reason(row, device, tiny, seconds_left):
    """Why a throughput row is not measured (or None): bf16 and compile are for CUDA; a compiled
    row needs some minutes of budget (its compilation)."""
    if row["precision"] == "bf16" and device.type != "cuda":
        return "bfloat16 autocast (amp) is for CUDA GPUs only"
    if row["compile"] and tiny:
        return "--tiny: compiling an image flow takes minutes on a CPU"
    if row["compile"] and seconds_left < 240:
        return f"budget: {seconds_left / 60:.1f} min left, a compilation takes minutes"
    if seconds_left < (2 if tiny else 20):
        return "budget spent"
    return None


def markdown(result):
    what = f"{result['gpu']}" + (" (--tiny: quick models, batch 2, one timed step; not a GPU result)"
                                 if result["tiny"] else "")
    lines = [f"# GPU check: {what}", "",
             f"torch {result['torch']}, CUDA {result['cuda']}; started {result['started']}; budget "
             f"{result['budget_minutes']:g} min, used {result['seconds'] / 60:.1f} min. Written by "
             "`benchmarks/gpu_check.py` (`make gpu-check`).", "",
             f"CUDA tests (`pytest -k cuda`): {result['tests'].get('summary')}", "",
             *([f"```\n{result['tests']['failures'][-2000:]}\n```", ""] if result["tests"].get("failures") else []),
             "## Training throughput (random 5-bit data of the shape; median step after the first ones)", "",
             "| data | model | preset | batch | precision | compiled | workers | images/s | first steps s | "
             "peak GiB |", "| --- | --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in result["throughput"]:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['preset']} | {r['batch_size']} | {r['precision']} | "
                     f"{'yes' if r['compile'] else 'no'} | {r['workers']} | {r['images_per_s']:,.0f} | "
                     f"{r['first_steps_s']:.1f} ({r['warmup_steps']}) | {peak} |")
    if result["skipped"]:
        lines += ["", "Not measured:"]
        lines += [f"- {r['dataset']} {r['model']} {r['precision']} {'compiled' if r['compile'] else 'eager'} "
                  f"workers {r['workers']}: {r['reason']}" for r in result["skipped"]]
    lines += ["", f"## Sampling {result['sampling'][0]['n'] if result['sampling'] else SAMPLES} images at "
              f"T = {SAMPLE_TEMPERATURE} (untrained weights; median of 3 after a warm-up)", "",
              "| data | model | seconds | images/s |", "| --- | --- | ---: | ---: |"]
    lines += [f"| {s['dataset']} | {s['model']} | {s['seconds']:.3f} | {s['images_per_s']:,.0f} |"
              for s in result["sampling"]]
    c = result["classroom"] or {}
    lines += ["", "## The classroom F-NSF for the minutes left", "", f"`funnelkit {c.get('command', '')}`", ""]
    if c.get("skipped"):
        lines.append(f"Not run: {c['skipped']}.")
    else:
        where = (f"checkpoint at step {c['step']:,} of {c['steps']:,} ({(c.get('train_seconds') or 0) / 60:.1f} min "
                 "of training in the run, all calls)" if c.get("step") is not None else "no checkpoint yet")
        lines.append(f"Ran {c['wall_s'] / 60:.1f} min (budget {c['budget_s'] / 60:.1f}), exit {c['returncode']}"
                     f"{', stopped at the budget' if c['stopped_at_budget'] else ''}; {where}.")
        if c.get("finished"):
            lines.append(f"Finished: held-out bits/dim {c['bpd']:.3f} +- {c['bpd_2se']:.3f}; "
                         f"{c['seconds_per_step'] * 1000:.1f} ms a step (the CPU's classroom curve: "
                         "benchmarks/results/classroom_curve.md).")
    return "\n".join(lines) + "\n"


def save(result, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{NAME}.md").write_text(markdown(result))
    return out / f"{NAME}.md"


def main(argv=None):
    try:
        args = parse_args(argv)
        out = Path(args.out) if args.out else (Path(tempfile.mkdtemp(prefix="gpu-check-")) if args.tiny else RESULTS)
        run_folder = Path(args.runs or REPO / "runs" / "gpu-check") / ("tiny" if args.tiny else "images-mnist-f-nsf-"
                                                                                                  "classroom")
        if args.dry_run:
            print(describe_plan(args, out, run_folder))
            return 0
        check_cuda(args)
    except Refused as refusal:
        print(f"gpu_check: {refusal}", file=sys.stderr)
        return 2
    result = run_check(args, out, run_folder)
    path = save(result, out)
    print(path.read_text())
    print(f"wrote {path} and {path.with_suffix('.json')}")
    tests_failed = (result["tests"] or {}).get("returncode") not in (None, 0)
    return 1 if tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
