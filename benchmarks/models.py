"""What an experiment costs per model and output layer: training and decoding tokens/s of the offline SmolLM2-135M
and Gemma 3 270M, each with its whole vocabulary and with `--model.restrict_vocab`, measured side by side in one
run on this machine, in the precision `--model.precision auto` picks here. Writes reports/speed/models.json.

    python -m benchmarks.models [--models smollm2 gemma3-270m] [--micro_steps 24] [--warmup 8] [--problems 50]

Training: `Trainer.fit` on the paper's `subrow` demonstrations in the main recipe's micro-batches of 1 accumulated
to 8, timed after `--warmup` micro-batches (a fresh model per case). Decoding: the batched loop over `--problems`
interpolate prompts in one batch, each row held to its reference trace's length (no early end of text), so every
case decodes the same number of tokens whatever the model writes.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks.speed import PAPER_TRAIN, StepTimer
from longdiv import hardware, identity
from longdiv.models.decode import decode
from longdiv.models.module import DivisionLM

OUT = Path("reports/speed/models.json")


def measure(model: str, restrict: bool, micro_steps: int, warmup: int, problems: int) -> dict:
    torch.manual_seed(0)
    module = DivisionLM(model=model, format="subrow", restrict_vocab=restrict)
    dm = identity.data_for(module, num_demos=200, train_file=PAPER_TRAIN, num_val=1, num_test=problems,
                           batch_size=1, eval_batch_size=problems)
    dm.setup()
    timer = StepTimer(warmup)
    trainer = L.Trainer(max_epochs=1, limit_train_batches=micro_steps, accumulate_grad_batches=8, logger=False,
                        precision="32-true", enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[timer])
    trainer.fit(module, datamodule=dm)
    fit_rate = timer.tokens / (timer.end - timer.start)

    weights = module.model if module.compute["decode"] != "bf16" else copy.deepcopy(module.model).to(torch.bfloat16)
    (batch,) = list(dm.test_dataloader())
    start = time.perf_counter()
    rows = decode(weights.eval(), batch["input_ids"], batch["attention_mask"], batch["max_new_tokens"], eos_id=-1,
                  vocab=module.output_vocab)
    decode_seconds = time.perf_counter() - start
    generated = sum(map(len, rows))
    return {"model": model, "restrict_vocab": restrict, "parameters": sum(p.numel() for p in module.model.parameters()),
            "output_rows": len(module.output_vocab) if restrict
                else module.model.get_output_embeddings().weight.shape[0],
            "compute": module.compute, "fit_tokens_per_second": round(fit_rate, 1),
            "fit_tokens": timer.tokens, "decode_tokens": generated,
            "decode_tokens_per_second": round(generated / decode_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3-270m"])
    parser.add_argument("--micro_steps", type=int, default=24)
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--problems", type=int, default=50)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    machine = hardware.machine(torch.device("cpu"))
    cases = []
    for model in args.models:
        for restrict in (False, True):
            cases.append(measure(model, restrict, args.micro_steps, args.warmup, args.problems))
            print(json.dumps(cases[-1]), flush=True)
    base = {c["model"]: c for c in cases if not c["restrict_vocab"]}
    first = base[args.models[0]]
    for case in cases:  # ratios within this run: against the same model's whole vocabulary, and the first model's
        own = base[case["model"]]
        case["fit_vs_whole_vocab"] = round(case["fit_tokens_per_second"] / own["fit_tokens_per_second"], 3)
        case["decode_vs_whole_vocab"] = round(case["decode_tokens_per_second"] / own["decode_tokens_per_second"], 3)
        case[f"fit_vs_{first['model']}"] = round(case["fit_tokens_per_second"] / first["fit_tokens_per_second"], 3)
        case[f"decode_vs_{first['model']}"] = round(
            case["decode_tokens_per_second"] / first["decode_tokens_per_second"], 3)
    report = {"machine": {"cpu": machine.model, "bf16_features": machine.bf16_features,
                          "cores": torch.get_num_threads()},
              "command": "python -m benchmarks.models " + " ".join(f"--{k} {v}" for k, v in vars(args).items()
                                                                  if k != "out"),
              "cases": cases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
