"""What the benchmark scripts share: side-by-side step timing (the steps of the models compared
are interleaved in blocks, the order reversed every other block, so all see the same machine
load; medians resist the shared machine's noise) and writing results/NAME.json and .md.
Imported by the scripts in this folder."""

import json
import statistics
import time
from pathlib import Path

import funnelkit as fk


def timing_trainer(model, sample_batch, batch_size, lr=1e-4):
    """A Trainer for timing steps: a constant learning rate, more steps than any benchmark takes."""
    return fk.Trainer(model, sample_batch, fk.TrainConfig(steps=10_000, batch_size=batch_size, schedule="constant",
                                                          lr=lr))


def median_step_times(trainers, blocks=6, steps_per_block=3, warmup=2):
    """Median seconds per ``train_step`` of each of ``trainers`` (a dict), after ``warmup`` steps each;
    ``blocks`` of ``steps_per_block`` steps per trainer, the order reversed every other block."""
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.train_step()
    times = {name: [] for name in trainers}
    for block in range(blocks):
        order = list(trainers) if block % 2 == 0 else list(reversed(list(trainers)))
        for name in order:
            for _ in range(steps_per_block):
                start = time.perf_counter()
                trainers[name].train_step()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


RESULTS = Path(__file__).parent / "results"


def save_results(name, result, markdown):
    """Write ``results/<name>.json`` and ``results/<name>.md`` and print the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)
