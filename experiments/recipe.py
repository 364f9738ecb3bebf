"""Training-recipe variants of the best point (`subrow`, the paper's 200 problems, training seed 0) against the main
recipe, each tested like every point of reports/formats.json: 500 generated interpolate problems and the paper's 100
validation problems. A variant is an overlay in configs/recipes/ composed after configs/smollm2.yaml.

    python -m experiments.recipe [--recipes lr6e-4 ...] [--format subrow] [-- extra CLI arguments for every run]

Each variant lives in runs/formats/smollm2-<format>-n200-s0-<recipe>/ and is skipped once tested, so the script
resumes. Writes reports/recipe.json: the variants beside their formats' main-recipe records (reports/formats.json).
"""

import argparse
import sys
from pathlib import Path

from experiments import runner

OUT = Path("reports/recipe.json")


def main(argv: list[str]) -> None:
    argv, extra = runner.split_extra(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["lr6e-4"], choices=sorted(runner.configs("recipes")))
    parser.add_argument("--format", default="subrow")
    args = parser.parse_args(argv)
    main_recipe = {r["format"]: r for r in runner.read_report(Path("reports/formats.json"))["records"]}
    formats = [r["format"] for r in runner.read_report(OUT).get("variants", [])] + [args.format]
    for recipe in args.recipes:
        overlay = f"recipes/{recipe}"
        record = runner.run(args.format, 200, 0, overlay, extra=extra)
        runner.update_report(
            OUT, [{"recipe": recipe, "overlay": f"configs/{overlay}.yaml", **record}],
            lambda r: (r["recipe"], r["format"]), under="variants",
            question="does a change to the training recipe move the best point's accuracy? (this CPU, same data, "
                     "seed and test problems as the main recipe's record)",
            # Each variant's format in the main recipe, where reports/formats.json has it.
            main_recipe={fmt: main_recipe[fmt] for fmt in dict.fromkeys(formats) if fmt in main_recipe})
        print(f"{recipe} ({args.format}): {record['accuracy']:.1%} ({record['correct']}/{record['n_eval']})",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
