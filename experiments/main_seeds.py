"""Is the default recipe (`--model.precision auto`, bf16 on a CPU with native bf16) as accurate as the fp32 recipe?
The main job's runs with training seeds 0 and 1, pooled, against the fp32 recipe's two seeds (reports/demos.json:
`subrow`, N=200, the same 500 interpolate problems).

    python -m longdiv fit --config configs/smollm2.yaml --seed_everything 1     # the second seed (the first: make main)
    python -m experiments.main_seeds RUN_DIR...                                 # writes reports/main_seeds.json

Each run folder must hold a tested run of the main job's config (the seed aside) with the same data hash.
"""

import argparse
import json
from pathlib import Path

from experiments.main import same_job
from longdiv import runs
from longdiv.stats import accuracy

OUT = Path("reports/main_seeds.json")
FP32 = Path("reports/demos.json")


def pooled(records: list[dict]) -> dict:
    return accuracy(sum(r["correct"] for r in records), sum(r["n_eval"] for r in records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    seeds = []
    for run in args.runs:
        record = runs.tested(run)
        if record is None:
            raise SystemExit(f"{run}: no tested run record")
        config = json.loads(json.dumps(record["config"]))
        seed = config.pop("seed_everything")
        if not same_job(config | {"seed_everything": 0}):
            raise SystemExit(f"{run}: not a run of the main job's config")
        seeds.append({"seed": seed, "run_dir": str(run), "correct": record["correct"], "n_eval": record["n_eval"],
                      "accuracy": record["accuracy"], "wilson_low": record["wilson_low"],
                      "wilson_high": record["wilson_high"], "precision": record.get("precision"),
                      "machine": record.get("machine"), "data_hash": record["data_hash"],
                      "fit_seconds": record.get("fit_seconds"), "eval_seconds": record.get("eval_seconds")})
    if len({s["data_hash"] for s in seeds}) != 1 or len({s["seed"] for s in seeds}) != len(seeds):
        raise SystemExit("the runs must share their data and differ in their training seed")
    fp32 = [r for r in json.loads(FP32.read_text())["records"]
            if (r["format"], r["num_demos"]) == ("subrow", 200) and r["seed"] in (0, 1)]
    new, old = pooled(seeds), pooled(fp32)
    report = {
        "question": "is the default recipe (precision auto) as accurate as the fp32 recipe, pooled over two seeds?",
        "default": {"seeds": seeds, "pooled": new},
        "fp32": {"source": str(FP32), "seeds": [{k: r[k] for k in ("seed", "correct", "n_eval", "run_dir")}
                                                for r in fp32], "pooled": old},
        "intervals_overlap": new["wilson_high"] >= old["wilson_low"] and old["wilson_high"] >= new["wilson_low"],
    }
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
