"""The command line: ``funnelkit train|eval|sample|reproduce``."""

import argparse
import sys
from pathlib import Path

EXPERIMENTS = ("four-circles",)


def _parser():
    parser = argparse.ArgumentParser(prog="funnelkit", description="Funnels: exact maximum likelihood with dimensionality reduction.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train a model of an experiment")
    train.add_argument("experiment", help=f"one of: {', '.join(EXPERIMENTS)}")
    train.add_argument("--model", default="f-nsf", help="f-nsf (funnel, 2-D -> 1-D) or nsf (baseline)")
    train.add_argument("--preset", default="quick", help="quick (laptop CPU), paper (the paper's text) or authors-code")
    train.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    train.add_argument("--seed", type=int, help="seed of the run (default 0)")
    train.add_argument("--out", help="run folder (default: runs/EXPERIMENT-MODEL-PRESET); an existing run is resumed")
    train.add_argument("--device", default="auto",
                       help="auto, cpu, cuda or mps; under torchrun each process takes cuda:LOCAL_RANK (or the cpu)")
    train.add_argument("--amp", action="store_true", help="bfloat16 mixed precision for training (CUDA only)")
    train.add_argument("--threads", type=int, default=1,
                       help="CPU threads for torch (default 1: the fastest for these small 2-D models)")

    evaluate = commands.add_parser("eval", help="test log-likelihood of a run, beside the true density's")
    evaluate.add_argument("run", help="a run folder or checkpoint file")
    evaluate.add_argument("--n", type=int, default=100_000, help="number of fresh test points")

    sample = commands.add_parser("sample", help="draw samples from a run at a temperature and save a picture")
    sample.add_argument("run", help="a run folder or checkpoint file")
    sample.add_argument("--temperature", type=float, default=1.0, help="scale of the base noise (paper Fig. 4)")
    sample.add_argument("--n", type=int, default=20_000, help="number of samples")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", required=True, help="the PNG file to write")

    from .experiments import DESCRIPTIONS

    reproduce = commands.add_parser(
        "reproduce", help="reproduce a result of the paper",
        description="Train (or load) what a result needs, evaluate it, and write OUT/RESULT.json and OUT/RESULT.md "
                    "(the paper's numbers beside ours, the data named, stand-ins labelled) and its figures. "
                    "Training runs live in RUNS/RESULT-PRESET/...: an interrupted run resumes, a finished one is loaded.",
        epilog="results:\n" + "\n".join(f"  {name:8} {text}" for name, text in DESCRIPTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reproduce.add_argument("result", help=f"one of: {', '.join(DESCRIPTIONS)}")
    reproduce.add_argument("--preset", default="quick", help="quick (a laptop CPU, minutes) or paper (the paper's data and settings)")
    reproduce.add_argument("--out", default="results", help="folder for figures and tables (default: results)")
    reproduce.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    reproduce.add_argument("--runs", help="folder of the training runs (default: runs)")
    reproduce.add_argument("--root", help="data folder: the unpacked MAF archive (table1) or the image root "
                                          "(torchvision's layout; default: the kit's cache)")
    reproduce.add_argument("--download", action="store_true",
                           help="let torchvision download MNIST, Fashion-MNIST or CIFAR-10 (md5-checked) when missing")
    reproduce.add_argument("--inception-weights", metavar="PATH",
                           help="torch-fidelity's Inception-v3 weights file for table3 (never downloaded)")
    reproduce.add_argument("--steps", type=int, help="training steps of every model (default: the preset's)")
    reproduce.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    return parser


def _train(args):
    import torch

    from . import distributed
    from .experiments import four_circles

    if args.experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {args.experiment!r}; expected one of {', '.join(EXPERIMENTS)}")
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    out = Path(args.out or f"runs/{args.experiment}-{args.model}-{args.preset}")
    with distributed.session(args.device) as device:  # one process, or one rank of torchrun's
        main = distributed.is_main()
        if main and distributed.world_size() > 1:
            print(f"training on {distributed.world_size()} processes ({device.type}); rank 0 writes")
        if main and (out / "checkpoint.pt").exists():
            print(f"resuming the run in {out}")
        _, metrics = four_circles.train(args.model, args.preset, out=out, device=device, progress=main,
                                        steps=args.steps, seed=args.seed, amp=args.amp or None)
    if main:
        print(_format_eval(metrics))
        print(f"wrote {out / 'checkpoint.pt'} and {out / 'metrics.json'} ({metrics['train_seconds']:.1f} s of training)")


def _format_eval(metrics):
    return (
        f"test log-likelihood ({metrics['test_points']:,} points, nats, mean +- 2 s.e.)\n"
        f"  model: {metrics['model_ll']:.4f} +- {metrics['model_ll_2se']:.4f}\n"
        f"  true density: {metrics['true_ll']:.4f} +- {metrics['true_ll_2se']:.4f}\n"
        f"  gap (true - model, paired): {metrics['gap']:.4f} +- {metrics['gap_2se']:.4f}"
    )


def _eval(args):
    from .checkpoints import load
    from .experiments import four_circles

    model = load(args.run)
    metrics = four_circles.evaluate(model, n=args.n)
    print(f"{args.run}: {model.config.get('name')} ({model.config.get('preset')} preset), latent dim {model.latent_dim}")
    print(_format_eval(metrics))


def _sample(args):
    import torch

    from .checkpoints import load
    from .viz.figures import data_figure

    model = load(args.run)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        samples = model.sample(args.n, temperature=args.temperature)
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    data_figure(samples, title=f"{args.n:,} samples, temperature {args.temperature:g}").savefig(out, dpi=110)
    print(f"wrote {out}")


def _accepts(entry, option):
    """Whether a result's entry takes ``option``: a parameter of it, or a field of its settings."""
    import dataclasses
    import inspect

    parameters = inspect.signature(entry).parameters
    if option in parameters:
        return True
    presets = getattr(inspect.getmodule(entry), "PRESETS", None)
    if isinstance(presets, dict) and any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return option in {f.name for f in dataclasses.fields(next(iter(presets.values())))}
    return False


def _reproduce(args):
    from .experiments import RESULTS

    if args.result not in RESULTS:
        raise ValueError(f"unknown result {args.result!r}; expected one of {', '.join(RESULTS)}")
    if args.preset not in ("quick", "paper"):
        raise ValueError(f"unknown preset {args.preset!r}; expected 'quick' or 'paper'")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    entry = RESULTS[args.result]
    options = {"root": args.root, "runs": args.runs, "inception_weights": args.inception_weights,
               "steps": args.steps, "download": args.download or None}
    options = {name: value for name, value in options.items() if value is not None}
    for name in list(options):
        if not _accepts(entry, name):
            if name in ("root", "runs"):  # folders: given to the results that read or write there
                del options[name]
            else:  # options that change what is computed: refused, so nobody believes they took effect
                raise ValueError(f"{args.result} takes no --{name.replace('_', '-')}")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    entry(preset=args.preset, out=args.out, device=args.device, **options)
    out = Path(args.out)
    print((out / f"{args.result}.md").read_text())
    print(f"wrote {out / args.result}.json and {out / args.result}.md")


def main(argv=None):
    from .checkpoints import CheckpointError

    args = _parser().parse_args(argv)
    handlers = {"train": _train, "eval": _eval, "sample": _sample, "reproduce": _reproduce}
    try:
        handlers[args.command](args)
    except (ValueError, FileNotFoundError, CheckpointError) as error:
        print(f"funnelkit {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
