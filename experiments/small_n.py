"""Sample efficiency: ideas screened at a small number of demonstrations, one training seed each, against the same
recipe without them (issue 24's protocol).

    python -m experiments.small_n --ideas coverage neftune5 [--num_demos 50] [--seeds 0] [--num_test 200]
                                  [-- extra CLI arguments for every run]

Each idea is a config of configs/ideas/, by its name, composed after the fixed-step recipe (configs/smollm2.yaml,
then configs/overlays/fixed-steps.yaml: 150 optimizer steps of 8 demonstrations whatever N), fitted and tested on the
first `--num_test` of the 500 interpolate problems (data seed 0) in `runs/small_n/<idea>-n<N>-s<seed>-t<num_test>/`,
skipped once tested; a fit that was cut short resumes from its last checkpoint. A screen is N=50 on 200 problems
with one seed; an idea that gains 10 points or more is promoted to 500 problems, two seeds and other N. A point with
more test problems than a screened one of the same idea, N and seed tests the screen's checkpoint on them (the
first 200 of the 500 are the screen's own) instead of fitting it again. An idea of TEST_TIME tests another idea's
checkpoint with arguments of its own (fitting that idea first if it has no checkpoint). Writes every
record made so far (and those already in the report whose runs are not here) to reports/small_n.json, and a plot of
each idea's accuracy with its interval.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments import runner
from longdiv import runs
from longdiv.stats import wilson_bars

RUNS = runs.root() / "small_n"
OUT = Path("reports/small_n.json")
RECIPE = ["--config", runner.CONFIG, "--config", "configs/overlays/fixed-steps.yaml"]
SCREEN_TEST = 200  # the screens' test problems
TEST_FIELDS = ("n_eval", "correct", "accuracy", "wilson_low", "wilson_high", "parse_failures", "eval_seconds",
               "metrics")
IDEAS = runner.configs("ideas")  # name: its config, whose leading comment says what it changes


def arguments(idea: str) -> list[str]:
    return ["--config", IDEAS[idea]]


# Ideas at test time alone: name: (what it changes, the idea whose checkpoint it tests, its test arguments). They stay
# here, not in configs/: an idea of this kind is a link to another idea's checkpoint, which a config cannot name.
TEST_TIME = {
    "subfix-redo": ("subfix's checkpoint, each line written after a `!` sampled at temperature 0.7 (greedy elsewhere)",
                    "subfix", ["--model.redo_temperature=0.7"]),
}


def folder(idea: str, num_demos: int, seed: int, num_test: int) -> Path:
    return RUNS / f"{idea}-n{num_demos}-s{seed}-t{num_test}"


def retested(fitted: Path, tested: Path) -> dict:
    """The report record of the fit in `fitted` with the figures of its checkpoint's test in `tested`."""
    test = runs.tested(tested)
    fit = runs.tested(fitted) | {key: test[key] for key in TEST_FIELDS}
    return runner.record(fitted, fit) | {"run_dir": str(tested), "fit_dir": str(fitted)}


def screen(idea: str, num_demos: int, seed: int, num_test: int, extra: list[str]) -> dict:
    if idea in TEST_TIME:
        return screen_test_time(idea, num_demos, seed, num_test, extra)
    path = folder(idea, num_demos, seed, num_test)
    screened = folder(idea, num_demos, seed, SCREEN_TEST)
    if num_test > SCREEN_TEST and runs.tested(screened) is not None:  # promoted: its checkpoint on more problems
        if runs.tested(path) is None:
            runner.cli(["test", f"--ckpt_path={screened / 'checkpoints' / 'last.ckpt'}", f"--data.num_test={num_test}",
                        f"--trainer.default_root_dir={path}", *extra])
        return {"idea": idea, "changes": runner.reason(IDEAS[idea]), "arguments": arguments(idea),
                "num_test": num_test, **retested(screened, path)}
    fit(path, idea, num_demos, seed, num_test, extra)
    return {"idea": idea, "changes": runner.reason(IDEAS[idea]), "arguments": arguments(idea), "num_test": num_test,
            **runner.record(path), **probes(path)}


def fit(path: Path, idea: str, num_demos: int, seed: int, num_test: int, extra: list[str]) -> None:
    """Fits and tests `idea` on the recipe into `path` unless tested there; a fit cut short (a session's end)
    resumes where it stopped."""
    if runs.tested(path) is not None:
        return
    ckpt = path / "checkpoints" / "last.ckpt"
    resume = [f"--ckpt_path={ckpt}"] if ckpt.is_file() else []
    runner.cli(["fit", *RECIPE, f"--data.num_demos={num_demos}", f"--seed_everything={seed}",
                f"--data.num_test={num_test}", *arguments(idea), f"--trainer.default_root_dir={path}", *resume,
                *extra])


def probes(path: Path) -> dict:
    """The fit's validation probes (an idea that validates during training), as its accuracy against steps."""
    history = runs.tested(path).get("history", [])
    found = [{"step": e["step"], "accuracy": e["val/remainder_acc"]} for e in history if "val/remainder_acc" in e]
    return {"probes": found} if found else {}


def screen_test_time(idea: str, num_demos: int, seed: int, num_test: int, extra: list[str]) -> dict:
    """A test-time idea: the checkpoint its fitted idea has (fitted first if it has none) tested with its arguments."""
    changes, fitted_idea, test_args = TEST_TIME[idea]
    fitted = next((f for f in (folder(fitted_idea, num_demos, seed, n) for n in (num_test, SCREEN_TEST))
                   if runs.tested(f) is not None), None)
    if fitted is None:
        screen(fitted_idea, num_demos, seed, num_test, extra)
        fitted = folder(fitted_idea, num_demos, seed, num_test)
    path = folder(idea, num_demos, seed, num_test)
    if runs.tested(path) is None:
        runner.cli(["test", f"--ckpt_path={fitted / 'checkpoints' / 'last.ckpt'}", f"--data.num_test={num_test}",
                    *test_args, f"--trainer.default_root_dir={path}", *extra])
    return {"idea": idea, "changes": changes, "arguments": arguments(fitted_idea) + test_args, "num_test": num_test,
            **retested(fitted, path)}


def plot(records: list[dict], path: Path) -> None:
    records = sorted(records, key=lambda r: (r["num_demos"], r["idea"], r["seed"], r["n_eval"]))
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.35 * len(records)))
    for y, r in enumerate(records):
        ax.errorbar([r["accuracy"]], [y], xerr=wilson_bars([r]),
                    fmt="o", color="tab:blue" if r["idea"] != "baseline" else "tab:gray", capsize=3)
    ax.set_yticks(range(len(records)),
                  [f"{r['idea']} N={r['num_demos']} s{r['seed']} ({r['n_eval']})" for r in records], fontsize=7)
    ax.axvline(0.9, color="gray", linestyle=":", label="issue 24's target at N=50 (90%)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("remainder accuracy on interpolate problems (95% Wilson)")
    ax.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def save(records: list[dict]) -> None:
    """`records` into reports/small_n.json (one per idea, N, seed and test size: a screen run again replaces its
    own), and the plot of them all."""
    done = runner.update_report(OUT, records, lambda r: (r["idea"], r["num_demos"], r["seed"], r["num_test"]),
                                question="which ideas make fewer demonstrations teach more")
    plot(done, OUT.with_suffix(".png"))


def main(argv: list[str] | None = None) -> None:
    own, extra = runner.split_extra(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ideas", nargs="+", choices=sorted(IDEAS | TEST_TIME), default=["baseline"])
    parser.add_argument("--num_demos", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--num_test", type=int, default=200)
    args = parser.parse_args(own)
    for idea in args.ideas:
        for seed in args.seeds:
            record = screen(idea, args.num_demos, seed, args.num_test, extra)
            save([record])
            print(f"{idea} N={args.num_demos} seed {seed}: {record['accuracy']:.1%} "
                  f"[{record['wilson_low']:.1%}, {record['wilson_high']:.1%}] of {record['n_eval']}", flush=True)


if __name__ == "__main__":
    main()
