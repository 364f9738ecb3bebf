"""Tables and plots from run folders: `python -m longdiv report RUN_DIRS... --out DIR`.

Finds every `run.json` under the given folders (recursively) whose run got as far as its test (one that cannot be
read is skipped with a warning naming it), and writes:
- `table.md` and `table.csv`: one row per run (model, format, demonstrations, seed, n, correct, accuracy, Wilson
  95% interval, parse-fail rate, the verifier's error-kind counts: `row`, the row every experiment's report holds
  too, as `table_row` flattens it for a CSV), then in `table.md` the seeds of each point
  pooled (sum of correct over sum of n; its Wilson interval counts problems, not training seeds, so the lowest and
  highest single-seed accuracies stand beside it);
- `accuracy.png`: pooled accuracy against the number of demonstrations (log x), one line per model and format,
  with Wilson 95% error bars and n in the legend, and each seed's own accuracy as a small mark where there are
  several;
- `parse_fail.png`: the parse-fail rate likewise;
- `error_kinds.png`: stacked bars of the verifier's first-error kinds per point, when any run has them;
- `length_cells.csv`: each run's right and total answers by dividend and divisor digit counts, from its
  `predictions.jsonl`;
- `length_heatmap.png`: accuracy by dividend digits x divisor digits from those cells, one panel per model and format
  at its largest demonstration count (all its test sets); none when no run there has predictions.

`--keep TABLE.csv` adds the rows of an earlier report whose run folders are not among those found (runs made in
another session or on another machine), and their length cells from the `length_cells.csv` beside it, so a report
grows point by point:

    python -m longdiv report runs/ablation --keep reports/ablation/table.csv --out reports/ablation
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict
from pathlib import Path

from longdiv import errors, runs
from longdiv.data.verify import KINDS
from longdiv.stats import error_bars, wilson, wilson_bars

COLUMNS = ("model", "format", "test_set", "num_demos", "seed", "n", "correct", "accuracy", "wilson_low", "wilson_high",
           "parse_fail_rate", *(f"err_{kind}" for kind in KINDS), "run_dir", "trained")


def test_set(data: dict) -> str:
    """What a run was tested on, from its data config: a file's name, longer dividends, or the generator split."""
    if data.get("test_file"):
        return Path(data["test_file"]).name
    digits = data.get("test_dividend_digits")
    split = data.get("eval_split", "interpolate")
    return f"{split}, dividend digits {min(digits)}-{max(digits)}" if digits else split


def row(folder: Path, record: runs.Record | None = None) -> dict:
    """The one row a tested run makes in every report: these tables (as `table_row`) and the experiments' reports.
    It says what was trained (model, format, N, training seed, and `trained`, the folder of the run that trained it)
    and tested on what, the test's figures, what the fit cost and where it ran. `record` is the run's tested record
    when it is not `folder`'s own (one put together from a fit and a later test). What a record does not hold is
    None: a test of a checkpoint has no fit to time."""
    record = record or runs.tested(folder)
    config = record.get("config", {})
    data, trainer = config.get("data", {}), config.get("trainer", {})
    ckpt = record.get("checkpoint") or {}
    evaluated = runs.evaluated(ckpt)
    fmt = record["format"]
    if evaluated and ckpt.get("format") not in (None, fmt):  # --allow_format_change: a row of its own, marked
        fmt = f"{fmt} (trained on {ckpt['format']})"
    fitted = record.get("fit_seconds") is not None
    # an epoch's examples: the demonstrations cut into windows, and any self-labelled traces
    examples = record.get("train_windows") or record["num_demos"]
    steps, micro_batches = optimizer_steps(config, examples) if fitted else (None, None)
    # a fit resumed before records carried the time up to their checkpoint timed only its last part
    partial = fitted and ckpt.get("use") == "resumed" and "fit_seconds_before_resume" not in record
    tokens = record.get("mean_tokens")
    # the tokens trained on, as counted (records from before they were counted: estimated from the demonstrations)
    trained = (record.get("history") or [{}])[-1].get("tokens") or (
        tokens * data["batch_size"] * micro_batches if fitted and tokens is not None else None)
    speed = fitted and not partial and trained is not None
    metrics = record.get("metrics", {})
    return {
        "model": record["model"], "format": fmt, "test_set": test_set(data), "num_demos": record["num_demos"],
        "seed": ckpt.get("seed", config.get("seed_everything")) if evaluated else config.get("seed_everything"),
        "n_eval": record["n_eval"], "correct": record["correct"], "accuracy": record["accuracy"],
        "wilson_low": record["wilson_low"], "wilson_high": record["wilson_high"],
        "parse_failures": record["parse_failures"],
        "error_kinds": {kind: round(metrics.get(f"test/err_{kind}", 0)) for kind in KINDS},
        "mean_tokens": None if tokens is None else round(tokens, 1), "max_tokens": record.get("max_tokens"),
        "fit_seconds": record.get("fit_seconds"), **({"fit_seconds_partial": True} if partial else {}),
        "eval_seconds": record.get("eval_seconds"), "fit_peak_rss_gb": record.get("fit_peak_rss_gb"),
        "train_tokens_per_second": round(trained / record["fit_seconds"], 1) if speed else None,
        "optimizer_steps": steps,
        "epochs": round(micro_batches * data["batch_size"] / examples, 2) if fitted else None,
        # Records from before run.json named the device were all made on the first sessions' CPU.
        "device": record.get("device", "cpu (not recorded)"),
        # what training computed in (model.precision resolved); older records knew only the trainer's setting
        "precision": record["precision"].get("train") if "precision" in record else trainer.get("precision"),
        "restrict_vocab": config.get("model", {}).get("restrict_vocab"),
        "batch": f"{data['batch_size']}x{trainer['accumulate_grad_batches']}" if fitted else None,
        "run_dir": str(folder),
        "trained": _local(Path(ckpt["path"]).resolve().parent.parent if evaluated else folder),
        "data_hash": record.get("data_hash"), "git_commit": record.get("git_commit"),
    }


def _local(folder: Path) -> str:
    """A folder as a report names it: relative to the current folder when inside it (reports are committed), else
    absolute; the same folder reached two ways gets one name."""
    folder, here = Path(folder).resolve(), Path.cwd().resolve()
    return str(folder.relative_to(here)) if folder.is_relative_to(here) else str(folder)


def table_row(r: dict) -> dict:
    """A row as `table.csv` holds it: flat, under the names its committed tables have (`n` for `n_eval`,
    `parse_fail_rate`, one `err_<kind>` column per error kind)."""
    n = r["n_eval"]
    return {**{k: r[k] for k in ("model", "format", "test_set", "num_demos", "seed")}, "n": n,
            **{k: r[k] for k in ("correct", "accuracy", "wilson_low", "wilson_high")},
            "parse_fail_rate": r["parse_failures"] / max(1, n),
            **{f"err_{kind}": r["error_kinds"][kind] for kind in KINDS}, "run_dir": r["run_dir"],
            "trained": r["trained"]}


def optimizer_steps(config: dict, examples: int | None = None) -> tuple[int, int]:
    """The optimizer steps and training micro-batches of a fit with this resolved config: `max_steps` when set,
    else `max_epochs` whole epochs of `examples` (by default `num_demos`); an epoch's last step takes the
    micro-batches left over."""
    trainer, data = config["trainer"], config["data"]
    batches = math.ceil((examples or data["num_demos"]) / data["batch_size"])
    per_epoch = math.ceil(batches / trainer["accumulate_grad_batches"])
    steps = trainer["max_steps"] if trainer["max_steps"] > 0 else per_epoch * trainer["max_epochs"]
    epochs, rest = divmod(steps, per_epoch)
    return steps, epochs * batches + rest * trainer["accumulate_grad_batches"]


def tested_rows(folders: list[Path]) -> list[dict]:
    """One row per tested run under `folders`, each searched recursively. A run.json that cannot be read, is not a
    record, or lacks a test's figures is skipped with a warning that names it: one damaged run does not stop a report
    of many."""
    for top in folders:
        if not top.exists():
            raise errors.UsageError("run folder", top, "no such folder", "pass run folders or folders that hold them")
    rows = []
    for folder in sorted({path.parent for top in folders for path in top.rglob(runs.RECORD_FILE)}):
        try:
            if runs.tested(folder) is not None:
                rows.append(table_row(row(folder)))
        except (OSError, ValueError, KeyError, TypeError) as err:
            path = folder / runs.RECORD_FILE
            reason = f"no {err.args[0]!r} field" if isinstance(err, KeyError) else str(err).removeprefix(f"{path}: ")
            print(f"warning: skipped {path}: {reason}", file=sys.stderr, flush=True)
    return rows


def kept_rows(table: Path, found: list[dict]) -> list[dict]:
    """The rows of an earlier report's `table.csv` whose run folder is not one of `found`'s, typed as `table_row`
    types them."""
    if not table.is_file():
        raise errors.UsageError("earlier table", table, "no such file", "pass the table.csv an earlier report wrote")
    found_dirs = {r["run_dir"] for r in found}
    integers = ("num_demos", "n", "correct", *(f"err_{kind}" for kind in KINDS))
    kept = []
    with table.open(newline="") as f:
        for r in csv.DictReader(f):
            if r["run_dir"] in found_dirs:
                continue
            r = {"trained": r["run_dir"], **r, **{k: int(r[k]) for k in integers},  # older tables: no `trained`
                 **{k: float(r[k]) for k in ("accuracy", "wilson_low", "wilson_high", "parse_fail_rate")}}
            r["seed"] = None if r["seed"] in ("", "None") else int(r["seed"])
            r["trained"] = _local(Path(r["trained"]))  # as `row` names it, so one checkpoint pools once
            kept.append(r)
    return kept


def pool(rows: list[dict]) -> list[dict]:
    """Seeds of the same (model, format, test set, num_demos) point pooled: sum of correct over sum of n. Each
    trained model counts once: of the tests of one checkpoint on one test set, the one on the most problems."""
    tests = {}
    for r in sorted(rows, key=lambda r: -r["n"]):
        tests.setdefault((r["model"], r["format"], r["test_set"], r["num_demos"], r["trained"]), r)
    groups = defaultdict(list)
    for r in tests.values():
        groups[(r["model"], r["format"], r["test_set"], r["num_demos"])].append(r)
    pooled = []
    for (model, fmt, test, num_demos), rs in sorted(groups.items()):
        n, correct = sum(r["n"] for r in rs), sum(r["correct"] for r in rs)
        low, high = wilson(correct, n)
        parse_fails = sum(r["parse_fail_rate"] * r["n"] for r in rs)
        pooled.append(
            dict(model=model, format=fmt, test_set=test, num_demos=num_demos, seeds=len(rs), n=n, correct=correct,
                 accuracy=correct / max(1, n), wilson_low=low, wilson_high=high,
                 parse_fail_rate=parse_fails / max(1, n), seed_min=min(r["accuracy"] for r in rs),
                 seed_max=max(r["accuracy"] for r in rs), seed_accuracies=[r["accuracy"] for r in rs],
                 **{f"err_{k}": sum(r[f"err_{k}"] for r in rs) for k in KINDS})
        )
    return pooled


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict], columns: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[dict], pooled: list[dict], out: Path) -> None:
    with (out / "table.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    pooled_columns = ("model", "format", "test_set", "num_demos", "seeds", "n", "correct", "accuracy",
                      "wilson_low", "wilson_high", "parse_fail_rate", "seed_min", "seed_max")
    (out / "table.md").write_text(
        "# Runs\n\n" + markdown(rows, COLUMNS) + "\n# Seeds pooled\n\n" + markdown(pooled, pooled_columns)
    )


def _series(pooled: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    series = defaultdict(list)
    for p in pooled:
        series[(p["model"], p["format"], p["test_set"])].append(p)
    return {key: sorted(ps, key=lambda p: p["num_demos"]) for key, ps in sorted(series.items())}


def _n_label(points: list[dict]) -> str:
    ns = sorted({p["n"] for p in points})
    return f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}-{ns[-1]}"


def plot_curves(pooled: list[dict], out: Path, plt) -> None:
    for name, key, title in (("accuracy.png", "accuracy", "test remainder accuracy"),
                             ("parse_fail.png", "parse_fail_rate", "test parse-fail rate")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (model, fmt, test), points in _series(pooled).items():
            xs = [p["num_demos"] for p in points]
            ys = [p[key] for p in points]
            errors = wilson_bars(points) if key == "accuracy" else error_bars(
                ys, [wilson(round(p[key] * p["n"]), p["n"]) for p in points])
            line = ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3,
                               label=f"{model} / {fmt} / {test} ({_n_label(points)})")
            if key == "accuracy" and any(p["seeds"] > 1 for p in points):
                seeds = [(p["num_demos"], a) for p in points for a in p["seed_accuracies"]]
                ax.scatter(*zip(*seeds), marker="x", s=25, color=line[0].get_color(), zorder=3,
                           label=f"{model} / {fmt} / {test}: each training seed")
        ax.set_xscale("log")
        counts = sorted({p["num_demos"] for p in pooled})
        ax.set_xticks(counts, [str(c) for c in counts], minor=False)
        ax.minorticks_off()
        ax.set_xlabel("training demonstrations")
        ax.set_ylabel(title + " (Wilson 95%)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)


def plot_error_kinds(pooled: list[dict], out: Path, plt) -> bool:
    if not any(p[f"err_{k}"] for p in pooled for k in KINDS):
        return False
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(pooled)), 4.5))
    labels = [f"{p['model']}\n{p['format']} {p['test_set']} N={p['num_demos']}" for p in pooled]
    bottom = [0.0] * len(pooled)
    for kind in KINDS:
        share = [p[f"err_{kind}"] / max(1, p["n"]) for p in pooled]
        ax.bar(range(len(pooled)), share, bottom=bottom, label=kind)
        bottom = [b + s for b, s in zip(bottom, share)]
    ax.set_xticks(range(len(pooled)), labels, fontsize=7, rotation=45, ha="right")
    ax.set_ylabel("share of test problems")
    ax.set_title("first wrong step found by the verifier")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "error_kinds.png", dpi=120)
    plt.close(fig)
    return True


CELL_COLUMNS = ("run_dir", "dividend_digits", "divisor_digits", "correct", "n")


def length_cells(rows: list[dict]) -> list[dict]:
    """Right and total answers by (dividend digits, divisor digits) for each row's run that has `predictions.jsonl`."""
    out = []
    for r in rows:
        path = Path(r["run_dir"]) / "predictions.jsonl"
        if not path.is_file():
            continue
        cells = defaultdict(lambda: [0, 0])
        for p in runs.read_jsonl(path):
            cell = cells[(len(str(p["dividend"])), len(str(p["divisor"])))]
            cell[0] += bool(p["correct"])
            cell[1] += 1
        out += [{"run_dir": r["run_dir"], "dividend_digits": a, "divisor_digits": b, "correct": ok, "n": n}
                for (a, b), (ok, n) in sorted(cells.items())]
    return out


def kept_cells(path: Path, kept: list[dict]) -> list[dict]:
    """The length cells in an earlier report's `path` of the `kept` rows' runs (none if it has no such file)."""
    if not path.is_file():
        return []
    dirs = {r["run_dir"] for r in kept}
    with path.open(newline="") as f:
        return [{**c, **{k: int(c[k]) for k in CELL_COLUMNS[1:]}} for c in csv.DictReader(f) if c["run_dir"] in dirs]


def plot_heatmap(rows: list[dict], cells: list[dict], out: Path, plt) -> bool:
    """Accuracy by dividend and divisor digit counts, per model and format at its largest demonstration count
    (seeds pooled); an earlier heatmap is removed when no run there has cells, so the plot never outlives its rows."""
    largest = {}
    for r in rows:
        key = (r["model"], r["format"])
        largest[key] = max(largest.get(key, 0), r["num_demos"])
    panel = {r["run_dir"]: (r["model"], r["format"]) for r in rows
             if r["num_demos"] == largest[(r["model"], r["format"])]}
    grids = defaultdict(lambda: defaultdict(lambda: [0, 0]))  # (model, format) -> (dividend, divisor digits) -> [ok, n]
    for c in cells:
        if c["run_dir"] in panel:
            cell = grids[panel[c["run_dir"]]][(c["dividend_digits"], c["divisor_digits"])]
            cell[0] += c["correct"]
            cell[1] += c["n"]
    if not grids:
        (out / "length_heatmap.png").unlink(missing_ok=True)
        return False
    fig, axes = plt.subplots(1, len(grids), figsize=(4.5 * len(grids), 4), squeeze=False)
    for ax, ((model, fmt), grid) in zip(axes[0], sorted(grids.items())):
        dividends = range(min(a for a, _ in grid), max(a for a, _ in grid) + 1)
        divisors = range(min(b for _, b in grid), max(b for _, b in grid) + 1)
        acc = [[grid[(a, b)][0] / grid[(a, b)][1] if grid[(a, b)][1] else float("nan") for a in dividends]
               for b in divisors]
        image = ax.imshow(acc, origin="lower", vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for i, b in enumerate(divisors):
            for j, a in enumerate(dividends):
                if grid[(a, b)][1]:
                    ax.text(j, i, f"{grid[(a, b)][1]}", ha="center", va="center", fontsize=7, color="white")
        ax.set_xticks(range(len(dividends)), list(dividends))
        ax.set_yticks(range(len(divisors)), list(divisors))
        ax.set_xlabel("dividend digits")
        ax.set_ylabel("divisor digits")
        ax.set_title(f"{model} / {fmt}, N={largest[(model, fmt)]}", fontsize=9)
        fig.colorbar(image, ax=ax, label="accuracy (cell text: n)")
    fig.tight_layout()
    fig.savefig(out / "length_heatmap.png", dpi=120)
    plt.close(fig)
    return True


def report(folders: list[Path], out: Path, keep: Path | None = None) -> list[dict]:
    """Writes the tables and plots for the runs under `folders` (and the rows of `keep` whose runs are not among
    them) into `out`; returns the table rows."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    rows = tested_rows(folders)
    cells = length_cells(rows)
    if keep is not None:
        kept = kept_rows(keep, rows)
        rows += kept
        cells += kept_cells(keep.parent / "length_cells.csv", kept)
    if not rows:
        raise errors.UsageError("run folders", ", ".join(map(str, folders)),
                                "no tested run (a run.json with an accuracy) under them",
                                "pass the folders of runs that got as far as their test")
    rows = sorted(rows, key=lambda r: (r["model"], r["format"], r["test_set"], r["num_demos"], str(r["seed"])))
    pooled = pool(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, pooled, out)
    plot_curves(pooled, out, plt)
    plot_error_kinds(pooled, out, plt)
    with (out / "length_cells.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CELL_COLUMNS)
        writer.writeheader()
        writer.writerows(cells)
    plot_heatmap(rows, cells, out, plt)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = errors.ArgumentParser(prog="python -m longdiv report", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="Run folders, or folders that hold them.")
    parser.add_argument("--out", type=Path, required=True, help="Folder for the tables and plots.")
    parser.add_argument("--keep", type=Path, help="An earlier report's table.csv: its rows whose runs are not found "
                                                  "are kept.")
    args = parser.parse_args(argv)
    if not args.runs and args.keep is None:
        parser.error("pass run folders, --keep TABLE.csv, or both")
    if args.out.exists() and not args.out.is_dir():
        raise errors.UsageError("report folder", f"--out {args.out}", "is a file", "pass a folder for the tables "
                                "and plots")
    rows = report(args.runs, args.out, args.keep)
    print(f"{len(rows)} runs -> {args.out}/table.md, table.csv and plots")
    return 0
