"""``genjax``: list the recipes, train one, sample from a run, run the benchmarks.

    genjax list
    genjax train [RECIPE] [--data NAME|PATH] [--steps N] [--batch-size B] [--seed S]
                 [--out DIR] [--resume] [--base RUN_DIR] [--devices N] [--distributed]
    genjax sample RUN_DIR [--n N] [--seed S] [--sampler NAME] [--steps K] [--devices N]
                  [--distributed]
    genjax bench [SUITE ...] [--quick] [--out DIR]
    genjax compare [--data ring|digits] [--seeds N] [--budget SECONDS] [--out DIR]
                   [--samples N]

``train`` and ``sample`` run data-parallel over every visible device (``--devices N``: the
first N); ``--distributed`` (or ``GENJAX_DISTRIBUTED=1``) first calls
``jax.distributed.initialize()`` so that one command started on every host trains over
all of them (see :mod:`genjax.sharding`).

Bad arguments print one line that says what is wrong and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A mistake in the command line: reported in one line, exit status 2."""


def _positive(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse


def _positive_seconds(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number > 0, got {text}")
        return value

    return parse


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line instead of usage text plus the error."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_device_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--devices", type=_positive("--devices"),
                     help="use the first N devices (default: all visible devices)")
    sub.add_argument("--distributed", action="store_true",
                     help="several hosts: call jax.distributed.initialize() first (the "
                          "coordinator from the cluster or JAX_COORDINATOR_ADDRESS, "
                          "JAX_NUM_PROCESSES, JAX_PROCESS_ID); also GENJAX_DISTRIBUTED=1")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="genjax",
        description=(
            "Generative models in JAX, each held against a NumPy oracle. "
            "Start with `genjax train`: it trains the default recipe on built-in data in a "
            "few minutes and writes pictures and quality figures."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("list", help="list every recipe, one line each")

    train = sub.add_parser(
        "train",
        help="train a recipe (default: the default recipe) and write pictures and figures",
        description=(
            "Train RECIPE on its built-in data (or --data). Writes OUT/config.json, "
            "OUT/metrics.jsonl, OUT/checkpoint/, OUT/samples.png and OUT/summary.json. "
            "Ctrl-C finishes the current step and saves it (a second Ctrl-C waits for "
            "that save); run the same command with --resume to continue, or to rewrite "
            "the report of a finished run. A damaged newest checkpoint is named and the "
            "newest intact one is used."
        ),
    )
    train.add_argument("recipe", nargs="?", help="recipe name (see `genjax list`)")
    train.add_argument("--data", help="built-in data set name or a path (.npy, MNIST IDX, .txt)")
    train.add_argument("--steps", type=_positive("--steps"), help="training steps (>= 1)")
    train.add_argument("--batch-size", type=_positive("--batch-size"), help="examples per step")
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument("--out", type=Path, help="run directory (default runs/RECIPE)")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--base", type=Path, help="fine-tuning recipes (lora-digits): start from "
                       "the model of this run directory instead of training a base first")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_device_options(train)

    sample = sub.add_parser(
        "sample",
        help="draw samples from a trained run",
        description="Draw samples from the run in RUN_DIR and write RUN_DIR/sample-*.png.",
    )
    sample.add_argument("run_dir", type=Path, help="directory written by `genjax train`")
    sample.add_argument("--n", type=_positive("--n"), default=64, help="number of samples")
    sample.add_argument("--seed", type=int, default=1, help="sampling seed (default 1)")
    sample.add_argument("--sampler", help="sampler, for recipes that offer several")
    sample.add_argument("--steps", type=_positive("--steps"), help="sampler steps")
    sample.add_argument("--prompt", help="text prompt, for text-conditioned recipes")
    sample.add_argument("--temperature", type=float, help="sampling temperature (>= 0)")
    sample.add_argument("--top-k", type=int, help="keep the k most probable tokens (>= 1)")
    sample.add_argument("--top-p", type=float, help="nucleus mass, in (0, 1]")
    sample.add_argument("--guidance", type=float, help="classifier-free guidance scale")
    sample.add_argument("--negative-prompt", help="text to guide away from (replaces the empty "
                        "prompt in classifier-free guidance), for text-conditioned recipes")
    _add_device_options(sample)

    compare = sub.add_parser(
        "compare", help="train every family on the same data and budget; measure the "
        "survey's trade-off table",
        description="Train one recipe of every family on --data for --budget seconds each, "
        "over --seeds seeds; write OUT/compare.md, compare.json, sheet.png, quality_vs_cost.png.",
    )
    compare.add_argument("--data", choices=("ring", "digits"), default="ring",
                         help="built-in data (default ring)")
    compare.add_argument("--seeds", type=_positive("--seeds"), help="seeds per family (default 3)")
    compare.add_argument("--budget", type=_positive_seconds("--budget"),
                         help="training seconds per family and seed (default 15)")
    compare.add_argument("--out", type=Path, help="run directory (default runs/compare-DATA)")
    compare.add_argument("--samples", type=_positive("--samples"),
                         help="samples per sampler and seed, the batch of the speed figure "
                         "(default 1000)")

    bench = sub.add_parser(
        "bench", help="run the benchmark suites (genjax/bench; results in benchmarks/results)"
    )
    bench.add_argument("suites", nargs="*", help="suite names (default: all)")
    bench.add_argument("--quick", action="store_true", help="smaller workloads")
    bench.add_argument("--out", type=Path, help="directory for the JSON results (default: the "
                       "checkout's benchmarks/results, else ./benchmarks/results)")
    return parser


#: The share of a user's file held out as the test split (its last 10%, contiguous, so that a
#: text file is not cut into interleaved pieces).
HELD_OUT_FRACTION = 0.1


def _load(recipe, name: str, split: str, seed: int) -> Any:
    """The recipe's data for ``split``; a user's file is split 90/10 here (``load`` returns
    the whole file, because it cannot know which part a caller wants to hold out)."""
    import jax

    from genjax import data as data_lib

    loaded = (
        recipe.load_data(name, split, seed)
        if recipe.load_data is not None
        else data_lib.load(name, split=split, seed=seed)
    )
    if not os.path.exists(str(name)):
        return loaded
    n = len(jax.tree.leaves(loaded)[0])
    cut = n - max(1, int(round(HELD_OUT_FRACTION * n)))
    if cut < 1:
        raise UsageError(f"--data {name}: {n} example(s) is too few to hold out a test split")
    part = slice(0, cut) if split == "train" else slice(cut, n)
    return jax.tree.map(lambda a: a[part], loaded)


def cmd_list() -> int:
    from genjax import registry

    table = registry.recipes()
    default = registry.default_recipe_name()
    width = max(len(n) for n in table)
    for name, recipe in table.items():
        mark = " (default)" if name == default else ""
        print(f"{name:<{width}}  {recipe.family:<10} {recipe.summary}{mark}")
    return 0


def _with_base(recipe, base: str | Path | None):
    """The recipe as ``--base RUN_DIR`` asks (a fine-tuning recipe's ``with_base``)."""
    if base is None:
        return recipe
    if recipe.with_base is None:
        raise UsageError(f"--base: recipe {recipe.name!r} does not start from a base run")
    return recipe.with_base(Path(base))


def cmd_train(args: argparse.Namespace) -> int:
    import jax

    from genjax import registry, train

    name = args.recipe or registry.default_recipe_name()
    recipe = _with_base(registry.get(name), args.base)
    data_name = args.data or recipe.data
    out_dir = args.out or Path("runs") / name
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir}: is a file, not a directory; name a directory "
                         "for the run")
    if args.resume and not (out_dir / "config.json").exists():
        raise UsageError(f"--resume: {out_dir} holds no run to resume")
    train_data = _load(recipe, data_name, "train", args.seed)
    test_data = _load(recipe, data_name, "test", args.seed)
    print(f"genjax train {name}: data {data_name!r}, output in {out_dir}", flush=True)
    try:
        result = train.fit(
            recipe,
            train_data,
            key=jax.random.key(args.seed),
            out_dir=out_dir,
            steps=args.steps,
            batch_size=args.batch_size,
            resume=args.resume,
            test_data=test_data,
            progress=not args.no_progress,
            config={"data": data_name, "seed": args.seed,
                    **({"base": str(args.base)} if args.base is not None else {})},
            devices=args.devices,
            data_name=data_name,
        )
    except train.TrainingInterrupted as stop:
        # Says what was saved, and only what was (genjax.checkpoint).
        data_flag = f" --data {args.data}" if args.data else ""
        data_flag += f" --base {args.base}" if args.base is not None else ""
        again = f"genjax train {name}{data_flag} --out {out_dir} --resume"
        if stop.saved_step is None:
            then = "Run the command again to start over."
        elif stop.phase == "report":
            then = f"Write the report with: {again}"
        else:
            then = f"Continue with: {again}"
        print(f"\n{stop.message}. {then}", file=sys.stderr)
        return EXIT_INTERRUPTED
    figures = {k: v for k, v in result.summary.items() if k != "final_metrics"}
    print(json.dumps(figures, indent=2, default=str))
    print(f"wrote {out_dir}/summary.json and the pictures beside it")
    return 0


def _write_samples(samples: Any, data: Any, stem: Path) -> Path:
    """Draws samples by their kind: 2-D points, images, or text; anything else as .npy."""
    import numpy as np

    from genjax import plotting

    if isinstance(samples, str) or (
        isinstance(samples, (list, tuple)) and samples and isinstance(samples[0], str)
    ):
        texts = [samples] if isinstance(samples, str) else list(samples)
        path = stem.with_name(stem.name + ".txt")
        plotting.text_dump(texts, path)
        return path
    arr = np.asarray(samples)
    if arr.ndim == 2 and arr.shape[1] == 2:
        path = stem.with_name(stem.name + ".png")
        reference = np.asarray(data[0] if isinstance(data, (tuple, list)) else data)
        if reference.ndim != 2 or reference.shape[1] != 2:
            reference = arr[:0]
        plotting.scatter_2d(arr, reference, path, title=stem.name)
        return path
    if arr.ndim == 4:
        path = stem.with_name(stem.name + ".png")
        plotting.image_grid(arr, path, title=stem.name)
        return path
    path = stem.with_name(stem.name + ".npy")
    np.save(path, arr)
    return path


def cmd_sample(args: argparse.Namespace) -> int:
    import jax

    from genjax import registry, sharding, train

    config_path = args.run_dir / "config.json"
    if not config_path.exists():
        raise UsageError(f"{args.run_dir} is not a run directory (no config.json)")
    config = json.loads(config_path.read_text("utf-8"))
    recipe = _with_base(registry.get(config["recipe"]), config.get("base"))
    seed = config.get("seed", 0)
    train_data = _load(recipe, config.get("data", recipe.data), "train", seed)
    mesh = sharding.make_mesh(args.devices)
    params = train.load_params(recipe, args.run_dir, jax.random.key(seed), train_data, mesh=mesh)
    options = {}
    given = (
        ("sampler", args.sampler),
        ("steps", args.steps),
        ("prompt", args.prompt),
        ("temperature", args.temperature),
        ("top_k", args.top_k),
        ("top_p", args.top_p),
        ("guidance", args.guidance),
        ("negative_prompt", args.negative_prompt),
    )
    for option, value in given:
        if value is None:
            continue
        if option not in recipe.sample_options:
            allowed = ", ".join(f"--{o.replace('_', '-')}" for o in recipe.sample_options)
            raise UsageError(
                f"--{option.replace('_', '-')}: recipe {recipe.name!r} takes no such option "
                f"(its sampling options: {allowed or 'none'})"
            )
        options[option] = value
    # Laid over the devices: --n is rounded up to a multiple of the device count for the
    # draw, and the first --n samples are kept.
    samples = sharding.sample(recipe.sample, jax.random.key(args.seed), params, args.n,
                              mesh=mesh, **options)
    if not sharding.is_main_process():
        return 0
    # A prompt may hold spaces and punctuation: the file name keeps letters and digits.
    tag = re.sub(r"[^A-Za-z0-9.-]+", "_", "-".join(f"{k}-{v}" for k, v in options.items()))
    stem = args.run_dir / (f"sample-{tag}" if tag else "sample")
    path = _write_samples(samples, train_data, stem)
    print(f"wrote {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from genjax.compare import runner

    out = args.out or Path("runs") / f"compare-{args.data}"
    runner.compare(args.data, seeds=args.seeds or runner.DEFAULT_SEEDS,
                   budget=args.budget or runner.DEFAULT_BUDGET, out_dir=out,
                   n=args.samples or runner.NUM_SAMPLES)
    print(f"wrote {out}/compare.md, compare.json, sheet.png, quality_vs_cost.png")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from genjax.bench.__main__ import main as bench_main

    out = ["--out", str(args.out)] if args.out is not None else []
    return bench_main([*args.suites, *(["--quick"] if args.quick else []), *out])


def distributed_requested(args: argparse.Namespace) -> bool:
    """``--distributed``, or ``GENJAX_DISTRIBUTED`` set to 1/true/yes in the environment."""
    env = os.environ.get("GENJAX_DISTRIBUTED", "").strip().lower() in ("1", "true", "yes")
    return bool(getattr(args, "distributed", False)) or (
        env and args.command in ("train", "sample"))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if distributed_requested(args):
        from genjax import sharding

        sharding.initialize_distributed()  # before anything asks JAX for its devices
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "train":
            return cmd_train(args)
        if args.command == "sample":
            return cmd_sample(args)
        if args.command == "compare":
            return cmd_compare(args)
        return cmd_bench(args)
    except (UsageError, ValueError, OSError) as err:
        # OSError: a file that cannot be read or written (missing, a directory where a file
        # is expected, no permission, disk full) -- the user's to fix, said in one line.
        if os.environ.get("GENJAX_DEBUG"):
            raise  # the full traceback, for debugging genjax itself
        print(f"genjax {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Ctrl-C outside training (loading data, importing JAX): nothing was written.
        print(f"\ngenjax {args.command}: interrupted before anything was saved",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
