"""Demonstration formats: how a Problem is written for the model, and how an answer is read back.

A format owns both directions. `render(problem)` gives `(prompt, completion)`: the model is trained on the
completion given the prompt, and at evaluation sees the prompt alone. `parse(text)` reads a generated completion
and returns the remainder it claims, or None when it claims none. Formats are pure Python (no torch) and are
chosen by registry name, so a config says `format: sub` and a sweep can vary it.
"""

from __future__ import annotations

from typing import Protocol

from longdiv.data.problems import Problem


class Format(Protocol):
    name: str

    def render(self, problem: Problem) -> tuple[str, str]: ...

    def parse(self, text: str) -> int | None: ...


_REGISTRY: dict[str, Format] = {}


def register(fmt: Format) -> Format:
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


# Importing the modules registers their formats.
from longdiv.data.formats import direct, recchia, sub  # noqa: F401
