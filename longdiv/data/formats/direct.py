"""`direct`: the question, then the remainder. Saxton et al.'s setting, with no steps to learn from.

    What is the remainder when 93 is divided by 59?
    = 34
"""

from __future__ import annotations

import re

from longdiv.data.formats import register
from longdiv.data.problems import Problem

ANSWER_RE = re.compile(r"=\s*(\d{1,200})(?!\d)")  # a longer number is no claim, not its first 200 digits


class Direct:
    name = "direct"

    def render(self, problem: Problem) -> tuple[str, str]:
        return f"{problem.question}\n", f"= {problem.remainder}\n"

    def parse(self, text: str) -> int | None:
        match = ANSWER_RE.search(text)
        return int(match[1]) if match else None


register(Direct())
