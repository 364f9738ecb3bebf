"""Training windows: demonstrations longer than the context are cut into windows that generation would go through."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from longdiv.data.datamodule import DivisionData, collate_train
from longdiv.data.windows import keep, slide, windows


@given(length=st.integers(1, 400), room=st.integers(2, 60))
def test_windows_learn_every_token_once_from_the_view_generation_decodes_it_from(length, room):
    cut = windows(length, room)
    learned = [t for _, new, end in cut for t in range(new, end)]
    assert learned == list(range(length))  # each token once, in order
    start = 0
    for first, new, end in cut:
        assert end - first <= room and first <= new < end  # fits after the prompt, learns at least one token
        for t in range(new, end):  # the window generation is in when it predicts token t
            start = slide(start, t, room)
            assert start == first
    assert len(cut) == 1 or all(new - first == keep(room) for first, new, _ in cut[1:])


def test_windows_example_from_the_docstring():
    assert windows(11, 6) == [(0, 0, 6), (3, 6, 9), (6, 9, 11)]
    assert windows(6, 6) == [(0, 0, 6)]
    with pytest.raises(ValueError, match="room for at least two completion tokens"):
        windows(5, 1)


def make(**kw):
    args = {"format": "subrow", "num_demos": 6, "num_val": 2, "num_test": 3, "tokenizer_name": "tiny"}
    data = DivisionData(**(args | kw))
    data.setup()
    return data


def test_long_demonstrations_become_windows_that_start_with_the_prompt_and_fit():
    whole, cut = make(), make(context=128)
    assert whole.train_examples == whole.demos and cut.demos == whole.demos
    assert max(map(len, whole.demos)) > 128 and len(cut.train_examples) > len(cut.demos)
    assert max(map(len, cut.train_examples)) == 128
    by_demo = {}
    for window in cut.train_examples:
        by_demo.setdefault(window.problem.key, []).append(window)
    assert len(by_demo) == len(cut.demos)
    for demo in cut.demos:
        parts = by_demo[demo.problem.key]
        assert all(w.prompt_ids[: len(demo.prompt_ids)] == demo.prompt_ids for w in parts)
        # The loss (labels from collate_train) covers the completion exactly once: the windows' labels, in order,
        # are the demonstration's completion and its EOS.
        batch = collate_train(parts, cut.tokenizer.pad_token_id)
        labels = [t for row in batch["labels"].tolist() for t in row if t != -100]
        assert labels == demo.completion_ids
        # After the prompt, each window reads a contiguous slice of the completion.
        completion = demo.completion_ids
        for w in parts:
            body = (w.prompt_ids + w.completion_ids)[len(demo.prompt_ids) :]
            assert any(completion[i : i + len(body)] == body for i in range(len(completion)))
    assert cut.hash != whole.hash  # what is trained changed, so the data identity did


def test_demonstrations_that_fit_are_unchanged():
    default, roomy = make(), make(context=2048)
    assert roomy.train_examples == default.train_examples and roomy.hash == default.hash
    assert default.context == 2048  # the tokenizer's window, with no model to link it from


def test_the_context_defaults_to_the_models_window_and_may_not_pass_it():
    assert make(max_length=128).context == 128 and len(make(max_length=128).train_examples) > 6
    with pytest.raises(ValueError, match=r"context is 256 but the model's window is 128; pass --data.context 128"):
        make(max_length=128, context=256)
    with pytest.raises(ValueError, match=r"context is 2; it must hold a prompt and two tokens"):
        DivisionData(context=2)

