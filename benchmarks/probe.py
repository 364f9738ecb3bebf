"""What a validation probe costs on the paper's long traces: reading each reference trace in one pass per window
(`--model.val_probe forced`) against writing it token by token (`decode`, what testing does), on the same problems.

    python -m benchmarks.probe [--format recchia-w] [--context 2048] [--problems 10] [--device cpu]
                               [--out reports/probe.json]

The offline SmolLM2 with its pretrained weights, in bf16 where the machine multiplies it natively (what `precision
auto` decodes in), on the first `--problems` of the paper's 100 validation problems in `--format` at the
`--context` window: the same problems the paper experiment probes. Decoding runs them as one batch with
evaluation's budgets (each reference's length plus 16 tokens); a model that has not learned the format writes to
its budget, about what a trained one writing right traces writes, so the decode time is that of a real probe.
Each method runs once after a warm-up on one of the problems. Then the forced reading runs over the traces the
decoding wrote, as if they were the references: each should read as exact, and the ones that do not are where one
pass over a window and decoding step by step over a cache round differently (`agreement`).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch

from experiments.runner import PAPER_VAL
from longdiv import hardware
from longdiv.data.datamodule import DivisionData, collate_eval
from longdiv.models.decode import decode, forced
from longdiv.models.loading import load


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="recchia-w")
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--problems", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("reports/probe.json"))
    args = parser.parse_args(argv)
    machine = hardware.machine(args.device)
    dtype = torch.bfloat16 if machine.fast_bf16 else torch.float32
    data = DivisionData(format=args.format, tokenizer_name="smollm2", context=args.context, val_file=PAPER_VAL,
                        num_test=1)
    data.setup()
    examples = data.eval_examples["val"][: args.problems]
    base, tokenizer = load("smollm2")
    model = copy.deepcopy(base).to(device=args.device, dtype=dtype).eval()
    del base
    eos = tokenizer.eos_token_id

    def read(chosen) -> float:
        start = time.perf_counter()
        for example in chosen:
            forced(model, example.prompt_ids, example.completion_ids, args.context)
        return time.perf_counter() - start

    def write(chosen) -> tuple[float, list[list[int]]]:
        batch = collate_eval(list(enumerate(chosen)), tokenizer.pad_token_id, args.context)
        start = time.perf_counter()
        rows = decode(model, batch["input_ids"].to(args.device), batch["attention_mask"].to(args.device),
                      batch["max_new_tokens"].to(args.device), eos, context=args.context)
        return time.perf_counter() - start, rows

    read(examples[-1:])  # warm-ups, on one problem
    write(examples[-1:])
    reference_tokens = sum(len(e.completion_ids) for e in examples)
    read_seconds = read(examples)
    write_seconds, rows = write(examples)
    written = sum(map(len, rows))
    own = [forced(model, e.prompt_ids, row, args.context) for e, row in zip(examples, rows, strict=True)]
    report = {
        "command": f"python -m benchmarks.probe --format {args.format} --context {args.context} "
                   f"--problems {args.problems} --device {args.device}",
        "machine": machine.as_dict(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."), "format": args.format, "context": args.context,
        "problems": len(examples), "reference_tokens": reference_tokens,
        "forced": {"seconds": round(read_seconds, 2), "tokens_per_second": round(reference_tokens / read_seconds, 1)},
        "decode": {"seconds": round(write_seconds, 2), "tokens_written": written,
                   "tokens_per_second": round(written / write_seconds, 1)},
        "decode_over_forced": round(write_seconds / read_seconds, 2),
        "agreement": {"traces": len(own), "read_exact": sum(f.exact for f in own),
                      "mean_share_before_first_difference": round(sum(f.right / f.tokens for f in own) / len(own), 4),
                      "traces_longer_than_context": sum(len(e.prompt_ids) + len(r) > args.context
                                                        for e, r in zip(examples, rows, strict=True))},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
