"""What the paper's own format costs to train: `Trainer.fit` tokens/s of the offline SmolLM2 on `recchia-w`
demonstrations of the paper's 200 training problems in GPT-Neo's 2,048-token windows, with its whole vocabulary
and with `--model.restrict_vocab`, in micro-batches of 1 and of 2 (grouped by length), and with `--compile` the
restricted layer in micro-batches of 1 under `--model.compile`, measured side by side in one run in the precision
`--model.precision auto` picks here. Writes reports/speed/paper_w.json.

    python -m benchmarks.paper_speed [--micro_steps 16] [--warmup 4] [--format recchia-w] [--context 2048]
        [--micro_batches 1 2] [--compile] [--out reports/speed/paper_w.json]

Every case trains from the same pretrained weights on the same demonstrations, with optimizer steps of 8
demonstrations (micro-batches of 1 accumulated 8 times, or of 2 accumulated 4 times), timed after `--warmup`
micro-batches; tokens are the real ones (no padding), so the cases compare the cost of the same work. The warm-up's
seconds (`warmup_seconds`) hold the compilation of a compiled case.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks.speed import PAPER_TRAIN, StepTimer
from longdiv import hardware, identity
from longdiv.callbacks.records import peak_rss_gb
from longdiv.models.module import DivisionLM

OUT = Path("reports/speed/paper_w.json")


def measure(fmt: str, context: int, restrict: bool, micro_batch: int, micro_steps: int, warmup: int,
            compiled: bool = False) -> dict:
    torch.manual_seed(0)
    module = DivisionLM(model="smollm2", format=fmt, restrict_vocab=restrict, compile=compiled)
    dm = identity.data_for(module, num_demos=200, train_file=PAPER_TRAIN, num_val=1, num_test=1,
                           batch_size=micro_batch, context=context)
    dm.setup()
    timer = StepTimer(warmup)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=warmup + micro_steps,
                        accumulate_grad_batches=8 // micro_batch,
                        logger=False, precision="32-true", enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer])
    began = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    return {"format": fmt, "context": context, "restrict_vocab": restrict, "micro_batch": micro_batch,
            "compile": compiled, "warmup_seconds": round(timer.start - began, 1),
            "output_rows": len(module.output_vocab) if restrict
                else module.model.get_output_embeddings().weight.shape[0],
            "compute": module.compute["train"], "fit_tokens": timer.tokens,
            "fit_seconds": round(timer.end - timer.start, 1),
            "fit_tokens_per_second": round(timer.tokens / (timer.end - timer.start), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", default="recchia-w")
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--micro_steps", type=int, default=16, help="timed micro-batches per case")
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--micro_batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--compile", action="store_true",
                        help="also the restricted layer in micro-batches of 1 under --model.compile")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    machine = hardware.machine(torch.device("cpu"))
    cases = []
    plan = [(False, 1, False), *((True, m, False) for m in args.micro_batches), *[(True, 1, True)] * args.compile]
    for restrict, micro_batch, compiled in plan:
        # a micro-batch of 2 takes half as many micro-batches for the same demonstrations
        steps = args.micro_steps // micro_batch
        cases.append(measure(args.format, args.context, restrict, micro_batch, steps, args.warmup, compiled))
        print(json.dumps(cases[-1]), flush=True)
    for case in cases:  # ratios within this run, against the whole vocabulary in micro-batches of 1
        case["fit_vs_first"] = round(case["fit_tokens_per_second"] / cases[0]["fit_tokens_per_second"], 3)
        if case["compile"]:  # and against the same case uncompiled
            eager = next(c for c in cases if not c["compile"] and c["restrict_vocab"] and c["micro_batch"] == 1)
            case["fit_vs_eager"] = round(case["fit_tokens_per_second"] / eager["fit_tokens_per_second"], 3)
    report = {"machine": {"cpu": machine.model, "bf16_features": machine.bf16_features,
                         "threads": torch.get_num_threads()},
              "command": "python -m benchmarks.paper_speed " + " ".join(
                  f"--{k}" if v is True else f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                  for k, v in vars(args).items() if k != "out" and v is not False),
              "peak_rss_gb": round(peak_rss_gb(), 2), "cases": cases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
