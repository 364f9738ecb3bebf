"""A Hugging Face model folder from a Lightning checkpoint: `python -m longdiv export --ckpt_path CKPT --out DIR`.

Writes the fine-tuned model (safetensors) and its tokenizer, both loadable with `AutoModelForCausalLM` /
`AutoTokenizer.from_pretrained(DIR)`, a `README.md` model card with the demonstration format, an example
prompt, the demonstration count, the data hash and the test accuracy, read from the `run.json` of the
checkpoint's run folder when there is one, and `longdiv.json`, the settings that `ask` needs to prompt the model
(its format) and the model it was fine-tuned from.

It refuses a non-empty output folder unless given `--overwrite`, and writes into a temporary folder beside it that
is renamed into place at the end, so a failed export leaves no half-written folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from longdiv import errors, identity, runs
from longdiv.data import formats
from longdiv.data.problems import Problem

SETTINGS = "longdiv.json"  # in an exported folder: {"format": ..., "base_model": ..., "context": ...}


def run_record(ckpt_path: Path) -> runs.Record:
    """The record of the run that wrote `ckpt_path` (`<run>/checkpoints/last.ckpt`), or {} when there is none."""
    for folder in (ckpt_path.parent.parent, ckpt_path.parent):
        record = runs.read(folder)
        if record is not None:
            return record
    return {}


def model_card(hparams: dict, record: runs.Record) -> str:
    """The README.md of an exported model. It names only what describes the model: no paths, config or keys."""
    fmt = hparams["format"]
    prompt, completion = formats.get_format(fmt).render(Problem.from_numbers(93, 59))
    lines = [
        f"# longdiv: {hparams['model']} fine-tuned on long division ({fmt} format)",
        "",
        "A causal LM fine-tuned with the longdiv project to compute the remainder of a division by writing",
        "out a step-by-step demonstration, then the answer.",
        "",
        "| field | value |",
        "| --- | --- |",
        f"| base model | `{hparams['model']}` |",
        f"| format | `{fmt}` |",
        f"| demonstrations (num_demos) | {record.get('num_demos', 'unknown')} |",
        f"| data seed | {record.get('data_seed', 'unknown')} |",
        f"| data hash | `{record.get('data_hash', 'unknown')}` |",
    ]
    if runs.is_tested(record):
        lines.append(
            f"| test accuracy | {record['accuracy']:.1%} ({record['correct']}/{record['n_eval']}), 95% Wilson interval "
            f"[{record['wilson_low']:.1%}, {record['wilson_high']:.1%}] |"
        )
        lines.append(f"| parse failures | {record['parse_failures']} of {record['n_eval']} |")
    else:
        lines.append("| test accuracy | not measured (no run.json with a test next to the checkpoint) |")
    lines += [
        "",
        "## Prompt",
        "Give the model the format's prompt and decode greedily until end of text. For 93 mod 59 the prompt is:",
        "```",
        prompt.rstrip("\n"),
        "```",
        "and the expected completion:",
        "```",
        completion.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(lines)


def match_special_tokens(model, tokenizer) -> None:
    """Points the model's end-of-text and pad ids at the tokenizer's (training ended every completion with the
    tokenizer's EOS), so `generate` on the exported model stops where it learned to. A start id outside the
    vocabulary becomes EOS too: random-init models paired with another tokenizer (`tiny`) keep GPT-Neo's 50256."""
    for config in (model.config, model.generation_config):
        config.eos_token_id = tokenizer.eos_token_id
        config.pad_token_id = tokenizer.pad_token_id
        if config.bos_token_id is not None and config.bos_token_id >= len(tokenizer):
            config.bos_token_id = tokenizer.eos_token_id


def check_out(out: Path, overwrite: bool, ckpt_path: Path | None = None) -> None:
    """Refuses a path that is a file and an output folder that holds files, unless `overwrite` and what it holds is
    an earlier export (its settings file and no folders) that does not hold `ckpt_path`: overwriting replaces the
    whole folder, so it must hold nothing else."""
    if out.exists() and not out.is_dir():
        raise errors.UsageError("export folder", f"--out {out}", "is a file", "pass a folder to write")
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not overwrite:
        raise errors.UsageError("export folder", f"--out {out}", "is not empty",
                                "pass --overwrite to replace an earlier export there, or another --out")
    if ckpt_path is not None and out.resolve() in ckpt_path.resolve().parents:
        raise errors.UsageError("export folder", f"--out {out}", f"holds the checkpoint exported ({ckpt_path})",
                                "choose an --out outside the run folder")
    others = sorted(p.name for p in out.iterdir() if p.is_dir())
    if not (out / SETTINGS).is_file() or others:
        held = ", ".join(others or sorted(p.name for p in out.iterdir())[:5])
        raise errors.UsageError("export folder", f"--out {out}", f"is not an earlier export (it holds {held})",
                                "--overwrite replaces only an earlier export; choose another --out")


def export(ckpt_path: Path, out: Path, weights_only: bool = True, overwrite: bool = False) -> Path:
    """Writes the model, tokenizer, model card and settings of `ckpt_path` into `out`, through a temporary folder
    beside it that replaces `out` once it is complete."""
    check_out(out, overwrite, ckpt_path)
    module, found = identity.load(ckpt_path, weights_only)
    if module.hparams.get("lora_rank"):
        from longdiv.models import lora

        lora.merged(module.model)
    match_special_tokens(module.model, module.tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    target = out.resolve()  # `--out .` has no name of its own
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    try:
        tmp.mkdir()
        module.model.save_pretrained(tmp)  # safetensors
        module.tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(model_card(dict(module.hparams), run_record(ckpt_path)))
        settings = {"format": module.format.name, "base_model": module.hparams.model,
                    "context": found["saved"]["data"].get("context")}
        (tmp / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")
        if target.is_dir() and any(target.iterdir()):
            target.rename(old)  # a folder can only be renamed over an empty one
        tmp.rename(target)
    except BaseException:
        if old.exists() and not target.exists():
            old.rename(target)  # the replaced folder comes back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = errors.ArgumentParser(prog="python -m longdiv export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", type=Path, required=True, help="A Lightning checkpoint, e.g. last.ckpt.")
    parser.add_argument("--out", type=Path, required=True, help="The folder to write; it must be empty or new.")
    parser.add_argument("--overwrite", action="store_true", help="Replace what the --out folder holds.")
    parser.add_argument("--unsafe_load", action="store_true",
                        help="Unpickle the checkpoint fully (can run code from the file): only for files you trust.")
    args = parser.parse_args(argv)
    if not args.ckpt_path.is_file():
        raise errors.UsageError("checkpoint", f"--ckpt_path {args.ckpt_path}", "no such file",
                                "pass a checkpoint such as runs/<run>/checkpoints/last.ckpt")
    export(args.ckpt_path, args.out, weights_only=not args.unsafe_load, overwrite=args.overwrite)
    print(f"exported {args.ckpt_path} -> {args.out}")
    return 0
