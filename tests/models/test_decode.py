import copy

import pytest
import torch

from longdiv.data.windows import slide
from longdiv.models import attention, loading
from longdiv.models.decode import Redo, decode, forced, narrowed_head


def reference(model, input_ids, attention_mask, max_new_tokens, eos_id):
    """Plain `generate` with the library's own attention, cut at each row's first EOS."""
    if model.config._attn_implementation == attention.NAME:
        model = copy.deepcopy(model)
        model.set_attn_implementation("sdpa")
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                         do_sample=False, eos_token_id=eos_id, pad_token_id=eos_id)[:, input_ids.shape[1]:]
    rows = []
    for row in out.tolist():
        rows.append(row[: row.index(eos_id)] if eos_id in row else row)
    return rows


def left_padded(prompts, pad_id):
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id)
    mask = torch.zeros(len(prompts), width, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p)
        mask[i, width - len(p):] = 1
    return ids, mask


ARCHS = {
    "gpt-neo": ("tiny", None),
    # GPT-Neo's local layers see only the last `window_size` tokens: a window shorter than the decode checks that
    # the cache and the masks agree with `generate` past it.
    "gpt-neo-window-4": ("tiny", {"window_size": 4}),
    "llama": ("scratch:smollm2-135m", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 4, "num_key_value_heads": 2}),
}


@pytest.mark.parametrize("arch", ARCHS)
def test_greedy_decode_equals_generate_with_rows_finishing_early(arch):
    torch.manual_seed(0)
    model, _ = loading.load(ARCHS[arch][0], "char", ARCHS[arch][1])
    model.eval()
    g = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 90, (n,), generator=g).tolist() for n in (5, 9, 2, 7, 12, 3)]
    ids, mask = left_padded(prompts, 0)
    # A random model seldom picks a given EOS; use as EOS a token some rows write early, so rows finish at
    # different steps and the batch shrinks while others keep writing.
    free = reference(model, ids, mask, 20, eos_id=-1 % model.config.vocab_size)
    eos = free[0][3]
    want = reference(model, ids, mask, 20, eos)
    got = decode(model, ids, mask, 20, eos)
    assert got == want
    lengths = {len(r) for r in got}
    assert len(lengths) > 1 and max(lengths) == 20  # some rows stopped early, at least one ran to the budget
    assert got == [decode(model, *left_padded([p], 0), 20, eos)[0] for p in prompts]


def test_each_row_stops_at_its_own_budget_as_if_decoded_alone():
    torch.manual_seed(0)
    model, _ = loading.load(ARCHS["llama"][0], "char", ARCHS["llama"][1])
    model.eval()
    prompts = [[5, 6, 7], [9, 4], [3, 8, 8, 2], [7]]
    budgets = torch.tensor([6, 0, 11, 3])
    eos = -1 % model.config.vocab_size  # never written: every row runs to its budget
    got = decode(model, *left_padded(prompts, 0), budgets, eos)
    assert [len(row) for row in got] == budgets.tolist()
    assert got == [decode(model, *left_padded([p], 0), int(b), eos)[0] for p, b in zip(prompts, budgets)]


def test_decode_respects_empty_budget():
    model, _ = loading.load("tiny", None, None)
    ids, mask = left_padded([[5, 6, 7]], 0)
    assert decode(model, ids, mask, 0, 0) == [[]]


def test_sampled_decode_is_reproducible_and_tends_to_greedy_as_temperature_falls():
    torch.manual_seed(0)
    model, _ = loading.load(ARCHS["llama"][0], "char", ARCHS["llama"][1])
    model.eval()
    ids, mask = left_padded([[5, 6, 7], [9, 4], [3, 8, 8, 2]], 0)
    eos = -1 % model.config.vocab_size

    def sampled(temperature, seed):
        return decode(model, ids, mask, 15, eos, temperature, torch.Generator().manual_seed(seed))

    assert sampled(1e-4, 0) == decode(model, ids, mask, 15, eos)
    assert sampled(1.0, 3) == sampled(1.0, 3)
    hot = [sampled(1.0, seed) for seed in range(3)]
    assert hot[0] != hot[1] or hot[1] != hot[2]


@torch.no_grad()
def redo_reference(model, prompt, budget, eos_id, redo, seed, vocab):
    """The definition of a redo: greedy, except that after the strike token and a newline each token up to the
    next newline is sampled at redo.temperature from a generator seeded with `seed`; the sequence encoded afresh
    at every step."""
    generator, ids, out, hot, last = torch.Generator().manual_seed(seed), list(prompt), [], False, -1
    with narrowed_head(model, vocab):
        for _ in range(budget):
            logits = model(torch.tensor([ids])).logits[0, -1]
            if hot:
                column = torch.multinomial(torch.softmax(logits / redo.temperature, -1), 1, generator=generator)[0]
            else:
                column = logits.argmax()
            token = int(vocab[column])
            if token == eos_id:
                break
            out.append(token)
            ids.append(token)
            hot, last = (last == redo.strike and token == redo.newline) or (hot and token != redo.newline), token
    return out


def test_a_line_after_a_strike_is_sampled_from_the_rows_own_generator():
    torch.manual_seed(0)
    model, _ = loading.load(ARCHS["llama"][0], "char", ARCHS["llama"][1])
    model.eval()
    prompts = [[5, 6, 7], [9, 4], [3, 8, 8, 2], [7], [4, 4, 9, 1, 2]]
    ids, mask = left_padded(prompts, 0)
    vocab = torch.tensor([3, 5, 8, 11, 17, 23])  # few tokens, so that a sampled line often meets its newline
    greedy = decode(model, ids, mask, 30, eos_id=-1, vocab=vocab)
    # This random model repeats one token a row: 11 in three rows and 3 in two. With 11 as both the strike and the
    # newline, those three rows start a sampled line at their second token, end it at a sampled 11 and soon start
    # another; the others stay greedy. 23, written only when sampled, ends rows early, so the batch shrinks.
    assert {tuple(set(row)) for row in greedy} == {(11,), (3,)}
    strike = newline = 11
    eos = 23
    redo = Redo(strike, newline, 3.0, seeds=[101, 102, 103, 104, 105])
    got = decode(model, ids, mask, 30, eos, vocab=vocab, redo=redo)
    want = [redo_reference(model, p, 30, eos, redo, seed, vocab) for p, seed in zip(prompts, redo.seeds)]
    assert got == want
    plain = decode(model, ids, mask, 30, eos, vocab=vocab)
    assert got != plain and got[1] == plain[1]  # lines were sampled, in the rows that struck
    assert sum(len(row) < 30 for row in got) >= 2  # rows finished early
    alone = decode(model, *left_padded(prompts[2:3], 0), 30, eos, vocab=vocab, redo=Redo(strike, newline, 3.0, [103]))
    assert alone == [got[2]]  # a row's samples do not depend on the rows beside it
    sampled_all = decode(model, ids, mask, 30, eos, 1.0, torch.Generator().manual_seed(0), vocab=vocab, redo=redo)
    assert sampled_all == decode(model, ids, mask, 30, eos, 1.0, torch.Generator().manual_seed(0), vocab=vocab)


def sliding_reference(model, prompt, budget, eos_id, context):
    """The semantic definition of sliding-window generation: every token predicted greedily by encoding, from
    scratch, the prompt and the last tokens that the window (longdiv.data.windows.slide) holds."""
    room, start, out = context - len(prompt), 0, []
    for written in range(budget):
        start = slide(start, written, room)
        ids = torch.tensor([prompt + out[start:]])
        assert ids.shape[1] < context  # the token it predicts fits too
        token = int(model(input_ids=ids).logits[0, -1].argmax())
        if token == eos_id:
            break
        out.append(token)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_sliding_window_decode_equals_reencoding_the_window_at_every_step(arch):
    context = 24
    torch.manual_seed(0)
    # Large initial weights, so that each token depends on the whole window rather than repeating the last one.
    overrides = (ARCHS[arch][1] or {}) | {"max_position_embeddings": context, "initializer_range": 0.5}
    model, _ = loading.load(ARCHS[arch][0], "char", overrides)
    model.eval()
    g = torch.Generator().manual_seed(1)
    # Prompts of several lengths slide at different steps; budgets past the window (and one that fits) each run out.
    prompts = [torch.randint(3, 90, (n,), generator=g).tolist() for n in (5, 9, 2, 7, 12)]
    budgets = torch.tensor([60, 45, 70, 10, 50])
    never = -1  # no token id: every row runs to its budget
    want = [sliding_reference(model, p, int(b), never, context) for p, b in zip(prompts, budgets)]
    got = decode(model, *left_padded(prompts, 0), budgets, never, context=context)
    assert got == want and [len(r) for r in got] == budgets.tolist()
    # As EOS, a token the first row first writes after its window slid: rows now stop at different steps.
    first = {}
    for at, token in enumerate(want[0]):
        first.setdefault(token, at)
    eos, at = next((token, at) for token, at in first.items() if at > context - len(prompts[0]))
    want = [sliding_reference(model, p, int(b), eos, context) for p, b in zip(prompts, budgets)]
    got = decode(model, *left_padded(prompts, 0), budgets, eos, context=context)
    assert got == want and len(got[0]) == at and len({len(r) for r in got}) > 1


def test_decode_that_fits_its_context_is_the_plain_decode():
    torch.manual_seed(0)
    model, _ = loading.load("tiny", "char", {"initializer_range": 0.5})
    model.eval()
    prompts = [[5, 6, 7], [9, 4, 3, 8, 8, 2]]
    never = -1  # no token id: every row runs to its budget
    plain = decode(model, *left_padded(prompts, 0), 20, never)
    assert decode(model, *left_padded(prompts, 0), 20, never, context=26) == plain  # 6 + 20 tokens fit in 26
    slid = decode(model, *left_padded(prompts, 0), 20, never, context=23)  # 3 + 20 fit in 23, 6 + 20 do not
    assert slid[0] == plain[0] and slid[1][:17] == plain[1][:17] and slid[1] != plain[1]
    with pytest.raises(ValueError, match="a prompt of 6 tokens leaves less than 2 tokens of room in a context of 7"):
        decode(model, *left_padded(prompts, 0), 20, never, context=7)


def test_forced_reading_finds_where_greedy_decoding_leaves_a_reference_within_and_across_windows():
    torch.manual_seed(0)
    # Weights drawn wide, so that what the model writes depends on its context (at the usual 0.02 it repeats one
    # token whatever it reads, and every window would agree).
    model, _ = loading.load(ARCHS["llama"][0], "char", {**ARCHS["llama"][1], "initializer_range": 0.5})
    model.eval()
    prompt = torch.randint(3, 90, (5,), generator=torch.Generator().manual_seed(2)).tolist()
    ids, mask = left_padded([prompt], 0)
    never = -1 % model.config.vocab_size  # an EOS the random model does not write, so every row runs its budget
    written = decode(model, ids, mask, 30, never)[0]
    found = forced(model, prompt, written)
    assert found.exact and found.right == found.tokens == 30 and found.loss > 0
    changed = written[:7] + [(written[7] + 1) % 90 + 3] + written[8:]
    assert forced(model, prompt, changed).right == 7 and not forced(model, prompt, changed).exact
    assert found.hits.all() and torch.allclose(-found.chance.log().sum(), torch.tensor(found.loss), rtol=1e-4)
    hits = forced(model, prompt, changed).hits
    assert len(hits) == 30 and not hits[7] and hits[:7].all()
    skipped = forced(model, prompt, written, skip=(7,))
    assert skipped.exact and skipped.tokens == 29
    # With a context of 12 (room 7) decoding slides its window; reading in the same windows follows it exactly.
    slid = decode(model, ids, mask, 30, never, context=12)[0]
    assert slid != written
    assert forced(model, prompt, slid, context=12).exact and not forced(model, prompt, slid).exact
    assert not forced(model, prompt, written, context=12).exact
    vocab = torch.tensor(sorted({*written, *range(3, 20)}))
    narrow = decode(model, ids, mask, 30, never, vocab=vocab)[0]
    assert forced(model, prompt, narrow, vocab=vocab).exact
    assert forced(model, prompt, narrow, vocab=vocab).loss < forced(model, prompt, narrow).loss
