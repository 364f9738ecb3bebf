"""The sliding window that training and generation share, for demonstrations longer than the model's context.

The model sees its prompt and at most `room = context - len(prompt)` tokens of the completion after it. Generation
writes the completion until that window is full, then slides: it keeps the prompt and the last `keep(room)` tokens
it wrote, and goes on. Training cuts each demonstration into exactly the windows that generation goes through while
writing it, so each token is learned from the view it will be decoded from, and the loss counts each token once, in
the window that writes it. With a room of 6 (keep 3), a completion of 11 tokens `abcdefghijk` gives:

    prompt abcdef          loss on a..f       (start 0, new 0, end 6)
    prompt def|ghi         loss on g..i       (start 3, new 6, end 9)
    prompt ghi|jk          loss on j, k       (start 6, new 9, end 11)

Pure Python: the data layer cuts training windows with it, and `longdiv.models.decode` slides with it.
"""

from __future__ import annotations


def keep(room: int) -> int:
    """Completion tokens a window keeps when it slides: half the room, rounded down (less than the room, so the token
    to be predicted fits too). Every token after the first window is then written with between half a window and a
    whole window of recent text before it (the paper's `look` actions copy what a step needs into that recent text),
    and a decoder encodes a row's window again once every `room - keep` tokens rather than at every token."""
    return room // 2


def slide(start: int, written: int, room: int) -> int:
    """Where the window starts (in completion tokens) when token `written` is to be predicted, if it started at
    `start`: where it was while prompt, `completion[start:written]` and the predicted token all fit in the context,
    else `keep(room)` tokens back."""
    return written - keep(room) if written - start >= room else start


def windows(length: int, room: int) -> list[tuple[int, int, int]]:
    """The windows of a completion of `length` tokens, as (start, new, end): the model reads the prompt and
    `completion[start:end]`, and learns `completion[new:end]`, the tokens no earlier window learned. One window,
    (0, 0, length), when the completion fits."""
    if room < 2:
        raise ValueError(f"a window needs room for at least two completion tokens after its prompt, not {room}")
    cut, start, new = [], 0, 0
    while True:
        end = min(start + room, length)
        cut.append((start, new, end))
        if end == length:
            return cut
        start, new = slide(start, end, room), end
