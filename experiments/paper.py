"""The paper's own format trained until it stops improving (issue 23): a variant of `recchia-*` on the paper's 200
problems with the offline SmolLM2, at GPT-Neo's 2,048-token window by default, its learning curve probed on the
paper's 100 validation problems, then tested on generated interpolate problems: reports/paper.json, paper.png.

    python -m experiments.paper --variant w [--context 2048] [--seed 0] [--probe_every 2] [--patience 2]
                                [--max_epochs 24] [--num_test 100] [--probe forced] [-- extra CLI arguments]

The main recipe (configs/smollm2.yaml: batches of 8, lr 3e-4) with a constant learning rate after the warm-up, so
that training can go on for as long as the curve rises and the curve is not flattened by a decaying schedule. The
fit runs `--probe_every` epochs at a time; each chunk ends with the probe (a validation on the paper's problems,
kept with each epoch's training loss in the run's history.json): `forced` (the default) reads each reference trace
in one pass per window and counts the problems whose whole trace greedy decoding would write (`val/trace_exact`,
`--model.val_probe forced`: minutes where decoding 100 traces of 2,000 tokens takes a quarter of an hour on a
CPU); `decode` writes and scores the traces (`val/remainder_acc`). Training stops when the probe has not reached a
new best for `--patience` probes in a row, or at `--max_epochs`; then the last checkpoint is tested on the first
`--num_test` of the 500 interpolate problems (0: not tested, the probe's curve only; decoding the long variants takes
longer than a lent GPU's call). A run cut short (a session's end) resumes from its last checkpoint
when the command is run again, and a finished one is extended by a larger `--max_epochs`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from experiments import runner
from longdiv import runs
from longdiv.data.formats.recchia import VARIANTS

RUNS = Path("runs/paper")
OUT = Path("reports/paper.json")
PROBES = {"forced": "val/trace_exact", "decode": "val/remainder_acc"}  # --probe: what its history holds


def folder(variant: str, seed: int, context: int, probe: str = "forced") -> Path:
    return RUNS / f"recchia-{variant}-n200-s{seed}-c{context}{'' if probe == 'forced' else '-' + probe}"


def history(path: Path) -> list[dict]:
    file = path / "history.json"
    return json.loads(file.read_text()) if file.is_file() else []


def probes(curve: list[dict]) -> list[float]:
    return [entry[key] for entry in curve for key in PROBES.values() if key in entry]


def flat(curve: list[dict], patience: int) -> bool:
    """True when the last `patience` probes have not beaten the best probe before them."""
    seen = probes(curve)
    return len(seen) > patience and max(seen[-patience:]) <= max(seen[:-patience])


def train(variant: str, seed: int, context: int, probe: str, probe_every: int, patience: int, max_epochs: int,
          extra: list[str]) -> Path:
    """Fits `probe_every` epochs at a time until the probe is flat or `max_epochs` are done; returns the folder."""
    path = folder(variant, seed, context, probe)
    while True:
        curve = history(path)
        done = len(curve)  # epochs finished (a checkpoint may hold part of the next one)
        if done >= max_epochs or flat(curve, patience):
            return path
        ckpt = path / "checkpoints" / "last.ckpt"
        runner.cli(["fit", "--config", runner.CONFIG, f"--data.format=recchia-{variant}", "--data.num_demos=200",
                    f"--seed_everything={seed}", f"--data.context={context}", "--model.schedule=constant",
                    f"--trainer.max_epochs={min(max_epochs, (done // probe_every + 1) * probe_every)}",
                    f"--trainer.check_val_every_n_epoch={probe_every}", f"--model.val_probe={probe}",
                    "--test_after_fit=false",
                    f"--trainer.default_root_dir={path}", *([f"--ckpt_path={ckpt}"] if ckpt.is_file() else []),
                    *extra])


def test(path: Path, num_test: int, extra: list[str]) -> Path | None:
    """The last checkpoint on the first `num_test` interpolate problems, once per trained length (none for 0)."""
    if num_test == 0:
        return None
    tested = path / f"test-e{len(history(path))}-t{num_test}"
    if runs.tested(tested) is None:
        runner.cli(["test", f"--ckpt_path={path / 'checkpoints' / 'last.ckpt'}", f"--data.num_test={num_test}",
                    f"--trainer.default_root_dir={tested}", *extra])
    return tested


def record(variant: str, probe: str, path: Path, tested: Path | None, patience: int) -> dict:
    fit, curve = runs.read(path), history(path)
    test = runs.tested(tested) if tested else {"metrics": {}, "eval_seconds": None, "git_commit": fit.get("git_commit")}
    keep = ("n_eval", "correct", "accuracy", "wilson_low", "wilson_high", "parse_failures")
    return {
        "variant": variant, "format": f"recchia-{variant}", "context": fit["context"],
        "seed": fit["config"]["seed_everything"], "probe": PROBES[probe],
        "epochs": len(curve), "stopped": "probe flat" if flat(curve, patience) else "max_epochs",
        "history": curve,
        "best_probe": max(probes(curve), default=None),
        "interpolate": {k: test[k] for k in keep} if tested else None,
        "error_kinds": {k.removeprefix("test/err_"): int(v) for k, v in test["metrics"].items() if "err_" in k},
        "mean_tokens": round(fit["mean_tokens"], 1), "max_tokens": fit["max_tokens"],
        "train_windows": fit["train_windows"], "fit_seconds": fit.get("fit_seconds"),
        "eval_seconds": test["eval_seconds"], "device": fit["device"], "precision": fit["precision"],
        "run_dir": str(path), "test_dir": str(tested) if tested else None, "git_commit": test["git_commit"],
    }


def save(new: list[dict]) -> None:
    """Adds `new` records to reports/paper.json (each replacing an earlier one of its run) and plots them all."""
    done = json.loads(OUT.read_text())["records"] if OUT.is_file() else []
    done = [r for r in done if r["run_dir"] not in {n["run_dir"] for n in new}] + new
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"command": "python -m experiments.paper", "records": done}, indent=1) + "\n")
    plot(done, OUT.with_suffix(".png"))


def plot(records: list[dict], path: Path) -> None:
    fig, (loss_ax, probe_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for r in records:
        label = f"{r['format']} (window {r['context']}, seed {r['seed']})"
        epochs = [e["epoch"] + 1 for e in r["history"]]
        loss_ax.plot(epochs, [e["train_loss"] for e in r["history"]], marker=".", label=label)
        probed = [(e["epoch"] + 1, e[r["probe"]]) for e in r["history"] if r["probe"] in e]
        probe_ax.plot(*zip(*probed, strict=True), marker="o", label=f"{label}: {r['probe']}")
    loss_ax.set(xlabel="epoch", ylabel="training loss (mean per token)", yscale="log")
    probe_ax.set(xlabel="epoch", ylabel="the paper's 100 validation problems right", ylim=(0, 1))
    probe_ax.axhline(0.8, color="gray", linestyle=":", label="the paper's GPT-Neo-125M (>80%)")
    probe_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> None:
    own, extra = runner.split_extra(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=VARIANTS, default="w")
    parser.add_argument("--context", type=int, default=2048, help="the window in tokens; 2048 is GPT-Neo's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe_every", type=int, default=2, help="epochs between probes")
    parser.add_argument("--patience", type=int, default=2, help="probes without a new best before stopping")
    parser.add_argument("--max_epochs", type=int, default=24)
    parser.add_argument("--num_test", type=int, default=100)
    parser.add_argument("--probe", choices=PROBES, default="forced",
                        help="forced: traces greedy decoding would write whole, read in one pass; decode: written")
    args = parser.parse_args(own)
    path = train(args.variant, args.seed, args.context, args.probe, args.probe_every, args.patience,
                 args.max_epochs, extra)
    tested = test(path, args.num_test, extra)
    new = record(args.variant, args.probe, path, tested, args.patience)
    save([new])
    scored = new["interpolate"]
    tested = f", interpolate {scored['accuracy']:.1%} ({scored['correct']}/{scored['n_eval']})" if scored else ""
    print(f"{new['format']}: {new['epochs']} epochs ({new['stopped']}), best probe {new['best_probe']}{tested}")


if __name__ == "__main__":
    main()
