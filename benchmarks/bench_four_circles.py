"""Four-circles benchmarks on this machine, measured side by side in one run.

1. Time per training step of F-NSF over NSF, paper preset, batch 512 (the paper reports the
   funnel costs up to 20% more). Steps of the two models are interleaved in blocks, so both
   see the same machine load; we report medians and their ratio.
2. The quick preset: wall time of training and the test log-likelihood of F-NSF and NSF beside
   the true density's (about -2.870 nats). Target: F-NSF within 0.08 nats in at most 60 s.
3. The dashboard: seconds for the first full render of app.py (Streamlit's AppTest runs the
   script as the server does, without a browser), and training steps per second in the
   time-boxed ticks of a live run (funnelkit.live, as app.py drives it).

Writes benchmarks/results/four_circles.json and .md. Run: `make bench` (about 5 minutes).
"""

import json
import platform
import statistics
import time
from pathlib import Path

import torch

import funnelkit as fk
from funnelkit.experiments import four_circles

RESULTS = Path(__file__).parent / "results"


def step_times(batch_size=512, blocks=12, steps_per_block=5):
    trainers = {}
    for name in ("f-nsf", "nsf"):
        fk.seed_everything(0)
        model = fk.models.plane_model(name, preset="paper")
        trainers[name] = fk.Trainer(model, four_circles.sample_batch,
                                    fk.TrainConfig(steps=10_000, batch_size=batch_size, schedule="constant"))
        for _ in range(5):  # warm-up
            trainers[name].train_step()
    times = {name: [] for name in trainers}
    for block in range(blocks):
        order = list(trainers) if block % 2 == 0 else list(reversed(list(trainers)))
        for name in order:
            for _ in range(steps_per_block):
                start = time.perf_counter()
                trainers[name].train_step()
                times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "batch_size": batch_size,
        "steps_each": blocks * steps_per_block,
        "median_ms": {name: 1000 * m for name, m in median.items()},
        "ratio_f_nsf_over_nsf": median["f-nsf"] / median["nsf"],
        "parameters": {name: t.model.num_parameters() for name, t in trainers.items()},
    }


def quick_preset():
    rows = {}
    for name in ("f-nsf", "nsf"):
        _, metrics = four_circles.train(name, "quick", progress=False)
        rows[name] = {k: metrics[k] for k in ("train_seconds", "steps", "model_ll", "model_ll_2se", "true_ll", "gap", "gap_2se")}
    return rows


def dashboard():
    from streamlit.testing.v1 import AppTest

    from funnelkit.live import LiveRun

    start = time.perf_counter()
    app = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=120).run()
    first_render = time.perf_counter() - start
    assert not app.exception, app.exception
    run = LiveRun.create(pretrained=False)
    ticks, steps, spent = 0, 0, 0.0
    while spent < 10.0:
        t0 = time.perf_counter()
        steps += run.tick(0.25)
        spent += time.perf_counter() - t0
        ticks += 1
    return {"seconds_to_first_render": first_render, "ticks": ticks, "steps": steps, "steps_per_second": steps / spent}


def main():
    torch.set_num_threads(torch.get_num_threads())
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "step_time_paper_preset": step_times(),
        "quick_preset": quick_preset(),
        "dashboard": dashboard(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "four_circles.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "four_circles.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r):
    s = r["step_time_paper_preset"]
    lines = [
        "# Four-circles benchmarks", "", f"Machine: {r['machine']}. Command: `make bench`.", "",
        f"## Training step, paper preset, batch {s['batch_size']} ({s['steps_each']} interleaved steps each)", "",
        "| model | parameters | median ms/step |", "| --- | --- | --- |",
    ]
    lines += [f"| {n.upper()} | {s['parameters'][n]:,} | {s['median_ms'][n]:.1f} |" for n in s["median_ms"]]
    lines += ["", f"F-NSF / NSF: **{s['ratio_f_nsf_over_nsf']:.2f}** (target: at most 1.2)", "",
              "## Quick preset (train, then 100,000 fresh test points)", "",
              "| model | steps | train s | test LL (nats) | gap to the truth |", "| --- | --- | --- | --- | --- |"]
    for n, q in r["quick_preset"].items():
        lines.append(f"| {n.upper()} | {q['steps']} | {q['train_seconds']:.1f} | {q['model_ll']:.3f} +- {q['model_ll_2se']:.3f} "
                     f"| {q['gap']:.3f} +- {q['gap_2se']:.3f} |")
    lines.append(f"| true density | | | {q['true_ll']:.3f} | 0 |")
    lines += ["", "Target: F-NSF within 0.08 nats of the truth (aim 0.05) in at most 60 s of training."]
    d = r["dashboard"]
    if d:
        lines += ["", "## Dashboard live training", "",
                  f"Seconds to the first render of app.py (AppTest, no browser): {d['seconds_to_first_render']:.1f}; "
                  f"{d['steps_per_second']:.1f} training steps per second in {d['ticks']} ticks of 0.25 s."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
