"""Speed and memory of the offline SmolLM2 pipeline on this machine, written to reports/speed/speed.json.

    python -m benchmarks.speed --ckpt runs/<fit>/checkpoints/last.ckpt --fit_record runs/<fit>/run.json
    python -m benchmarks.speed --device cuda --only gemm train bf16 decode --out speed_gpu.json ...  # on a GPU

- decoding: our batched greedy loop against a per-problem `generate` loop on the same fine-tuned checkpoint, on
  generated interpolate problems; the per-problem loop runs on every `--baseline_every`-th problem (it is slow),
  and both must write the same text for those problems;
- training: tokens/s of `Trainer.fit` against a bare PyTorch loop over the same batches with the same model,
  optimizer and precision; MFU against the matrix-multiply peak of `gemm_peak.py`, measured in the same run;
- memory: peak RSS and tokens/s per micro-batch size on the longest demonstrations (each in its own process),
  and the peak RSS of a full N=200 fit from its run record;
- data: generating, rendering and tokenizing 10,000 problems; model loading: first (GGUF) and cached.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks import gemm_peak
from experiments.runner import PAPER_TRAIN
from longdiv import hardware, identity
from longdiv.callbacks.records import peak_rss_gb
from longdiv.data.datamodule import DivisionData, collate_train
from longdiv.models.decode import decode as our_decode
from longdiv.models.module import DivisionLM, completion_loss


def data(fmt: str, num_test: int = 200, batch_size: int = 2, eval_batch_size: int = 50) -> DivisionData:
    """The paper's 200 training problems and `num_test` interpolate problems in demonstration format `fmt`."""
    dm = DivisionData(format=fmt, num_demos=200, train_file=PAPER_TRAIN, num_val=1, num_test=num_test,
                      tokenizer_name="smollm2", batch_size=batch_size, eval_batch_size=eval_batch_size)
    dm.setup()
    return dm


# Decoding --------------------------------------------------------------------------------------------------------
def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def decode(fmt: str, ckpt: str, baseline_every: int, eval_batch_size: int, peaks: dict, device: str = "cpu",
           bf16: bool = False) -> dict:
    """`bf16`: both loops run on the bf16 copy of the weights that `--model.precision bf16` evaluates with."""
    dm = data(fmt, eval_batch_size=eval_batch_size)
    module = identity.load(ckpt)[0].to(device)
    tok = module.tokenizer
    # The copy a test run decodes on under `--model.precision bf16`, or the fp32 weights.
    model = (copy.deepcopy(module.model).to(torch.bfloat16) if bf16 else module.model).eval()
    examples = dm.eval_examples["test"]
    texts, budgets = {}, {}
    start = time.perf_counter()
    for batch in dm.test_dataloader():
        budget = batch["max_new_tokens"]  # one per row
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        rows = tok.batch_decode(our_decode(model, ids, mask, budget, tok.eos_token_id), skip_special_tokens=True)
        for index, text, row_budget in zip(batch["index"].tolist(), rows, budget.tolist()):
            texts[index], budgets[index] = text, row_budget
    _sync(device)
    batched_seconds = time.perf_counter() - start
    # Tokens each row generated: its text's, and the EOS it ended on unless the budget stopped it first.
    lengths = {i: len(tok(t, add_special_tokens=False)["input_ids"]) for i, t in texts.items()}
    generated = sum(n + (n < budgets[i]) for i, n in lengths.items())

    subset = list(range(0, len(examples), baseline_every))
    same, start = 0, time.perf_counter()
    with torch.no_grad():
        for index in subset:
            ids = torch.tensor([examples[index].prompt_ids], device=device)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=budgets[index],
                                 do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            same += tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True) == texts[index]
    _sync(device)
    single_seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    tokens_per_second = generated / batched_seconds
    batched_rate, single_rate = len(examples) / batched_seconds, len(subset) / single_seconds
    correct = sum(dm.format.parse(texts[i]) == examples[i].problem.remainder for i in texts)
    return {
        "decode_speedup": batched_rate / single_rate,
        "decode_problems_per_second": batched_rate,
        "decode_baseline_problems_per_second": single_rate,
        "decode_problems": len(examples),
        "decode_baseline_problems": len(subset),
        "decode_identical": same,
        "decode_eval_batch_size": eval_batch_size,
        "decode_generated_tokens": generated,
        "decode_tokens_per_second": tokens_per_second,
        "decode_accuracy": correct / len(examples),
        "decode_mfu_fp32": tokens_per_second * 2 * params / peaks["fp32"],
        "decode_mfu_bf16": tokens_per_second * 2 * params / peaks["bf16"],
        "decode_dtype": "bf16" if bf16 else "fp32",
    }


def decode_compare(fmt: str, ckpt: str, eval_batch_size: int, num_test: int, peaks: dict, device: str = "cpu",
                   bf16: bool = False, only: list[str] | None = None, done=lambda found: None) -> dict:
    """Our decode loop against transformers' batched `generate` on the same batches of the same checkpoint: with its
    dynamic cache, its static cache, and the static cache under `torch.compile`, all with the library's SDPA
    attention; ours with longdiv's attention (longdiv.models.attention), and also with SDPA and eager attention (`only`
    picks some of them; `done` gets the record after each method, so that a long compilation cut short keeps what came
    before). Each method's problems/s and useful generated tokens/s (a row's tokens up to its EOS; `generate` keeps
    stepping finished rows until its batch is done, which is counted as time, not tokens), and how many of its texts
    equal ours."""
    from transformers import CompileConfig

    dm = data(fmt, num_test=num_test, eval_batch_size=eval_batch_size)
    module = identity.load(ckpt)[0].to(device)
    model = copy.deepcopy(module.model).to(torch.bfloat16 if bf16 else torch.float32).eval()
    tok = module.tokenizer
    batches = [(b["input_ids"].to(device), b["attention_mask"].to(device), b["max_new_tokens"])
               for b in dm.test_dataloader()]

    # The library's own attention for its own `generate`, and for our loop as the baseline of longdiv's attention
    # (longdiv.models.attention, which the loaded model uses).
    plain = copy.deepcopy(model)
    plain.set_attn_implementation("sdpa")
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")  # attention as plain matmuls: one query token meets the cache

    def ours(ids, mask, budget, on=model):
        return our_decode(on, ids, mask, budget, tok.eos_token_id)

    def library(cache: str | None, compiled: bool):
        options = {"cache_implementation": cache} if cache else {}
        if compiled:
            config = CompileConfig(mode="default")  # reduce-overhead means CUDA graphs
            config._compile_all_devices = True  # generate compiles only on GPUs unless told this
            options["compile_config"] = config
        else:
            options["disable_compile"] = True

        def run(ids, mask, budget):
            with torch.inference_mode():
                out = plain.generate(input_ids=ids, attention_mask=mask, max_new_tokens=int(budget.max()),
                                     do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                     **options)
            rows = []
            for row, own in zip(out[:, ids.shape[1]:].tolist(), budget.tolist()):  # each row to its own budget
                row = row[:own]
                rows.append(row[: row.index(tok.eos_token_id)] if tok.eos_token_id in row else row)
            return rows
        return run

    methods = {"ours": ours, "ours_sdpa": lambda *a: ours(*a, on=plain), "ours_eager": lambda *a: ours(*a, on=eager),
               "hf_dynamic": library(None, False),
               "hf_static": library("static", False), "hf_static_compiled": library("static", True)}
    methods = {name: method for name, method in methods.items() if not only or name in only}
    found, texts = {}, {}
    dtype = "bf16" if bf16 else "fp32"
    for name, method in methods.items():
        # Warm-up outside the timing: kernel choice, and for the compiled method a whole batch, whose shapes the
        # compiled graphs then cover (static cache: prompt width plus budget).
        method(*batches[0]) if name.endswith("compiled") else method(*batches[0][:2], torch.full_like(batches[0][2], 4))
        _sync(device)
        start, rows = time.perf_counter(), []
        for ids, mask, budget in batches:
            rows += method(ids, mask, budget)
        _sync(device)
        seconds = time.perf_counter() - start
        texts[name] = tok.batch_decode(rows, skip_special_tokens=True)
        tokens = sum(len(r) for r in rows)
        found[name] = {"seconds": seconds, "problems_per_second": len(rows) / seconds, "tokens_per_second":
                       tokens / seconds, "generated_tokens": tokens, "same_as_ours": sum(
                           a == b for a, b in zip(texts[name], texts.get("ours", texts[name]))),
                       "mfu": tokens / seconds * 2 * sum(p.numel() for p in model.parameters()) / peaks[dtype]}
        print(name, json.dumps(found[name]), flush=True)
        done({"dtype": dtype, "eval_batch_size": eval_batch_size, "problems": num_test, "checkpoint": ckpt,
              "methods": found})
    return {"dtype": dtype, "eval_batch_size": eval_batch_size, "problems": num_test, "checkpoint": ckpt,
            "methods": found}


def main_job_projection(fmt: str, ckpt: str, eval_batch_size: int, problems: int, peaks: dict, report: dict,
                        device: str = "cpu") -> dict:
    """Minutes the main job (configs/smollm2.yaml: 6 epochs over the paper's 200 demonstrations, a test of 500
    problems) would take in fp32 and in bf16 (`--model.precision bf16`, what `auto` picks on a machine with native
    bf16), from rates measured in this run: the fit rates of its `train` and `bf16copy` sections, and our decode
    loop's generated tokens/s on `problems` problems of `ckpt` in each precision, one after the other. The job's
    work: its training tokens (prompts and traces, every epoch) and the reference traces of its 500 test problems
    (a right trace has exactly those tokens)."""
    epochs = 6
    dm = data(fmt, num_test=500, eval_batch_size=eval_batch_size)
    train_tokens = epochs * sum(len(ex) for ex in dm.train_examples)
    test_tokens = sum(len(ex.completion_ids) for ex in dm.eval_examples["test"])
    fit = {"fp32": report["train_tokens_per_second_fit"], "bf16": report["train_tokens_per_second_fit_bf16_copy"]}
    # Row-steps of the test's batches (in the data module's order; a batch runs until its longest row ends) that
    # hold a reference token: what ordering by trace length leaves to waste.
    lengths = [[len(dm.eval_examples["test"][i].completion_ids) for i in batch["index"].tolist()]
               for batch in dm.test_dataloader()]
    slots = sum(max(batch) * len(batch) for batch in lengths)
    found = {"epochs": epochs, "train_tokens": train_tokens, "test_tokens": test_tokens,
             "test_row_steps_useful": test_tokens / slots, "checkpoint": ckpt,
             "decode_problems": problems, "eval_batch_size": eval_batch_size}
    for precision in ("fp32", "bf16"):
        decoded = decode_compare(fmt, ckpt, eval_batch_size, problems, peaks, device, precision == "bf16", ["ours"])
        rate = decoded["methods"]["ours"]["tokens_per_second"]
        fit_minutes, test_minutes = train_tokens / fit[precision] / 60, test_tokens / rate / 60
        found[precision] = {"fit_tokens_per_second": fit[precision], "decode_tokens_per_second": rate,
                            "decode_mfu": decoded["methods"]["ours"]["mfu"], "fit_minutes": fit_minutes,
                            "test_minutes": test_minutes, "minutes": fit_minutes + test_minutes}
    found["bf16_speedup"] = found["fp32"]["minutes"] / found["bf16"]["minutes"]
    return found


# Training ----------------------------------------------------------------------------------------------------------
class StepTimer(L.Callback):
    """Wall time and real tokens of the micro-batches after the first `warmup`."""

    def __init__(self, warmup: int, device: str = "cpu"):
        self.warmup, self.tokens, self.seen, self.start, self.end = warmup, 0, 0, None, None
        self.device = device

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.seen == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.seen >= self.warmup:
            _sync(self.device)
            self.tokens += int(batch["attention_mask"].sum())
            self.end = time.perf_counter()
        self.seen += 1


def trainer_tokens_per_second(dm, micro_steps: int, warmup: int, precision: str, accumulate: int,
                              device: str = "cpu", train_bf16: bool = False) -> tuple:
    """Real tokens/s of `Trainer.fit` (`train_bf16`: on the module's bf16 copy, `--model.precision bf16`; else
    fp32 weights under the trainer's `precision`), and the model's parameter count."""
    torch.manual_seed(0)
    module = DivisionLM(model="smollm2", format=dm.format.name, precision="bf16" if train_bf16 else "fp32")
    timer = StepTimer(warmup, device)
    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else device, max_epochs=1, limit_train_batches=micro_steps,
        precision=precision, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=0, accumulate_grad_batches=accumulate, callbacks=[timer],
    )
    trainer.fit(module, datamodule=dm)
    return timer.tokens / (timer.end - timer.start), sum(p.numel() for p in module.model.parameters())


def bare_tokens_per_second(dm, micro_steps: int, warmup: int, accumulate: int, bf16: bool = False,
                           device: str = "cpu") -> float:
    """The same batches, model, AdamW and loss in a plain loop: fp32, or under bf16 autocast as Lightning's
    bf16-mixed does it."""
    torch.manual_seed(0)
    module = DivisionLM(model="smollm2", format=dm.format.name)
    model = module.model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(0)
    tokens, start = 0, None
    for step, batch in enumerate(loader):
        if step == micro_steps:
            break
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        batch = {key: value.to(device) for key, value in batch.items()}
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
        (loss / accumulate).backward()
        if (step + 1) % accumulate == 0:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            tokens += int(batch["attention_mask"].sum())
    _sync(device)
    return tokens / (time.perf_counter() - start)


def padding_efficiency(dm) -> float:
    """Real tokens over padded tokens in one epoch of training batches."""
    real = padded = 0
    for batch in dm.train_dataloader():
        real += int(batch["attention_mask"].sum())
        padded += batch["attention_mask"].numel()
    return real / padded


def probe(fmt: str, micro_batch: int, steps: int) -> dict:
    """Runs in its own process: `steps` fp32 AdamW steps on the longest demonstrations, `micro_batch` at a time."""
    dm = data(fmt, num_test=1)
    module = DivisionLM(model="smollm2", format=fmt)
    model = module.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    longest = sorted(dm.train_examples, key=len, reverse=True)
    pad = dm.tokenizer.pad_token_id
    tokens, start = 0, None
    for step in range(steps + 1):
        if step == 1:
            start = time.perf_counter()  # the first step pays for allocation and kernel choice
        batch = collate_train(longest[step * micro_batch : (step + 1) * micro_batch], pad)
        completion_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"]).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum()) if step else 0
    return {"micro_batch": micro_batch, "tokens_per_second": tokens / (time.perf_counter() - start),
                "peak_rss_gb": peak_rss_gb(), "longest_tokens": len(longest[0])}


def in_subprocess(fmt: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--format", fmt, *args],
                         capture_output=True, text=True, check=True,
                         env=os.environ | (env or {}))
    return json.loads(out.stdout.strip().splitlines()[-1])


# Data and loading ------------------------------------------------------------------------------------------------
def synth_seconds(fmt: str, count: int) -> float:
    start = time.perf_counter()
    dm = DivisionData(format=fmt, num_demos=count, train_split="interpolate", num_val=1, num_test=1,
                      tokenizer_name="smollm2")
    dm.setup()
    assert len(dm.train_examples) == count
    return time.perf_counter() - start


def load_seconds() -> float:
    """Runs in its own process, so that nothing is cached in memory: the seconds `load('smollm2')` takes."""
    from longdiv.models.loading import load

    start = time.perf_counter()
    load("smollm2")
    return time.perf_counter() - start


def plot(report: dict, path: Path) -> None:
    """Memory and speed against the training micro-batch, and decoding against the per-problem loop."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (mem, dec) = plt.subplots(1, 2, figsize=(10, 4))
    rows = report["memory_by_micro_batch"]
    sizes = [r["micro_batch"] for r in rows]
    mem.plot(sizes, [r["peak_rss_gb"] for r in rows], "o-", label="peak RSS (GiB)")
    mem.plot(sizes, [r["tokens_per_second"] / 100 for r in rows], "s--", label="training tokens/s / 100")
    mem.set_xscale("log", base=2)
    mem.set_xticks(sizes, [str(b) for b in sizes])
    mem.set_xlabel(f"micro-batch (longest demonstrations, {rows[0]['longest_tokens']} tokens)")
    mem.set_title("SmolLM2-135M fp32 training step")
    mem.legend()
    mem.grid(alpha=0.3)
    rates = [report["decode_baseline_problems_per_second"], report["decode_problems_per_second"]]
    dec.bar(["per-problem generate", f"batched, batch {report['decode_eval_batch_size']}"], rates)
    dec.set_ylabel("problems/s")
    dec.set_title(f"greedy decoding, {report['decode_speedup']:.1f}x, {report['decode_identical']}/"
                  f"{report['decode_baseline_problems']} identical")
    fig.suptitle(f"{report['cpu']}, {report['threads']} threads, torch {report['torch']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="fine-tuned checkpoint to decode with (default: newest smollm2 sub run)")
    parser.add_argument("--fit_record", help="run.json of a full N=200 SmolLM2 fit, for fit_peak_rss_gb")
    parser.add_argument("--baseline_every", type=int, default=10)
    parser.add_argument("--eval_batch_size", type=int, default=50)
    parser.add_argument("--micro_batch", type=int, default=1, help="training micro-batch (as in configs/smollm2)")
    parser.add_argument("--accumulate", type=int, default=8)
    parser.add_argument("--micro_steps", type=int, default=10)
    parser.add_argument("--bf16_micro_steps", type=int, default=10)
    parser.add_argument("--probe_batches", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--only", nargs="*",
                        help="sections to run: gemm load synth memory train bf16 bf16copy decode decode_compare e2e "
                        "plot")
    parser.add_argument("--out", default="reports/speed/speed.json")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="where the gemm, train, bf16 and decode sections run")
    parser.add_argument("--format", default="sub", help="demonstration format (the checkpoint's, for decode)")
    parser.add_argument("--decode_bf16", action="store_true", help="decode on a bf16 copy of the weights")
    parser.add_argument("--compare_problems", type=int, default=100, help="problems for the decode_compare section")
    parser.add_argument("--compare_methods", nargs="*", help="decode_compare's methods (default: all)")
    parser.add_argument("--_probe", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--_load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    fmt = args.format
    if args._probe:
        print(json.dumps(probe(fmt, args._probe, steps=2)))
        return
    if args._load:
        print(json.dumps({"seconds": load_seconds()}))
        return

    out = Path(args.out)
    report = json.loads(out.read_text()) if out.is_file() else {}
    sections = set(args.only or ["gemm", "load", "synth", "memory", "train", "bf16", "bf16copy", "decode", "plot"])

    def save():
        cpu = hardware.cpu()
        report.update(cpu=cpu.model, threads=torch.get_num_threads(), torch=torch.__version__,
                      cpu_avx512_bf16="avx512_bf16" in cpu.bf16_features,
                      cpu_amx_bf16="amx_bf16" in cpu.bf16_features,
                      device=args.device, format=args.format)
        if args.device == "cuda":
            report.update(gpu=torch.cuda.get_device_name(),
                          gpu_peak_memory_gb=torch.cuda.max_memory_allocated() / 2**30)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")

    if sections == {"plot"}:
        plot(report, out.with_suffix(".png"))
        return
    if "gemm" in sections or "gemm" not in report:
        report["gemm"] = gemm_peak.measure(args.device)
        save()
    peaks = {k: report["gemm"][k]["peak_flops"] for k in ("fp32", "bf16")}

    if "load" in sections:
        with tempfile.TemporaryDirectory() as cache:
            first = in_subprocess(fmt, "--_load", env={"LONGDIV_CACHE": cache})["seconds"]
            cached = in_subprocess(fmt, "--_load", env={"LONGDIV_CACHE": cache})["seconds"]
        report.update(load_seconds_first=first, load_seconds_cached=cached)
        save()
    if "synth" in sections:
        report["synth_seconds_10k"] = synth_seconds(fmt, 10_000)
        save()
    if "memory" in sections:
        report["memory_by_micro_batch"] = [in_subprocess(fmt, "--_probe", str(b)) for b in args.probe_batches]
        save()
    if "train" in sections:
        dm = data(fmt, num_test=1, batch_size=args.micro_batch)
        fit, params = trainer_tokens_per_second(dm, args.micro_steps, 2, "32-true", args.accumulate, args.device)
        bare = bare_tokens_per_second(dm, args.micro_steps, 2, args.accumulate, device=args.device)
        report.update(
            train_tokens_per_second_fit=fit, train_tokens_per_second_bare=bare, train_vs_bare=fit / bare,
            train_micro_batch=args.micro_batch, train_accumulate=args.accumulate,
            padding_efficiency=padding_efficiency(dm), mfu_fp32=fit * 6 * params / peaks["fp32"], params=params,
            # What length bucketing leaves when a batch holds 8 demonstrations (micro-batches of 1 hold no padding).
            padding_efficiency_batch8=padding_efficiency(data(fmt, num_test=1, batch_size=8)),
        )
        save()
    if "bf16" in sections:
        dm = data(fmt, num_test=1, batch_size=args.micro_batch)
        fit, params = trainer_tokens_per_second(dm, args.bf16_micro_steps, 2, "bf16-mixed", args.accumulate,
                                                args.device)
        bare = bare_tokens_per_second(dm, args.bf16_micro_steps, 2, args.accumulate, bf16=True, device=args.device)
        report.update(train_tokens_per_second_fit_bf16=fit, mfu_bf16=fit * 6 * params / peaks["bf16"],
                      bf16_vs_fp32=fit / report["train_tokens_per_second_fit"],
                      train_tokens_per_second_bare_bf16=bare,
                      bf16_vs_fp32_bare=bare / report["train_tokens_per_second_bare"],
                      train_vs_bare_bf16=fit / bare, bf16_micro_steps=args.bf16_micro_steps)
        save()
    if "bf16copy" in sections:  # --model.precision bf16: one cast to bf16 per optimizer step instead of per micro-batch
        dm = data(fmt, num_test=1, batch_size=args.micro_batch)
        fit, params = trainer_tokens_per_second(dm, args.bf16_micro_steps, 2, "32-true", args.accumulate,
                                                args.device, train_bf16=True)
        report.update(train_tokens_per_second_fit_bf16_copy=fit, mfu_bf16_copy=fit * 6 * params / peaks["bf16"],
                      bf16_copy_vs_fp32=fit / report["train_tokens_per_second_fit"])
        save()
    if "decode" in sections:
        ckpt = args.ckpt or str(max(Path("runs").glob("*smollm2-sub-n200/checkpoints/last.ckpt"),
                                    key=lambda p: p.stat().st_mtime))
        report.update(decode(fmt, ckpt, args.baseline_every, args.eval_batch_size, peaks, args.device,
                             args.decode_bf16),
                      decode_checkpoint=ckpt)
        save()
    if "decode_compare" in sections:
        def keep(found):  # one entry per precision and batch size, so runs with other settings add to the record
            key = f"{found['dtype']}-batch{args.eval_batch_size}-problems{args.compare_problems}"
            report.setdefault("decode_compare", {})[key] = found
            save()

        decode_compare(fmt, args.ckpt, args.eval_batch_size, args.compare_problems, peaks, args.device,
                       args.decode_bf16, args.compare_methods, done=keep)
    if "e2e" in sections:
        if not {"train", "bf16copy"} <= sections:
            sys.exit("e2e needs the fit rates of this run: --only train bf16copy e2e")
        report["e2e"] = main_job_projection(fmt, args.ckpt, args.eval_batch_size, args.compare_problems, peaks,
                                            report, args.device)
        save()
    if args.fit_record:
        record = json.loads(Path(args.fit_record).read_text())
        report.update(fit_peak_rss_gb=record["fit_peak_rss_gb"], fit_record=args.fit_record)
        save()
    if "plot" in sections:
        plot(report, out.with_suffix(".png"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
