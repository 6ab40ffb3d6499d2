"""Four-circles benchmarks on this machine, measured side by side in one run.

1. Time per training step of F-NSF over NSF, paper preset, batch 512 (the paper reports the
   funnel costs up to 20% more). Steps of the two models are interleaved in blocks, so both
   see the same machine load; we report medians and their ratio.
2. The quick preset: wall time of training and the test log-likelihood of F-NSF and NSF beside
   the true density's (about -2.870 nats). Target: F-NSF within 0.08 nats in at most 60 s.
3. The dashboard: seconds to the first render in a real browser (a Streamlit server started
   here, Debian's chromium driven by Playwright: from the start of the server, and from opening
   the page, to the iteration count and the loss chart on screen), the iterations per second a
   viewer sees while it plays, and the training steps per second inside the time-boxed ticks of
   a live run (funnelkit.app.live, as app.py drives it, without drawing).

Writes benchmarks/results/four_circles.json and .md. Run: `make bench` (about 5 minutes).
"""

import platform
import re
import time

import torch

import funnelkit as fk
from funnelkit.experiments import four_circles
from bench_common import dashboard_in_chromium, median_step_times, save_results, timing_trainer  # this folder is on sys.path when run as a script


def step_times(batch_size=512, blocks=12, steps_per_block=5, threads=None):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        return _step_times(batch_size, blocks, steps_per_block) | {"threads": torch.get_num_threads()}
    finally:
        torch.set_num_threads(previous)


def _step_times(batch_size, blocks, steps_per_block):
    trainers = {}
    for name in ("f-nsf", "nsf"):
        fk.seed_everything(0)
        trainers[name] = timing_trainer(fk.models.plane_model(name, preset="paper"), four_circles.sample_batch,
                                        batch_size, lr=1e-3)
    median = median_step_times(trainers, blocks, steps_per_block, warmup=5)
    return {
        "batch_size": batch_size,
        "steps_each": blocks * steps_per_block,
        "median_ms": {name: 1000 * m for name, m in median.items()},
        "ratio_f_nsf_over_nsf": median["f-nsf"] / median["nsf"],
        "parameters": {name: t.model.num_parameters() for name, t in trainers.items()},
    }


def quick_preset():
    """As `funnelkit train four-circles --preset quick` runs it: one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = {}
    try:
        for name in ("f-nsf", "nsf"):
            _, metrics = four_circles.train(name, "quick", progress=False)
            rows[name] = {k: metrics[k] for k in ("train_seconds", "steps", "model_ll", "model_ll_2se", "true_ll", "gap", "gap_2se")}
    finally:
        torch.set_num_threads(threads)
    return rows


def dashboard_in_browser(play_seconds=10.0):
    with dashboard_in_chromium() as (url, browser, server_ready):
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        opened = time.perf_counter()
        page.goto(url)
        iteration = page.locator("[data-testid='stMetric']").filter(has_text="iteration").locator("[data-testid='stMetricValue']")
        iteration.wait_for(timeout=180_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=180_000)
        first_render = time.perf_counter() - opened
        before = int(re.sub(r"[^0-9]", "", iteration.inner_text()))
        page.get_by_role("button", name="Play").click()
        page.wait_for_timeout(play_seconds * 1000)
        page.get_by_role("button", name="Pause").click()
        page.wait_for_timeout(2000)
        after = int(re.sub(r"[^0-9]", "", iteration.inner_text()))
    return {"server_ready_s": server_ready, "first_render_s": first_render,
            "from_server_start_s": server_ready + first_render,
            "iterations_per_second_seen": (after - before) / play_seconds}


def dashboard():
    from funnelkit.app.live import LiveRun

    torch.set_num_threads(1)  # as app.py runs (FUNNELKIT_APP_THREADS, default 1)
    run = LiveRun.create(pretrained=False)
    ticks, steps, spent = 0, 0, 0.0
    while spent < 10.0:
        t0 = time.perf_counter()
        steps += run.tick(0.25)
        spent += time.perf_counter() - t0
        ticks += 1
    return {"ticks": ticks, "steps": steps, "steps_per_second": steps / spent} | dashboard_in_browser()


def main():
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads (1 for the quick preset), torch {torch.__version__}",
        "step_time_paper_preset": step_times(),
        "step_time_paper_preset_one_thread": step_times(threads=1),
        "quick_preset": quick_preset(),
        "dashboard": dashboard(),
    }
    save_results("four_circles", result, markdown(result))


def markdown(r):
    s, s1 = r["step_time_paper_preset"], r["step_time_paper_preset_one_thread"]
    lines = [
        "# Four-circles benchmarks", "", f"Machine: {r['machine']}. Command: `make bench`.", "",
        f"## Training step, paper preset, batch {s['batch_size']} ({s['steps_each']} interleaved steps each)", "",
        f"| model | parameters | median ms/step, {s['threads']} threads | median ms/step, 1 thread |", "| --- | --- | --- | --- |",
    ]
    lines += [f"| {n.upper()} | {s['parameters'][n]:,} | {s['median_ms'][n]:.1f} | {s1['median_ms'][n]:.1f} |" for n in s["median_ms"]]
    lines += ["", f"F-NSF / NSF: **{s['ratio_f_nsf_over_nsf']:.2f}** with {s['threads']} threads, "
              f"**{s1['ratio_f_nsf_over_nsf']:.2f}** with 1 thread (target: at most 1.2)", "",
              "## Quick preset (train, then 100,000 fresh test points)", "",
              "| model | steps | train s | test LL (nats) | gap to the truth |", "| --- | --- | --- | --- | --- |"]
    for n, q in r["quick_preset"].items():
        lines.append(f"| {n.upper()} | {q['steps']} | {q['train_seconds']:.1f} | {q['model_ll']:.3f} +- {q['model_ll_2se']:.3f} "
                     f"| {q['gap']:.3f} +- {q['gap_2se']:.3f} |")
    lines.append(f"| true density | | | {q['true_ll']:.3f} | 0 |")
    lines += ["", "Target: F-NSF within 0.08 nats of the truth (aim 0.05) in at most 60 s of training."]
    d = r["dashboard"]
    if d:
        lines += ["", "## Dashboard", "",
                  f"- First render in chromium: {d['first_render_s']:.1f} s from opening the page "
                  f"({d['from_server_start_s']:.1f} s from starting the server, which answered after {d['server_ready_s']:.1f} s).",
                  f"- While playing: {d['iterations_per_second_seen']:.1f} iterations per second seen in the browser "
                  "(training ticks of 0.3 s plus redrawing three charts).",
                  f"- Training alone in the live ticks: {d['steps_per_second']:.1f} steps per second ({d['ticks']} ticks of 0.25 s)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
