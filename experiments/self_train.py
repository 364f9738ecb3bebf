"""Self-training at small N (issue 24), reported as its own row: a screened idea's checkpoint writes traces for M
problems drawn from the generator's train split, the traces whose remainder is right join the same N
demonstrations (`--data.self_traces`), and the idea's recipe is fitted again from the pretrained model and tested
like a screen. The row has used N demonstrations and the answers of M problems: it is "N + M answers", never an
N-demonstration figure.

    python -m experiments.self_train --idea coverage [--num_demos 50] [--answers 500] [--seed 0] [--num_test 200]

The screen (`python -m experiments.small_n --ideas IDEA`) must be tested first. Runs live in
runs/self_train/<idea>-n<N>-s<seed>-m<M>/ (`problems.txt`, `traces/` the checkpoint's test on them, `fit/`); each
step is skipped once done. Writes reports/self_train.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from experiments import runner, small_n
from longdiv import runs
from longdiv.data.problems import generate

RUNS = runs.root() / "self_train"
OUT = Path("reports/self_train.json")
SEED_OFFSET = 424_242  # the M problems' draw: a stream of its own, apart from any demonstration or test draw


def folder(idea: str, num_demos: int, seed: int, answers: int) -> Path:
    return RUNS / f"{idea}-n{num_demos}-s{seed}-m{answers}"


def run(idea: str, num_demos: int, seed: int, answers: int, num_test: int, extra: list[str]) -> dict:
    screened = small_n.folder(idea, num_demos, seed, small_n.SCREEN_TEST)
    screen = runs.tested(screened)
    if screen is None:
        raise SystemExit(f"{screened} is not tested: run python -m experiments.small_n --ideas {idea} first")
    path = folder(idea, num_demos, seed, answers)
    problems = path / "problems.txt"
    if not problems.is_file():
        path.mkdir(parents=True, exist_ok=True)
        drawn = generate("train", answers, seed + SEED_OFFSET)
        problems.write_text("".join(f"{p.question}|{p.remainder}\n" for p in drawn))
    traces = path / "traces"
    if runs.tested(traces) is None:
        runner.cli(["test", f"--ckpt_path={screened / 'checkpoints' / 'last.ckpt'}", f"--data.test_file={problems}",
                    f"--trainer.default_root_dir={traces}", *extra])
    fit = path / "fit"
    small_n.fit(fit, idea, num_demos, seed, num_test, [f"--data.self_traces={traces / 'predictions.jsonl'}", *extra])
    written = [json.loads(line) for line in (traces / "predictions.jsonl").read_text().splitlines()]
    kept = [r for r in written if r["correct"]]
    return {"idea": f"{idea}+self{answers}", "base_idea": idea, "answers": answers,
            "kept": len(kept), "kept_right_throughout": sum(r.get("error_kind") is None for r in kept),
            "screen_accuracy": screen["accuracy"], "num_test": num_test, **runner.record(fit),
            "self_traces": runs.tested(fit)["self_traces"]}


def main(argv: list[str] | None = None) -> None:
    own, extra = runner.split_extra(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idea", choices=sorted(small_n.IDEAS), default="coverage")
    parser.add_argument("--num_demos", type=int, default=50)
    parser.add_argument("--answers", type=int, default=500, help="problems the checkpoint writes traces for (M)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_test", type=int, default=small_n.SCREEN_TEST)
    args = parser.parse_args(own)
    record = run(args.idea, args.num_demos, args.seed, args.answers, args.num_test, extra)
    done = json.loads(OUT.read_text())["records"] if OUT.is_file() else []
    done = [r for r in done if r["run_dir"] != record["run_dir"]] + [record]
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps({"command": "python -m experiments.self_train", "records": done}, indent=1) + "\n")
    print(f"{record['idea']} N={args.num_demos} + {args.answers} answers ({record['kept']} traces kept): "
          f"{record['accuracy']:.1%} [{record['wilson_low']:.1%}, {record['wilson_high']:.1%}] of {record['n_eval']}",
          flush=True)


if __name__ == "__main__":
    main()
