"""Every demonstration format at N=200 on the offline SmolLM2 (the main recipe, configs/smollm2.yaml), each tested
on 500 generated interpolate problems and the paper's 100 validation problems: reports/formats.json.

    python -m experiments.formats [--formats subrow subadd subcopy direct subtag sub recchia-w] [-- extra CLI arguments]

Runs live in runs/formats/ and are shared with experiments.demos; finished points are not run again, and the
report is rewritten after every point, so an interrupted script resumes. Formats asked for but not yet run are
listed under `pending` with their mean demonstration length (SmolLM2 tokens, prompt and completion).
"""

import argparse
import statistics
import sys
from pathlib import Path

from experiments import runner
from longdiv import runs
from longdiv.data.formats import get_format
from longdiv.data.problems import read_file
from longdiv.models.loading import load_tokenizer

# Cheapest first after the best; the paper's grid is ~2K tokens a demonstration.
FORMATS = ["subrow", "subadd", "subcopy", "direct", "subtag", "sub", "recchia-w"]
OUT = Path("reports/formats.json")


def demo_lengths(names: list[str]) -> dict[str, dict[str, float]]:
    """Tokens per training demonstration of the paper's 200 problems, in each format."""
    tokenizer = load_tokenizer("smollm2")
    problems = read_file(runner.PAPER_TRAIN)
    lengths = {}
    for name in names:
        counts = [len(tokenizer("".join(get_format(name).render(p)))["input_ids"]) for p in problems]
        lengths[name] = {"mean_tokens": round(statistics.mean(counts), 1), "max_tokens": max(counts)}
    return lengths


def write(new: list[dict], pending: list[str], lengths: dict) -> list[dict]:
    """Adds `new` records to the report, replacing each format's earlier one; returns every record."""
    return runner.update_report(
        OUT, new, lambda r: r["format"], model="smollm2", num_demos=200, config=runner.CONFIG,
        test="500 generated interpolate problems (data seed 0) and the paper's 100 validation problems (paper_val)",
        where="a record without `device` ran on this workplace's 2-core CPU in the config's recipe (fp32, "
              "micro-batches of 1 accumulated to 8); others name their device, precision and batch",
        pending=[{"format": name, **lengths[name]} for name in pending])


def main(argv: list[str]) -> None:
    argv, extra = runner.split_extra(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", nargs="+", default=FORMATS)
    parser.add_argument("--report_only", action="store_true",
                        help="Write the report from tested points only (paper test optional), running nothing.")
    args = parser.parse_args(argv)
    lengths = demo_lengths(args.formats)
    pending = list(args.formats)
    # A format not asked for, or whose run folder is gone (run in another checkout, or on a GPU machine and
    # collected by experiments.gpu), keeps its record from the committed report.
    committed = {r["format"] for r in runner.read_report(OUT).get("records", [])}
    for name in args.formats:
        if args.report_only and runs.tested(runner.folder(name, 200, 0)) is not None:
            new = [runner.record(runner.folder(name, 200, 0))]
        elif args.report_only and name not in committed:
            continue
        else:
            new = [] if args.report_only else [runner.run(name, 200, 0, extra=extra)]
        pending.remove(name)
        write(new, pending, lengths)
    records = write([], pending, lengths)
    for rec in records:
        val = f"{rec['paper_val']['accuracy']:.0%}" if rec["paper_val"] else "not run"
        print(f"{rec['format']:>10}: {rec['accuracy']:.1%} ({rec['correct']}/{rec['n_eval']}), paper validation "
              f"{val}, {rec['mean_tokens']} tokens, fit {rec['fit_seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main(sys.argv[1:])
