"""Batched greedy decoding with the KV cache, where a row that has written its EOS stops costing work."""

from __future__ import annotations

import torch


@torch.no_grad()
def greedy_decode(model, input_ids, attention_mask, max_new_tokens: int, eos_id: int) -> list[list[int]]:
    """Greedy continuations of a left-padded batch, each up to and excluding its EOS.

    `generate` keeps decoding a finished row (writing pad) until the whole batch is done, so one long trace makes
    every row in its batch pay for it. Here a finished row leaves the batch and the KV cache at once: the cost of
    a step follows the number of rows still writing. The tokens are the same as `generate`'s greedy ones.
    """
    batch = input_ids.shape[0]
    out: list[list[int]] = [[] for _ in range(batch)]
    if max_new_tokens <= 0 or batch == 0:
        return out
    rows = torch.arange(batch)  # which original row each live row is
    mask = attention_mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift the positions of real tokens
    step = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache, position = step.past_key_values, positions[:, -1:]
    for written in range(1, max_new_tokens + 1):
        tokens = step.logits[:, -1].argmax(-1)
        finished = tokens == eos_id
        for row, token, done in zip(rows.tolist(), tokens.tolist(), finished.tolist()):
            if not done:
                out[row].append(token)
        if written == max_new_tokens:
            break
        if finished.any():
            live = (~finished).nonzero().squeeze(1)
            if live.numel() == 0:
                break
            cache.batch_select_indices(live)
            rows, mask, position, tokens = rows[live], mask[live], position[live], tokens[live]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        position = position + 1
        step = model(
            input_ids=tokens[:, None], attention_mask=mask, position_ids=position, past_key_values=cache,
            use_cache=True,
        )
    return out
