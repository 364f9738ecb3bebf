"""LoRA (Hu et al. 2021) through peft's adapter injection: low-rank adapters on every linear layer of the backbone,
the pretrained weights frozen. The model stays the transformers model it was (no PeftModel wrapper), so training,
decoding and checkpoints treat it like any other; `merged` folds the adapters back in for export.
"""

from __future__ import annotations

import torch


def add(model: torch.nn.Module, rank: int) -> torch.nn.Module:
    """Injects rank-`rank` adapters (alpha = 2 * rank) into every linear layer but the output layer, and freezes
    everything else."""
    from peft import LoraConfig, inject_adapter_in_model

    model = inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=2 * rank, target_modules="all-linear"), model)
    for name, weight in model.named_parameters():
        weight.requires_grad = "lora_" in name
    return model


def merged(model: torch.nn.Module) -> torch.nn.Module:
    """The model with each adapter added into its layer's weight and the layer put back as a plain one, so that
    `save_pretrained` writes weights any transformers model of the architecture loads. Changes `model` in place."""
    from peft.tuners.lora import LoraLayer

    adapted = [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]
    for name, module in adapted:
        module.merge()
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, module.get_base_layer())
    for weight in model.parameters():
        weight.requires_grad = True
    return model
