"""Quality against CPU minutes of the classroom runs (issue 11): held-out bits/dim and the kit's digit
FID of samples at T = 0.5 and 0.75, at each stage of a staged training.

The classroom F-NSF and NSF are trained in stages with ``funnelkit train images ... --steps N
--extend`` (each stage a fresh cosine schedule annealed to 0, so every stage ends as a finished run
that could be shipped); a copy of the run folder is kept after each stage. This script reads those
copies: the steps, the Trainer's training seconds (its own clock, training steps only) and the test
bits/dim from each ``metrics.json``, and samples ``--n`` digits per temperature (seeded) for the
digit FID (:func:`funnelkit.digits.digit_metrics`, reference the 1,000 held-out digits), with the
paper's base-only tempering and, for the funnels, with the decoders' noise tempered too
(``temper="all"``) and the decoders' means (``temper="mean"``).

Results already computed for a folder and step count are kept (benchmarks/results/
classroom_curve.json), so the script can be run again as stages finish.
Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_classroom_curve.py FOLDER [FOLDER ...]``.
"""

import argparse
import json
from pathlib import Path

import torch

import funnelkit as fk
from bench_common import RESULTS, save_results  # this folder is on sys.path when run as a script
from funnelkit.data.dequantize import to_uint8_images
from funnelkit.runs import read_metrics

TEMPERATURES = (0.5, 0.75)
SEED = 0
OUT = RESULTS / "classroom_curve.json"


@torch.no_grad()
def samples(model, n, bits, temperature, temper, batch_size=250):
    """``n`` seeded samples as uint8 digits (torch's global random state restored afterwards)."""
    model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        chunks = [model.sample(min(batch_size, n - i), temperature=temperature, temper=temper)
                  for i in range(0, n, batch_size)]
    return to_uint8_images(torch.cat(chunks), bits)


def evaluate(folder, n):
    from funnelkit.digits import digit_metrics

    metrics = read_metrics(folder)
    model = fk.load(folder)
    name, bits = metrics["model"]["name"], metrics["model"]["bits"]
    tempers = ("base", "all", "mean") if name == "f-nsf" else ("base",)
    fid = {}
    for temper in tempers:
        for t in TEMPERATURES:
            fid[f"{temper}@{t:g}"] = digit_metrics(samples(model, n, bits, t, temper), metrics=("fid",))["fid"]
    training = metrics["training"]
    return {"folder": str(folder), "model": name, "bits": bits, "steps": training["steps"],
            "batch_size": training["config"]["batch_size"], "train_minutes": training["train_seconds"] / 60,
            "parameters": metrics["parameters"], "latent_dim": metrics["latent_dim"],
            "bpd": metrics["evaluation"]["bpd"], "bpd_2se": metrics["evaluation"]["bpd_2se"], "n_samples": n,
            "fid": fid}


def markdown(rows):
    lines = ["# Classroom runs: quality against training minutes (MNIST 5-bit)", "",
             "Each row is a finished stage of a staged training (`funnelkit train images --preset classroom "
             "--steps N --extend`, a fresh cosine schedule per stage), one torch thread, two runs side by side on "
             "this 2-core machine. Minutes: the Trainer's clock of the training steps (wall time on a shared machine: other jobs slowed the steps up to two times). Bits/dim on the 1,000 "
             "held-out digits; digit FID (the kit's digit metric, not Inception) of "
             f"{rows[0]['n_samples'] if rows else '-'} seeded samples against those digits. Tempering: base = the "
             "paper's (only the base noise scaled); all = the funnels' decoder noise scaled too; mean = the "
             "decoders' noise-free means. Real digits score about 10 on this scale.", "",
             "| model | steps x batch | training min | held-out bits/dim | FID T=0.5 | FID T=0.75 | "
             "F-NSF FID all T=0.5 / 0.75 | F-NSF FID mean T=0.5 / 0.75 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: (r["model"], r["steps"])):
        f = r["fid"]
        extra = [f"{f['all@0.5']:.0f} / {f['all@0.75']:.0f}", f"{f['mean@0.5']:.0f} / {f['mean@0.75']:.0f}"] \
            if "all@0.5" in f else ["-", "-"]
        lines.append(f"| {r['model']} | {r['steps']:,} x {r['batch_size']} | {r['train_minutes']:.1f} | "
                     f"{r['bpd']:.3f} +- {r['bpd_2se']:.3f} | {f['base@0.5']:.0f} | {f['base@0.75']:.0f} | "
                     + " | ".join(extra) + " |")
    lines += ["", *targets(rows), "",
              "Run: `OMP_NUM_THREADS=1 python benchmarks/bench_classroom_curve.py FOLDER ...` on the stage copies.", ""]
    return "\n".join(lines)


def targets(rows):
    """Issue 11's targets, computed from the rows: F-NSF FID <= 100 at T = 0.5 or 0.75; F-NSF nearer than
    NSF at equal steps and T (base tempering); F-NSF bits/dim within 0.15 of NSF's at equal steps."""
    fnsf = sorted((r for r in rows if r["model"] == "f-nsf"), key=lambda r: r["steps"])
    nsf = {r["steps"]: r for r in rows if r["model"] == "nsf"}
    if not fnsf:
        return []
    best = min(min(r["fid"]["base@0.5"], r["fid"]["base@0.75"]) for r in fnsf)
    lines = ["## Issue 11's targets", "",
             f"- F-NSF digit FID at T = 0.5 or 0.75 at most 100: best here {best:.0f} "
             f"({'met' if best <= 100 else 'not met'})."]
    if len(fnsf) >= 2:
        a, b = fnsf[-2], fnsf[-1]
        rate = b["fid"]["base@0.75"] / a["fid"]["base@0.75"]
        lines.append(f"  The last stage took T = 0.75 from {a['fid']['base@0.75']:.0f} to {b['fid']['base@0.75']:.0f} "
                     f"({rate:.2f} times) while the training minutes went from {a['train_minutes']:.0f} to "
                     f"{b['train_minutes']:.0f}; at that rate per such step of minutes, 100 is still several times "
                     "the minutes away for this model size (a rough extrapolation of four points).")
    for r in fnsf:
        other = nsf.get(r["steps"])
        if other:
            lines.append(f"- At {r['steps']:,} steps (base tempering): F-NSF FID {r['fid']['base@0.5']:.0f} / "
                         f"{r['fid']['base@0.75']:.0f} against NSF {other['fid']['base@0.5']:.0f} / "
                         f"{other['fid']['base@0.75']:.0f} at T = 0.5 / 0.75; bits/dim F-NSF {r['bpd']:.3f} against "
                         f"NSF {other['bpd']:.3f}, {r['bpd'] - other['bpd']:+.3f} (target: within 0.15).")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--n", type=int, default=1000, help="samples per temperature and temper mode")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = json.loads(OUT.read_text())["rows"] if OUT.is_file() else []
    for folder in args.folders:
        metrics = read_metrics(folder)
        if not metrics or not metrics.get("finished"):
            print(f"skipped {folder}: not a finished run")
            continue
        if any(r["folder"] == str(folder) and r["steps"] == metrics["training"]["steps"] for r in rows):
            continue
        rows.append(evaluate(folder, args.n))
        print(json.dumps(rows[-1]), flush=True)
        save_results("classroom_curve", {"benchmark": "classroom_curve", "rows": rows}, markdown(rows))
    if rows:
        save_results("classroom_curve", {"benchmark": "classroom_curve", "rows": rows}, markdown(rows))


if __name__ == "__main__":
    main()
