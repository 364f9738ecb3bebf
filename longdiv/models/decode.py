"""Batched decoding, greedy or sampled, with a KV cache written in place, where rows that have written their EOS stop
costing work."""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer


class _PreallocatedLayer(DynamicLayer):
    """A cache layer whose keys and values live in storage allocated once for the whole generation.

    The default layer concatenates every new token onto the whole cache, so each step reads and writes the cache
    twice more than attention needs; at batch 50 and 500 tokens SmolLM2's cache is over 1 GB. Here a step writes
    one token's slot and attention reads a view of the filled part.
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            batch, heads, _, dim = key_states.shape
            self._keys = key_states.new_empty(batch, heads, self.capacity, dim)
            self._values = value_states.new_empty(batch, heads, self.capacity, value_states.shape[-1])
        end = self.length + key_states.shape[-2]
        self._keys[:, :, self.length : end] = key_states
        self._values[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]


@torch.inference_mode()
def decode(model, input_ids, attention_mask, max_new_tokens: int | torch.Tensor, eos_id: int,
           temperature: float = 0.0, generator: torch.Generator | None = None) -> list[list[int]]:
    """Continuations of a left-padded batch, each up to and excluding its EOS or as long as its budget
    (`max_new_tokens`: one for all rows, or one per row): greedy at temperature 0, else each token sampled from the
    softmax of the logits over `temperature` (with `generator`, for reproducible samples).

    `generate` keeps decoding a finished row (writing pad) until the whole batch is done, so one long trace makes
    every row in its batch pay for it. Here finished rows leave the batch and the cache whenever they are a quarter
    of it (moving the cache costs about as much as a step, so it is done in few large moves), and the cache is
    written in place. Greedy tokens are the same as `generate`'s greedy ones.
    """
    batch = input_ids.shape[0]
    out: list[list[int]] = [[] for _ in range(batch)]
    budgets = torch.as_tensor(max_new_tokens, device=input_ids.device).expand(batch)
    max_new_tokens = int(budgets.max()) if batch else 0
    if max_new_tokens <= 0:
        return out
    layers = model.config.get_text_config().num_hidden_layers
    cache = Cache(layers=[_PreallocatedLayer(input_ids.shape[1] + max_new_tokens) for _ in range(layers)])
    # Bookkeeping lives on the model's device, so that every index below meets tensors of its own device.
    rows = torch.arange(batch, device=input_ids.device)  # which original row each row of the batch is
    done = budgets <= 0
    mask = attention_mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift the positions of real tokens
    step = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                 use_cache=True, logits_to_keep=1)
    position = positions[:, -1:]
    for written in range(1, max_new_tokens + 1):
        logits = step.logits[:, -1]
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            tokens = logits.argmax(-1)
        for row, token, finished in zip(rows.tolist(), tokens.tolist(), done.tolist()):
            if not finished and token != eos_id:
                out[row].append(token)
        done |= (tokens == eos_id) | (budgets <= written)
        if written == max_new_tokens or done.all():
            break
        if 4 * int(done.sum()) >= len(done):
            live = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(live)
            rows, done, mask, position, tokens = rows[live], done[live], mask[live], position[live], tokens[live]
            budgets = budgets[live]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        position = position + 1
        step = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=position, past_key_values=cache,
                     use_cache=True)
    return out
