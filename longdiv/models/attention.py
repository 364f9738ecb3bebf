"""The library's SDPA attention, kept off its slow path for one query token in bf16 on a CPU.

For a single query token (a decoding step), transformers' SDPA attention takes one of two paths: with a padding mask
it folds the query heads of each key/value head into one query block (the fast path); without a mask it calls
PyTorch's kernel with `enable_gqa`, which on a CPU in bf16 decodes at less than half the speed. A batch has no mask
whenever its prompts are all of one length (one question, or several of one length). On a 2-core AMD EPYC with
AVX-512 BF16 (Zen 4), SmolLM2, 50 rows, 200 steps (the retired `benchmarks.decode_attention`,
reports/decode_attention.json): bf16 without padding 448 generated tokens/s with `longdiv` against 183 with the
library's attention; with left padding, and in fp32, the two are within 4% (444 and 426; fp32 269 and 260 without
padding, 226 and 217 with).

So `sdpa` gives a one-token query on a CPU an all-true mask when it has none; everything else (training, prompts,
GPUs) is the library's SDPA unchanged. It is registered as the attention implementation `longdiv`; only models that
take their attention from the library's interface (Llama/SmolLM2, Gemma 3) can use it, GPT-Neo keeps its own.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "longdiv"


def sdpa(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention; a one-token query on a CPU without a mask gets an all-true one."""
    if attention_mask is None and query.shape[2] == 1 and query.device.type == "cpu":
        attention_mask = torch.ones(query.shape[0], 1, 1, key.shape[2], dtype=torch.bool)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


AttentionInterface.register(NAME, sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)  # masks made as for SDPA


def use(model: torch.nn.Module) -> torch.nn.Module:
    """Switch `model` to the `longdiv` attention where it takes attention from the library's interface and uses SDPA
    (otherwise leave it as it is); returns the model."""
    if getattr(model, "_supports_attention_backend", False) and model.config._attn_implementation == "sdpa":
        model.set_attn_implementation(NAME)
    return model
