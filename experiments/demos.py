"""Accuracy against the number of demonstrations for the best format, on the offline SmolLM2 with the same training
compute at every N (configs/smollm2.yaml at N=200, with configs/overlays/fixed-steps.yaml below N=200 giving the same
number of optimizer steps): N = 25, 50, 100, 200 (N=200 with two training seeds) and `direct` at N=200,
each tested on 500 generated interpolate problems and the paper's 100 validation problems. Writes reports/demos.json
and reports/demos.png.

    python -m experiments.demos [--format subrow] [-- extra CLI arguments for every run]

Demonstrations are the paper's 200 training problems, or a sample of them drawn with the data seed for N < 200.
Points run in the order below (the most informative first) and are shared with experiments.formats through
runs/formats/; the report is rewritten after every point, so an interrupted script resumes. A point already in the
committed report is kept as it is when its run folder is not here (a fresh clone), so only missing points are fitted.
"""

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments import runner
from longdiv.stats import wilson_bars

OUT = Path("reports/demos.json")
PLOT = Path("reports/demos.png")


BUDGET = "overlays/fixed-steps"  # below N=200; at N=200 configs/smollm2.yaml's epochs take as many steps


def plan(best: str) -> list[tuple[str, int, int, str | None]]:
    return [(best, 200, 0, None), (best, 50, 0, BUDGET), ("direct", 200, 0, None), (best, 200, 1, None),
            (best, 100, 0, BUDGET), (best, 25, 0, BUDGET)]


def plot(records: list[dict], best: str) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for fmt, color in ((best, "tab:blue"), ("direct", "tab:gray")):
        tests = (("500 interpolate", None, "o", 1.0), ("paper's 100 validation", "paper_val", "s", 1.06))
        for test, key, marker, shift in tests:
            runs = sorted((r for r in records if r["format"] == fmt and (key is None or r.get(key))),
                          key=lambda r: (r["num_demos"], r["seed"]))
            if not runs:
                continue
            stats = [r if key is None else r[key] for r in runs]
            xs = [r["num_demos"] * shift for r in runs]
            ys = [s["accuracy"] for s in stats]
            ax.errorbar(xs, ys, yerr=wilson_bars(stats), fmt=marker, color=color, alpha=1.0 if key is None else 0.55,
                        capsize=3, label=f"{fmt}, {test} (n={stats[0]['n_eval']})")
            if fmt == best:  # a line through the seed means
                means = {}
                for x, y in zip(xs, ys):
                    means.setdefault(x, []).append(y)
                ax.plot(list(means), [sum(v) / len(v) for v in means.values()], color=color, alpha=0.4,
                        linestyle="-" if key is None else "--")
    ax.set_xscale("log", base=2)
    ax.set_xticks([25, 50, 100, 200], labels=["25", "50", "100", "200"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("demonstrations (N)")
    ax.set_ylabel("remainder accuracy (95% Wilson interval)")
    ax.set_title("SmolLM2-135M fine-tuned on N demonstrations, 150 optimizer steps each (CPU)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=150)
    plt.close(fig)


def main(argv: list[str]) -> None:
    argv, extra = runner.split_extra(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="subrow", help="The best step-by-step format.")
    parser.add_argument("--report_only", action="store_true", help="Write the report from finished points only.")
    args = parser.parse_args(argv)
    committed = {r["run_dir"]: r for r in runner.read_report(OUT).get("records", [])}
    records, pending = [], plan(args.format)
    for point in plan(args.format):
        done = runner.finished(*point)
        kept = None if done else committed.get(str(runner.folder(*point)))
        if kept:
            records.append(kept)
        elif args.report_only and not done:
            continue
        else:
            records.append(runner.run(*point, extra=extra))
        pending.remove(point)
        runner.update_report(OUT, records, lambda r: r["run_dir"], model="smollm2", config=runner.CONFIG,
                             best_format=args.format,
                             pending=[{"format": f, "num_demos": n, "seed": s, "overlay": o} for f, n, s, o in pending])
        plot(records, args.format)
    for rec in records:
        print(f"{rec['format']:>8} N={rec['num_demos']:<3} seed {rec['seed']}: {rec['accuracy']:.1%} "
              f"({rec['correct']}/{rec['n_eval']}), paper validation {rec['paper_val']['accuracy']:.0%}")


if __name__ == "__main__":
    main(sys.argv[1:])
