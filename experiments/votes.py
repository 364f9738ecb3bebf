"""Test-time votes: a trained point's checkpoint tested with `--model.votes K` (K traces sampled per problem at a
temperature, the remainder most of them give wins) against its own greedy test on the same problems.

    python -m experiments.votes --point runs/formats/smollm2-subrow-n200-s0-epochs12 [--votes 5] [--temperature 0.7]
                                    [--num_test 200]

The votes run tests the first `--num_test` of the point's 500 interpolate problems (the generator draws the same
problems first whatever the count) into `<point>/votes<K>-t<T>-n<num_test>/`, and is skipped once tested. Writes
reports/votes.json: one record per (point, K, temperature, problems) with the greedy and the voted accuracy on the
same problems, and how often any of the K traces was right (what a perfect vote would reach).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from experiments import runner
from longdiv import runs
from longdiv.stats import accuracy

OUT = Path("reports/votes.json")


def predictions(path: Path) -> dict[int, dict]:
    with (path / "predictions.jsonl").open() as f:
        return {row["index"]: row for row in map(json.loads, f)}


def compare(point: Path, voted_dir: Path) -> dict:
    """The greedy and the voted figures on the problems the votes run tested."""
    greedy, voted = predictions(point), predictions(voted_dir)
    for index, row in voted.items():  # the same problems, or the comparison means nothing
        if greedy[index]["question"] != row["question"]:
            raise ValueError(f"problem {index} differs between {point} and {voted_dir}")
    rows = [(greedy[i], voted[i]) for i in sorted(voted)]
    run = runs.tested(voted_dir)
    return {
        "greedy": accuracy(sum(g["correct"] for g, _ in rows), len(rows)),
        "voted": accuracy(sum(v["correct"] for _, v in rows), len(rows)),
        "any_trace_right": accuracy(sum(v["expected"] in v["votes"] for _, v in rows), len(rows)),
        "unanimous": sum(len(set(v["votes"])) == 1 for _, v in rows),
        "voted_right_greedy_wrong": sum(v["correct"] and not g["correct"] for g, v in rows),
        "voted_wrong_greedy_right": sum(g["correct"] and not v["correct"] for g, v in rows),
        "eval_seconds": run["eval_seconds"],
        "greedy_eval_seconds_500": runs.tested(point)["eval_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--point", type=Path, required=True, help="a tested run folder with checkpoints/last.ckpt")
    parser.add_argument("--votes", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--num_test", type=int, default=200)
    args = parser.parse_args()
    fit = runs.tested(args.point)
    if fit is None:
        parser.error(f"{args.point} holds no tested run")
    voted_dir = args.point / f"votes{args.votes}-t{args.temperature}-n{args.num_test}"
    if runs.tested(voted_dir) is None:
        runner.cli(["test", "--config", runner.CONFIG, f"--data.format={fit['format']}",
                    f"--data.num_demos={fit['num_demos']}", f"--data.num_test={args.num_test}",
                    f"--model.votes={args.votes}", f"--model.temperature={args.temperature}",
                    f"--ckpt_path={args.point / 'checkpoints' / 'last.ckpt'}",
                    f"--trainer.default_root_dir={voted_dir}"])
    key = {"point": str(args.point), "votes": args.votes, "temperature": args.temperature, "num_test": args.num_test}
    records = [r for r in (json.loads(OUT.read_text())["records"] if OUT.is_file() else [])
               if {k: r[k] for k in key} != key]
    records.append({**key, **compare(args.point, voted_dir)})
    OUT.write_text(json.dumps({
        "question": "does voting over sampled traces at test time beat one greedy trace? (same checkpoint, same "
                    "problems, this CPU)",
        "records": records,
    }, indent=2) + "\n")
    last = records[-1]
    print(f"greedy {last['greedy']['accuracy']:.1%}, {args.votes} votes {last['voted']['accuracy']:.1%}, any trace "
          f"right {last['any_trace_right']['accuracy']:.1%} ({args.num_test} problems)", flush=True)


if __name__ == "__main__":
    main()
