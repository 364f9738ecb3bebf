"""Batched decoding, greedy or sampled, with a KV cache written in place, where rows that have written their EOS stop
costing work; and `forced`, which tells in one pass how far greedy decoding would follow a reference trace."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers.cache_utils import Cache, DynamicLayer

from longdiv.data.windows import slide, windows


class _PreallocatedLayer(DynamicLayer):
    """A cache layer whose keys and values live in storage allocated once for the whole generation.

    The default layer concatenates every new token onto the whole cache, so each step reads and writes the cache
    twice more than attention needs; at batch 50 and 500 tokens SmolLM2's cache is over 1 GB. Here a step writes
    one token's slot and attention reads a view of the filled part, `[start, end)`. Dropping the oldest columns
    moves `start` (a sliding window drops one almost every step); the view is copied back to the front of the
    storage only when a token would not fit after it.
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.start, self.end = capacity, 0, 0

    def _view(self) -> None:
        self.keys, self.values = self._keys[:, :, self.start : self.end], self._values[:, :, self.start : self.end]

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            batch, heads, _, dim = key_states.shape
            self._keys = key_states.new_empty(batch, heads, self.capacity, dim)
            self._values = value_states.new_empty(batch, heads, self.capacity, value_states.shape[-1])
        new = key_states.shape[-2]
        if self.end + new > self.capacity:  # to the front: the columns before `start` are no longer read
            width = self.end - self.start
            self._keys[:, :, :width] = self._keys[:, :, self.start : self.end].clone()
            self._values[:, :, :width] = self._values[:, :, self.start : self.end].clone()
            self.start, self.end = 0, width
        self._keys[:, :, self.end : self.end + new] = key_states
        self._values[:, :, self.end : self.end + new] = value_states
        self.end += new
        self._view()
        return self.keys, self.values

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self._view()

    def keep_last(self, width: int) -> None:
        """Drops all but the last `width` columns."""
        self.start = self.end - width
        self._view()

    def put(self, rows: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Makes `keys` and `values` the last columns of `rows`, with zeros before them (masked, but finite)."""
        cut = self.end - keys.shape[-2]
        self._keys[rows, :, self.start : cut], self._values[rows, :, self.start : cut] = 0, 0
        self._keys[rows, :, cut : self.end], self._values[rows, :, cut : self.end] = keys, values


def _left_padded(rows: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)  # padding is masked: any token id does
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, device=device)
        mask[i, width - len(row) :] = 1
    return ids, mask


def _prefill(model, input_ids, mask, capacity: int):
    """Runs a left-padded batch into a new cache that holds `capacity` tokens: the model's output, the cache, and each
    row's last position."""
    layers = model.config.get_text_config().num_hidden_layers
    cache = Cache(layers=[_PreallocatedLayer(capacity) for _ in range(layers)])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift the positions of real tokens
    step = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, past_key_values=cache,
                 use_cache=True, logits_to_keep=1)
    return step, cache, positions[:, -1:]


@contextlib.contextmanager
def narrowed_head(model, vocab: torch.Tensor | None):
    """The model with an output layer that computes only the logits of the token ids `vocab`, in their order, while
    the context lasts; the model's own layer (and its tie to the input embeddings) comes back afterwards."""
    if vocab is None:
        yield model
        return
    head = model.get_output_embeddings()
    narrow = torch.nn.Linear(head.in_features, len(vocab), bias=head.bias is not None,
                             device=head.weight.device, dtype=head.weight.dtype)
    with torch.no_grad():
        narrow.weight.copy_(head.weight[vocab])
        if head.bias is not None:
            narrow.bias.copy_(head.bias[vocab])
    model.set_output_embeddings(narrow)
    try:
        yield model
    finally:
        model.set_output_embeddings(head)


@torch.inference_mode()
def decode(model, input_ids, attention_mask, max_new_tokens: int | torch.Tensor, eos_id: int,
           temperature: float = 0.0, generator: torch.Generator | None = None,
           context: int | None = None, vocab: torch.Tensor | None = None,
           redo: Redo | None = None) -> list[list[int]]:
    """Continuations of a left-padded batch, each up to and excluding its EOS or as long as its budget
    (`max_new_tokens`: one for all rows, or one per row): greedy at temperature 0, else each token sampled from the
    softmax of the logits over `temperature` (with `generator`, for reproducible samples).

    `generate` keeps decoding a finished row (writing pad) until the whole batch is done, so one long trace makes
    every row in its batch pay for it. Here finished rows leave the batch and the cache whenever they are a quarter
    of it (moving the cache costs about as much as a step, so it is done in few large moves), and the cache is
    written in place. Greedy tokens are the same as `generate`'s greedy ones.

    With `context`, a row whose prompt and tokens would pass it goes on from its prompt and its last tokens, as
    `longdiv.data.windows.slide` says, and its continuation is still every token it wrote: what it would write if
    each step encoded that window afresh. Cached keys carry their positions, so a row whose window slides has its
    window encoded again, as the last columns of its cache rows; only that row, since rows whose prompts differ in
    length slide at different steps. When the cache's columns reach the context, those no row uses any more are
    dropped. A batch whose rows all fit never slides.

    With `vocab` (sorted token ids), the output layer computes only those tokens' logits, and only they are written.

    With `redo` (greedy decoding only), a row that writes the strike token and a newline (`subfix`: the model has
    struck out the line it just wrote) samples the next line, up to its newline, at `redo.temperature` from its own
    generator, seeded with `redo.seeds[row]`: the line the model judged wrong is not written again the same greedy
    way, and a row's samples do not depend on the rows beside it.
    """
    with narrowed_head(model, vocab):
        return _decode(model, input_ids, attention_mask, max_new_tokens, eos_id, temperature, generator, context,
                       vocab, redo)


@dataclass(frozen=True)
class Redo:
    """How a line written after a strike is sampled (see `decode`)."""

    strike: int  # the token of the line that strikes out the line above (`subfix`'s '!')
    newline: int
    temperature: float
    seeds: list[int]  # one per row of the batch


def _sampled_redos(logits, tokens, hot, rows, redo: Redo, generators: dict) -> None:
    """Replaces the greedy token of each `hot` row (one rewriting a struck line) by one sampled from its own
    generator."""
    for i in hot.nonzero().squeeze(1).tolist():
        row = rows[i]
        if row not in generators:
            generators[row] = torch.Generator(device=logits.device).manual_seed(redo.seeds[row])
        probs = torch.softmax(logits[i].float() / redo.temperature, dim=-1)
        tokens[i] = torch.multinomial(probs, 1, generator=generators[row])[0]


def _decode(model, input_ids, attention_mask, max_new_tokens, eos_id, temperature, generator, context, vocab, redo):
    batch = input_ids.shape[0]
    out: list[list[int]] = [[] for _ in range(batch)]
    budgets = torch.as_tensor(max_new_tokens, device=input_ids.device).expand(batch)
    max_new_tokens = int(budgets.max()) if batch else 0
    if max_new_tokens <= 0:
        return out
    capacity = input_ids.shape[1] + max_new_tokens
    prompts = rooms = starts = next_slide = None
    if context is not None and capacity > context:
        prompts = [ids[real.bool()].tolist() for ids, real in zip(input_ids, attention_mask)]
        rooms = [context - len(prompt) for prompt in prompts]
        if min(rooms) < 2:
            raise ValueError(f"a prompt of {context - min(rooms)} tokens leaves less than 2 tokens of room in a "
                             f"context of {context}")
        if any(room < int(budget) for room, budget in zip(rooms, budgets.tolist())):  # else no window ever slides
            # The view never passes the context; the storage holds a quarter more, so it is rarely moved.
            capacity, starts, next_slide = context + context // 4, [0] * batch, min(rooms)
    step, cache, position = _prefill(model, input_ids, attention_mask, capacity)
    # Bookkeeping lives on the model's device, so that every index below meets tensors of its own device.
    rows = torch.arange(batch, device=input_ids.device)  # which original row each row of the batch is
    done = budgets <= 0
    mask = attention_mask
    redo = redo if temperature <= 0 else None
    hot = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)  # rows rewriting a struck line
    last = torch.full((batch,), -1, device=input_ids.device)  # each row's last token
    redo_generators: dict[int, torch.Generator] = {}
    for written in range(1, max_new_tokens + 1):
        logits = step.logits[:, -1]
        if temperature > 0:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            tokens = logits.argmax(-1)
            if redo is not None and hot.any():
                _sampled_redos(logits, tokens, hot, rows.tolist(), redo, redo_generators)
        if vocab is not None:  # the narrowed layer's columns are the tokens of `vocab`
            tokens = vocab[tokens]
        if redo is not None:
            hot = ((last == redo.strike) & (tokens == redo.newline)) | (hot & (tokens != redo.newline))
            last = tokens
        for row, token, finished in zip(rows.tolist(), tokens.tolist(), done.tolist()):
            if not finished and token != eos_id:
                out[row].append(token)
        done |= (tokens == eos_id) | (budgets <= written)
        if written == max_new_tokens or done.all():
            break
        sliding = next_slide is not None and written >= next_slide
        ended = int(done.sum())
        # Finished rows leave at a slide too: their windows do not slide, so fed on they would pass the context.
        if 4 * ended >= len(done) or (sliding and ended):
            live = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(live)
            rows, done, mask, position, tokens = rows[live], done[live], mask[live], position[live], tokens[live]
            budgets, hot, last = budgets[live], hot[live], last[live]
        if sliding:
            mask, position = _slide(model, cache, mask, position, rows.tolist(), written, prompts, out, starts, rooms)
            next_slide = min(starts[r] + rooms[r] for r in rows.tolist())
        if next_slide is not None and mask.shape[1] == context:  # the next token would pass the context
            width = int(mask.sum(1).max())  # every row's tokens sit at the right end, and fewer than the context
            for layer in cache.layers:
                layer.keep_last(width)
            mask = mask[:, -width:]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        position = position + 1
        step = model(input_ids=tokens[:, None], attention_mask=mask, position_ids=position, past_key_values=cache,
                     use_cache=True)
    return out


def _slide(model, cache, mask, position, rows, written, prompts, out, starts, rooms):
    """Slides the window of each row that has filled it (`starts` updated), before token `written - 1` is fed: its
    prompt and the window's tokens before that one are encoded again, as the last positions of its cache rows.
    Returns the new mask and positions."""
    due = [i for i, row in enumerate(rows) if slide(starts[row], written, rooms[row]) != starts[row]]
    if not due:
        return mask, position
    windows = []
    for i in due:
        starts[rows[i]] = slide(starts[rows[i]], written, rooms[rows[i]])
        windows.append(prompts[rows[i]] + out[rows[i]][starts[rows[i]] : written - 1])
    ids, fresh = _left_padded(windows, mask.device)
    _, encoded, last = _prefill(model, ids, fresh, ids.shape[1])
    index = torch.tensor(due, device=mask.device)
    for layer, new in zip(cache.layers, encoded.layers):
        layer.put(index, new.keys, new.values)
    mask, position = mask.clone(), position.clone()
    mask[index] = 0
    mask[index, mask.shape[1] - fresh.shape[1] :] = fresh
    position[index] = last
    return mask, position


@dataclass(frozen=True)
class Forced:
    """How greedy decoding fares on one reference completion (see `forced`)."""

    tokens: int  # completion tokens scored
    right: int  # scored tokens before the first that is not the greedy choice: `tokens` when none is
    first: int  # the index in the completion of that first token; the completion's length when none is
    loss: float  # the scored tokens' summed cross-entropy
    hits: torch.Tensor  # per completion token, scored or not: whether it is the greedy choice (bool, on the CPU)
    chance: torch.Tensor  # per completion token: the probability the model gives it (float32, on the CPU)
    instead: int | None = None  # the token greedy decoding would write at `first`; None when every token is right

    @property
    def exact(self) -> bool:
        """Greedy decoding writes the whole reference."""
        return self.right == self.tokens


@torch.inference_mode()
def forced(model, prompt: list[int], completion: list[int], context: int | None = None,
           vocab: torch.Tensor | None = None, skip: tuple[int, ...] = ()) -> Forced:
    """Teacher forcing over a reference completion (ending in its EOS), in the windows that `decode` slides through
    with `context` (`longdiv.data.windows`; one window without it): each token is scored from the view greedy
    decoding would write it from, if everything before it had been written right. So greedy decoding writes the
    whole reference exactly when no token is wrong here (up to rounding: one pass over a window and a step over a
    cache sum in other orders), and until the first one otherwise, at the cost of one forward pass per window
    rather than one per token. With `vocab`, only those tokens can be chosen, as in `decode`. Tokens at the indices
    `skip` (ones the model is not taught to write, such as `subfix`'s practice slips) are not scored. Each token's
    greedy hit and probability are kept too (`hits`, `chance`), for analyses by kind of token.
    """
    cuts = windows(len(completion), context - len(prompt)) if context else [(0, 0, len(completion))]
    device = model.get_input_embeddings().weight.device
    scored = torch.ones(len(completion), dtype=torch.bool, device=device)
    scored[list(skip)] = False
    target = torch.tensor(completion, device=device)
    hits = torch.zeros(len(completion), dtype=torch.bool, device=device)
    chosen = torch.zeros(len(completion), dtype=torch.long, device=device)  # greedy choices, as token ids
    losses = torch.zeros(len(completion), device=device)
    with narrowed_head(model, vocab):
        for start, new, end in cuts:
            ids = torch.tensor([prompt + completion[start:end]], device=device)
            # The last end - new + 1 positions predict completion[new:end] and one token past it (dropped).
            logits = model(input_ids=ids, logits_to_keep=end - new + 1).logits[0, :-1].float()
            truth = target[new:end]
            if vocab is not None:
                column = torch.searchsorted(vocab, truth).clamp(max=len(vocab) - 1)
                if not torch.equal(vocab[column], truth):
                    raise ValueError("a reference holds a token outside the output vocabulary")
                truth = column
            best = logits.argmax(-1)
            hits[new:end] = best == truth
            chosen[new:end] = best if vocab is None else vocab[best]
            losses[new:end] = F.cross_entropy(logits, truth, reduction="none")
    wrong = ~hits & scored
    first = int(wrong.nonzero()[0, 0]) if wrong.any() else len(completion)
    return Forced(int(scored.sum()), int(scored[:first].sum()), first, float(losses[scored].sum()), hits.cpu(),
                  losses.neg().exp().cpu(), int(chosen[first]) if first < len(completion) else None)
