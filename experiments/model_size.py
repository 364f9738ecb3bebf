"""The model-size axis (issue 27): Gemma 3 270M (268M parameters) beside SmolLM2-135M on `subrow`, through the
demonstration-count sweep and its report.

    python -m experiments.model_size [--points gemma3-270m:50:0 ...] [--control] [-- extra CLI arguments per run]

A point MODEL:N:SEED is a point of configs/sweeps/demos.yaml (the sweep recipe: generator demonstrations, 150
optimizer steps, 500 interpolate problems), run by `python -m longdiv sweep` into runs/model_size/ with the output
layer restricted to the format's characters (`--model.restrict_vocab=true`, 2.4x faster fits of Gemma on the CPU,
reports/speed/models.json) and `--model.precision auto` (bf16 on CPUs with native bf16). The tested points join
SmolLM2's in reports/ablation/ (`python -m longdiv report runs/model_size --keep reports/ablation/table.csv`), so
its accuracy.png has one line per model. `--control` also runs SmolLM2 at N=200, seed 0 in the same recipe
(runs/model_size_control/), beside its fp32 whole-vocabulary point of reports/ablation, to show what the recipe
change alone moves. A point already tested is skipped, so the script resumes.

reports/model_size.json gets each point's row (accuracy, interval, first wrong steps, fit and test time, machine)
and, where both are measured, what doubling the model moves against what doubling N moves.

    python -m experiments.model_size --screens steps300 lr1e-4

screens what could lift Gemma at N=200, seed 0 (the screening protocol: one seed, the first 200 interpolate
problems), each a recipe of configs/recipes/ by name composed after the recipe above: `steps300` trains 300 optimizer
steps instead of 150 (its training loss was still falling), `lr1e-4` a third of the learning rate (3e-4 was chosen for
SmolLM2). Each runs into runs/model_size_screens/NAME/ and goes into reports/model_size.json under `screens`.
`--screen_test 500` also tests a screen's checkpoint on the first 500 problems (runs/model_size_screens/NAME/test500/),
for a screen worth comparing with the points above.

    python -m experiments.model_size --diagnose RUN_DIR [--problems 50]

reads the first `--problems` training demonstrations and test problems of a run through its checkpoint under teacher
forcing (one pass, its own output layer): for the digits the trace brings down from the question's listing (the
value digit of each labelled line) and for the other tokens, how often the greedy choice is right and the mean
probability of the right token, and how many traces greedy decoding would write whole. It goes into
reports/model_size.json under `diagnosis`, one entry per run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments import runner
from longdiv import report, runs, sweep
from longdiv.data.verify import KINDS
from longdiv.stats import wilson

SWEEP = "configs/sweeps/demos.yaml"
RUNS = runs.root() / "model_size"
CONTROL = runs.root() / "model_size_control"
TABLE = Path("reports/ablation/table.csv")
OUT = Path("reports/model_size.json")
RECIPE = ["--model.restrict_vocab=true"]
POINTS = ["gemma3-270m:50:0", "gemma3-270m:200:0", "gemma3-270m:100:0", "gemma3-270m:200:1"]
SCREENS = runner.configs("recipes")
SCREEN_RUNS = runs.root() / "model_size_screens"
SCREEN_TEST = 200
SCREEN_POINT = "gemma3-270m:200:0"
MODELS = ("smollm2", "gemma3-270m")


def run_point(point: str, runs_dir: Path, extra: list[str]) -> int:
    model, num_demos, seed = point.split(":")
    return sweep.main([SWEEP, "--runs_dir", str(runs_dir), "--models", model, "--formats", "subrow",
                       "--num_demos", num_demos, "--seeds", seed, "--", *RECIPE, *extra])


def folder_name(point: str) -> str:
    """The folder `python -m longdiv sweep` runs a MODEL:N:SEED point of `subrow` in."""
    model, num_demos, seed = point.split(":")
    return runs.point_name({"model.model": model, "data.format": "subrow", "data.num_demos": num_demos,
                            "seed_everything": seed})


def timing(folder: Path) -> dict:
    """Where a point ran, in what, and how long its fit and test took: those fields of its row (longdiv.report.row),
    empty when its run is not here."""
    if not folder.is_dir() or runs.tested(folder) is None:
        return {}
    row = report.row(folder)
    return {k: row[k] for k in ("device", "precision", "restrict_vocab", "fit_seconds", "eval_seconds")}


def table_row(folder: Path) -> dict:
    """A tested run's row as reports/ablation/table.csv holds it, with its timing."""
    return report.table_row(report.row(folder)) | timing(folder)


def pooled(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """(model, N) -> the seeds pooled: correct, n, accuracy, interval, first wrong steps."""
    out = {}
    for p in report.pool(rows):
        out[(p["model"], p["num_demos"])] = {
            "model": p["model"], "num_demos": p["num_demos"], "seeds": p["seeds"], "correct": p["correct"], "n": p["n"],
            "accuracy": round(p["accuracy"], 4), "wilson": [round(p["wilson_low"], 4), round(p["wilson_high"], 4)],
            "first_wrong_step": {k: p[f"err_{k}"] for k in KINDS}}
    return out


def comparisons(points: dict[tuple[str, int], dict]) -> list[dict]:
    """At each N with both models: Gemma minus SmolLM2 (doubling the model) beside SmolLM2 at 2N minus SmolLM2 at N
    (doubling the demonstrations), in accuracy points."""
    out = []
    for (model, n), small in sorted(points.items()):
        big = points.get(("gemma3-270m", n))
        if model != "smollm2" or big is None:
            continue
        doubled = points.get(("smollm2", 2 * n))
        out.append({"num_demos": n, "double_the_model": round(100 * (big["accuracy"] - small["accuracy"]), 1),
                    "double_n": None if doubled is None else round(100 * (doubled["accuracy"] - small["accuracy"]), 1)})
    return out


def brought_down(text: str) -> list[int]:
    """Offsets in a `subrow` trace of the digits brought down from the question: each labelled line's (lower-case
    letter) first value digit."""
    out, at = [], 0
    for line in text.split("\n"):
        if line[:1].islower():
            out.append(at + 2)
        at += len(line) + 1
    return out


def diagnose(folder: Path, problems: int) -> dict:
    """Teacher-forced greedy choices of a run's checkpoint on its first training and test traces (see the module)."""
    import yaml

    from longdiv import hardware, identity
    from longdiv.models.decode import forced

    config = yaml.safe_load((folder / "config.yaml").read_text())
    module, _ = identity.load(folder / "checkpoints" / "last.ckpt")
    model, tokenizer, vocab = module.model.eval(), module.tokenizer, module.output_vocab
    data = identity.data_for(module, **{k: v for k, v in config["data"].items() if k not in identity.LINKED["data"]}
                             | {"num_test": problems})
    data.setup()
    out = {"run_dir": str(folder), "model": config["model"]["model"], "num_demos": config["data"]["num_demos"],
           "device": f"cpu: {hardware.machine('cpu').model}", "dtype": "float32", "problems": problems}
    for name, examples in (("train", data.train_examples[:problems]), ("test", data.eval_examples["test"])):
        tally = {"exact": 0, "brought_down": [0, 0, 0.0], "other": [0, 0, 0.0]}  # [right, n, summed probability]
        for ex in examples:
            pieces = tokenizer.convert_ids_to_tokens(ex.completion_ids[:-1])
            if any(len(piece) != 1 for piece in pieces):
                raise ValueError(f"{folder}: a completion token is not one character; the offsets would not be tokens")
            marked = set(brought_down("".join(pieces)))
            found = forced(model, ex.prompt_ids, ex.completion_ids, vocab=vocab)
            tally["exact"] += found.exact
            for i, (hit, chance) in enumerate(zip(found.hits.tolist(), found.chance.tolist(), strict=True)):
                kind = tally["brought_down" if i in marked else "other"]
                kind[0], kind[1], kind[2] = kind[0] + hit, kind[1] + 1, kind[2] + chance
        out[name] = {"traces": len(examples), "exact": tally["exact"]} | {
            kind: {"tokens": n, "greedy_right": round(ok / n, 4), "mean_probability": round(p / n, 4)}
            for kind, (ok, n, p) in ((k, tally[k]) for k in ("brought_down", "other"))}
    return out


def main(argv: list[str]) -> int:
    own, extra = runner.split_extra(argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", nargs="*", default=POINTS, help="MODEL:N:SEED points of the sweep, in this order")
    parser.add_argument("--control", action="store_true", help="also SmolLM2, N=200, seed 0 in the same recipe")
    parser.add_argument("--screens", nargs="*", default=[], choices=sorted(SCREENS),
                        help="recipe changes for Gemma at N=200, seed 0, tested on 200 problems")
    parser.add_argument("--screen_test", type=int, default=SCREEN_TEST,
                        help="the screens' checkpoints tested on this many problems too, if more than 200")
    parser.add_argument("--diagnose", type=Path, help="a run folder to read under teacher forcing (nothing is run)")
    parser.add_argument("--problems", type=int, default=50, help="with --diagnose: training and test traces read")
    args = parser.parse_args(own)
    if args.diagnose is not None:
        found = diagnose(args.diagnose, args.problems)
        runner.update_report(OUT, [found], lambda d: d["run_dir"], under="diagnosis")
        print(json.dumps(found))
        return 0
    failed = 0
    for point in args.points:
        failed |= run_point(point, RUNS, extra)
    if args.control:
        failed |= run_point("smollm2:200:0", CONTROL, extra)
    for name in args.screens:
        failed |= run_point(SCREEN_POINT, SCREEN_RUNS / name,
                            ["--config", SCREENS[name], f"--data.num_test={SCREEN_TEST}", *extra])
        fitted, retest = SCREEN_RUNS / name / folder_name(SCREEN_POINT), SCREEN_RUNS / name / f"test{args.screen_test}"
        if args.screen_test > SCREEN_TEST and runs.tested(fitted) is not None and runs.tested(retest) is None:
            runner.cli(["test", f"--ckpt_path={fitted / 'checkpoints' / 'last.ckpt'}",
                        f"--data.num_test={args.screen_test}", f"--trainer.default_root_dir={retest}", *extra])
    if RUNS.is_dir():
        report.main([str(RUNS), "--keep", str(TABLE), "--out", str(TABLE.parent)])
    rows = [r for r in report.kept_rows(TABLE, []) if r["model"] in MODELS and r["format"] == "subrow"
            and r["test_set"] == "interpolate"]
    earlier = runner.read_report(OUT)  # the times of points whose runs are gone, and the commands so far
    times = {r["run_dir"]: r for r in earlier.get("runs", []) if "fit_seconds" in r}
    for r in rows:
        r |= timing(Path(r["run_dir"])) or {k: v for k, v in times.get(r["run_dir"], {}).items() if k not in r}
    control = [table_row(folder) for folder in runs.find_tested([CONTROL])] if CONTROL.is_dir() else []
    control = control or earlier.get("control", [])
    screens = [{"screen": name, "recipe_change": ["--config", SCREENS[name]]} | table_row(folder)
               for name in SCREENS if (SCREEN_RUNS / name).is_dir()  # a screen's fit and its retest, if any
               for folder in runs.find_tested([SCREEN_RUNS / name])]
    for c in [*control, *screens]:
        low, high = wilson(c["correct"], c["n"])
        c["wilson"] = [round(low, 4), round(high, 4)]
    points = pooled(rows)
    runner.update_report(
        OUT, screens, lambda s: s["run_dir"], under="screens",
        question="Does doubling the model (SmolLM2-135M to Gemma 3 270M) move subrow's accuracy as much as doubling "
                 "the demonstrations does?",
        # every invocation that wrote this report, oldest first: a point's record comes from the one that ran it
        commands=list(dict.fromkeys([*earlier.get("commands", filter(None, [earlier.get("command")])),
                                     "python -m experiments.model_size " + " ".join(argv)])),
        recipes={"smollm2": "reports/ablation: fp32, whole vocabulary (the Xeon, 2026-11)",
                 "gemma3-270m": "precision auto (bf16 on native-bf16 CPUs), --model.restrict_vocab=true"},
        runs=rows, pooled=list(points.values()), comparisons=comparisons(points), control=control)
    print(json.dumps(comparisons(points)))
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
