"""Length generalization: a trained checkpoint tested on dividends longer than any it was trained on.

    python -m experiments.length --ckpt CKPT --name NAME [--digits 8 10 12 16 20] [--per_length 200]
                                 [--out reports/length.json] [-- extra CLI arguments for the test]
    python -m experiments.length --fit IDEA [--seed 0] [--digits 8 12 20] [--per_length 100]

With `--fit`, an idea for length generalization (IDEAS below) is first trained on the main recipe (configs/smollm2.yaml,
200 demonstrations) into `runs/length/fit/<idea>-n200-s<seed>/` and tested on the first 200 interpolate problems,
resuming from its last checkpoint if a session ended in the fit; its checkpoint is then tested as above under the
name `<idea>-n200-s<seed>`.

The test keeps the divisors of the interpolate split (data seed 0) and draws new dividends of each length in turn
(`--data.test_dividend_digits`), `--per_length` problems per length, in one `test` run into `runs/length/<name>/`
(skipped once tested). For each length the report gives the accuracy with its 95% Wilson interval, the verifier's
first wrong steps, where the trace stopped (how many dividend digits it brought down before its answer row,
against the dividend's length) and how far its bring-downs followed the labels' order before one came out of turn.
The paper's training dividends have at most 8 digits. Writes one record per (name, digits) into `--out`, keeping
the other names' records, and a plot of accuracy against length next to it.

    python -m experiments.length --benchmark --ckpt CKPT --name NAME [--filter F --rounds K]

The length benchmark: the same test on fixed sets (`length_set`) of 200 problems each with dividends of 12, 16, 20
and 30 digits and divisors drawn from the interpolate split, the same sets on every machine and for every
checkpoint, written to `runs/length/benchmark/sets-200.txt` and tested as a problems file. Its rows add
`dividend_digits`, `n` (the problems tested: a set's problems that the checkpoint trained on are left out, and
`removed_overlap` counts them), N (`num_demos`, the generator's demonstrations the checkpoint learned from), and the
`filter` and `rounds` of the self-improvement that made it (experiments.self_improve; none and 0 for a checkpoint
fitted on demonstrations alone).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments import runner
from longdiv import runs
from longdiv.data.formats import get_format
from longdiv.data.problems import Problem, generate, with_dividend_digits
from longdiv.stats import accuracy, wilson_bars

RUNS = runs.root() / "length"
OUT = Path("reports/length.json")
BENCHMARK_DIGITS = (12, 16, 20, 30)
BENCHMARK_SIZE = 200
# The benchmark's streams, apart from every training and evaluation draw of longdiv.data.datamodule (data seeds,
# their 7919-multiples and the 10**6 evaluation offset) and of experiments.self_improve: a divisor draw and a
# dividend draw for each length.
BENCHMARK_SEED = 7_000_000

# name: (what it changes against subrow on the main recipe, its CLI arguments)
IDEAS = {
    "subrow": ("nothing: the main recipe", []),
    "subrand": ("dividend digits labelled in an order drawn per problem, so that a label says nothing of position",
                ["--data.format=subrand"]),
    "subdown": ("dividend digits labelled counting down to `a` at the last, so that a label says how many remain",
                ["--data.format=subdown"]),
    "prime20": ("20 of the 200 demonstrations with dividends of 9 to 16 digits (same divisors)",
                ["--data.long_demos=20"]),
    "subdown-prime20": ("subdown and 20 demonstrations with dividends of 9 to 16 digits",
                        ["--data.format=subdown", "--data.long_demos=20"]),
    "prime20-26": (("20 of the 200 demonstrations with dividends of 9 to 26 digits, every label seen: 20 digits "
                    "is a trained length"), ["--data.long_demos=20", f"--data.long_digits={list(range(9, 27))}"]),
    "subdown-prime20-26": ("subdown and 20 demonstrations with dividends of 9 to 26 digits",
                           ["--data.format=subdown", "--data.long_demos=20",
                            f"--data.long_digits={list(range(9, 27))}"]),
}


def heads(generated: str) -> list[str]:
    """The labels of a `sub`-family trace's bring-down lines: the letters that lead them (not `-`, `+` or `R`)."""
    return [line[0] for line in generated.splitlines() if line and line[0].isalpha() and line[0] != "R"]


def brought_down(generated: str) -> int:
    return len(heads(generated))


def labels_in_order(row: dict, fmt: str) -> int:
    """How many bring-down lines, from the first, carry the labels that format `fmt`'s own trace of the problem
    gives the dividend's digits, in turn: where a trace first brought down a digit out of turn (skipped, repeated or
    went back), or all of them."""
    want = heads(get_format(fmt).render(Problem.from_numbers(row["dividend"], row["divisor"]))[1])
    got = heads(row["generated"])
    return next((i for i, (head, label) in enumerate(zip(got, want)) if head != label), min(len(got), len(want)))


def summarize(rows: list[dict], fmt: str = "subrow") -> dict:
    digits = len(str(rows[0]["dividend"]))
    stops = Counter(brought_down(row["generated"]) - digits for row in rows)
    in_order = [labels_in_order(row, fmt) for row in rows]
    return {
        "digits": digits,
        **accuracy(sum(row["correct"] for row in rows), len(rows)),
        "parse_failures": sum(row["parsed"] is None for row in rows),
        "error_kinds": dict(Counter(row["error_kind"] for row in rows if row["error_kind"])),
        # Bring-downs minus the dividend's digits: 0 is a trace that stopped where it should.
        "stopped_right": stops[0] / len(rows),
        "stop_offsets": {str(k): v for k, v in sorted(stops.items())},
        "mean_brought_down": sum(brought_down(row["generated"]) for row in rows) / len(rows),
        # Bring-downs in the labels' order before the first out of turn, and traces with all of them in turn.
        "mean_labels_in_order": sum(in_order) / len(rows),
        "all_labels_in_order": sum(k == digits for k in in_order) / len(rows),
    }


def length_set(digits: int, count: int = BENCHMARK_SIZE) -> list[Problem]:
    """The benchmark's `count` problems with `digits`-digit dividends: divisors of the interpolate split and uniformly
    drawn dividends, each from a seed of its own for this length, so a set never changes."""
    divisors = generate("interpolate", count, BENCHMARK_SEED + digits)
    return with_dividend_digits(divisors, [digits], BENCHMARK_SEED + 1_000 + digits)


def benchmark_problems(digits: tuple[int, ...] = BENCHMARK_DIGITS, per_length: int = BENCHMARK_SIZE) -> list[Problem]:
    """Every benchmark set, shortest dividends first; a ValueError if two sets share a problem."""
    problems = [p for d in digits for p in length_set(d, per_length)]
    if len({p.key for p in problems}) < len(problems):
        raise ValueError(f"length benchmark: the sets of {list(digits)} digits repeat a problem; draw them again "
                         "from other seeds (BENCHMARK_SEED)")
    return problems


def write_problems(problems: list[Problem], path: Path) -> Path:
    """`problems` as a `question|answer` file at `path` (through a file beside it and a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(f"{p.question}|{p.remainder}\n" for p in problems))
    tmp.replace(path)
    return path


def interpolate(ckpt: Path, first: int = 200) -> dict | None:
    """The checkpoint's own test after its fit, on the first `first` interpolate problems (the draw every fit with
    data seed 0 tests on, whatever its num_test), so that checkpoints tested on 200 and on 500 compare; None when its
    run folder holds no test."""
    path = ckpt.parent.parent / "predictions.jsonl"
    if not path.is_file():
        return None
    with path.open() as f:
        rows = [row for row in map(json.loads, f) if row["index"] < first]
    return accuracy(sum(row["correct"] for row in rows), len(rows))


def plot(records: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name in dict.fromkeys(r["name"] for r in records):
        mine = sorted((r for r in records if r["name"] == name), key=lambda r: r["digits"])
        xs, ys = [r["digits"] for r in mine], [r["accuracy"] for r in mine]
        ax.errorbar(xs, ys, yerr=wilson_bars(mine), marker="o", capsize=3, label=name)
    ax.axvline(8.5, color="gray", linestyle=":", label="longest dividend of the paper's problems (8)")
    ax.set_xlabel("dividend digits")
    ax.set_ylabel("remainder accuracy (95% Wilson)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def fit(idea: str, seed: int) -> Path:
    """The checkpoint of `idea` trained on the main recipe with training seed `seed`, fitted (or resumed) and tested
    on the first 200 interpolate problems unless its folder already holds that test."""
    folder = RUNS / "fit" / f"{idea}-n200-s{seed}"
    ckpt = folder / "checkpoints" / "last.ckpt"
    if runs.tested(folder) is None:
        resume = [f"--ckpt_path={ckpt}"] if ckpt.is_file() else []
        runner.cli(["fit", "--config", runner.CONFIG, f"--seed_everything={seed}", "--data.num_test=200",
                    *IDEAS[idea][1], f"--trainer.default_root_dir={folder}", *resume])
    return ckpt


def tested(ckpt: str, name: str, test_args: list[str], extra: list[str]) -> tuple[dict, dict[int, list[dict]]]:
    """The test record of `ckpt` in `runs/length/<name>/` (tested there with `test_args` unless done) and its
    predictions by dividend length."""
    folder = RUNS / name
    if runs.tested(folder) is None:
        runner.cli(["test", f"--ckpt_path={ckpt}", *test_args, f"--trainer.default_root_dir={folder}", *extra])
    rows = runs.read_jsonl(folder / "predictions.jsonl")
    by_length: dict[int, list[dict]] = {}
    for row in rows:
        by_length.setdefault(len(str(row["dividend"])), []).append(row)
    return runs.tested(folder), by_length


def save(new: list[dict], out: Path = OUT) -> None:
    """Adds `new` rows to the report at `out` (replacing the earlier rows of their names) and plots them all."""
    records = runner.update_report(out, new, lambda r: r["name"],
                                   question="accuracy on dividends longer than any training dividend")
    plot(records, out.with_suffix(".png"))


def benchmark(ckpt: str, name: str, filter: str | None = None, rounds: int = 0, extra: list[str] = (),
              out: Path = OUT, per_length: int = BENCHMARK_SIZE) -> list[dict]:
    """Tests `ckpt` on the length benchmark under `name` and writes its rows into `out`; returns them."""
    problems = write_problems(benchmark_problems(per_length=per_length), RUNS / "benchmark" / f"sets-{per_length}.txt")
    record, by_length = tested(ckpt, name, [f"--data.test_file={problems}"], list(extra))
    mine = [{"name": name, "benchmark": True, "checkpoint": str(ckpt), **summarize(by_length[d], record["format"]),
             "dividend_digits": d, "n": len(by_length[d]), "num_demos": record["num_demos"], "filter": filter,
             "rounds": rounds, "removed_overlap": record.get("removed_overlap"),
             "interpolate_first_200": interpolate(Path(ckpt)), "format": record["format"],
             "eval_seconds": record["eval_seconds"], "device": record.get("device"), "run_dir": str(RUNS / name)}
            for d in sorted(by_length)]
    save(mine, out)
    return mine


def main(argv: list[str] | None = None) -> None:
    import sys

    own, extra = runner.split_extra(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", help="the checkpoint to test")
    parser.add_argument("--name", help="the record's name and run folder, e.g. subrow-n200-s0")
    parser.add_argument("--fit", choices=sorted(IDEAS), help="train this idea first and test its checkpoint")
    parser.add_argument("--seed", type=int, default=0, help="the training seed of --fit")
    parser.add_argument("--digits", type=int, nargs="+", default=[8, 10, 12, 16, 20])
    parser.add_argument("--per_length", type=int, default=200)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--benchmark", action="store_true",
                        help=f"test on the fixed sets of {', '.join(map(str, BENCHMARK_DIGITS))} digits instead")
    parser.add_argument("--filter", help="with --benchmark: the self-improvement filter that made the checkpoint")
    parser.add_argument("--rounds", type=int, default=0, help="with --benchmark: its self-improvement rounds")
    args = parser.parse_args(own)
    if args.fit:
        args.ckpt, args.name = str(fit(args.fit, args.seed)), args.name or f"{args.fit}-n200-s{args.seed}"
    elif not (args.ckpt and args.name):
        parser.error("pass --ckpt and --name, or --fit IDEA")
    if args.benchmark:
        for r in benchmark(args.ckpt, args.name, args.filter, args.rounds, extra, args.out):
            print(f"{r['dividend_digits']:>3} digits: {r['accuracy']:.1%} ({r['correct']}/{r['n']}) "
                  f"[{r['wilson_low']:.1%}, {r['wilson_high']:.1%}], N={r['num_demos']}, filter {r['filter']}, "
                  f"{r['rounds']} rounds")
        return

    record, by_length = tested(args.ckpt, args.name, [f"--data.test_dividend_digits={args.digits}",
                                                      f"--data.num_test={args.per_length * len(args.digits)}"], extra)
    folder = RUNS / args.name
    idea = {"idea": args.fit, "changes": IDEAS[args.fit][0]} if args.fit else {}
    mine = [{"name": args.name, **idea, "checkpoint": args.ckpt, **summarize(by_length[d], record["format"]),
             "interpolate_first_200": interpolate(Path(args.ckpt)),
             "format": record["format"], "eval_seconds": record["eval_seconds"], "device": record.get("device"),
             "run_dir": str(folder)} for d in sorted(by_length)]
    save(mine, args.out)
    for r in mine:
        print(f"{r['digits']:>3} digits: {r['accuracy']:.1%} ({r['correct']}/{r['n_eval']}) "
              f"[{r['wilson_low']:.1%}, {r['wilson_high']:.1%}], stopped right {r['stopped_right']:.0%}, "
              f"mean brought down {r['mean_brought_down']:.1f}")


if __name__ == "__main__":
    main()
