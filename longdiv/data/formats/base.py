"""What a demonstration format is, and the registry that finds one by name.

A format owns every direction of its text. `render(problem)` gives `(prompt, completion)`: the model is trained on
the completion given the prompt, and at evaluation sees the prompt alone. `parse(text)` reads a generated
completion and returns the remainder it claims, or None when it claims none; accuracy is decided by it alone.
`verify(problem, completion)` says where and why a trace went wrong, for error analysis. `char_layout` says whether
the format's digits are found by fixed distances in characters, so that it needs one token per character.
`strike` and `untrained` serve formats whose traces hold practice slips the model strikes out (`subfix`).
`quotient(text)` reads the quotient a trace claims (None where it claims none, always for a format whose traces
show none), for an outcome check a user can compute: q * divisor + remainder = dividend.
`alphabet` is every character a completion of the format can hold, or None when that is not a small fixed set; a
model can then compute its output layer for those characters' tokens alone (`--model.restrict_vocab`). A format
whose completions are words (`recchia-*`) gives a `lexicon` instead: a text whose tokens, under any tokenizer that
splits at word, number and symbol boundaries, hold every token of any of its completions.

Formats are pure Python (no torch) and are chosen by name, so a config says `format: subrow` and a sweep can vary
it. Each format module registers its formats when imported; `longdiv.data.formats` imports them all.
"""

from __future__ import annotations

from typing import Protocol

from longdiv.data.problems import Problem
from longdiv.data.verify import Verdict


class Format(Protocol):
    name: str
    char_layout: bool
    alphabet: str | None
    lexicon: str | None
    strike: str | None  # the line with which the model strikes out its line above (`subfix`), or None

    def render(self, problem: Problem) -> tuple[str, str]: ...

    def parse(self, text: str) -> int | None: ...

    def verify(self, problem: Problem, completion: str) -> Verdict: ...

    def quotient(self, text: str) -> int | None: ...

    def untrained(self, problem: Problem) -> list[tuple[int, int]]:
        """The (start, end) character spans of the completion that are read but not learned; [] for most."""
        ...


_REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Makes `fmt` available as `get_format(fmt.name)`."""
    if fmt.name in _REGISTRY:
        raise ValueError(f"format {fmt.name!r} is registered twice")
    _REGISTRY[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    """Returns the registered format called `name`."""
    if name not in _REGISTRY:
        raise ValueError(f"format {name!r} is unknown; choose one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def format_names() -> list[str]:
    return sorted(_REGISTRY)
