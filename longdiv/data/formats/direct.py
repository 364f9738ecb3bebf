"""`direct`: the question, then the remainder. Saxton et al.'s setting, with no steps to learn from.

    What is the remainder when 93 is divided by 59?     <- prompt
    = 34                                                <- completion

With no steps, its checker gives the coarse verdict: right answer, wrong answer, or no answer.
"""

from __future__ import annotations

import re

from longdiv.data.formats.base import register
from longdiv.data.problems import Problem
from longdiv.data.verify import Verdict, answer_verdict

ANSWER_RE = re.compile(r"=\s*(\d{1,200})(?!\d)")  # a longer number is no claim, not its first 200 digits


class Direct:
    name = "direct"
    char_layout = False
    alphabet = None  # the answer's digits are tokenized as the tokenizer likes
    lexicon = None
    strike = None

    def untrained(self, problem: Problem) -> list[tuple[int, int]]:
        return []

    def render(self, problem: Problem) -> tuple[str, str]:
        return f"{problem.question}\n", f"= {problem.remainder}\n"

    def parse(self, text: str) -> int | None:
        match = ANSWER_RE.search(text)
        return int(match[1]) if match else None

    def verify(self, problem: Problem, completion: str) -> Verdict:
        return answer_verdict(problem, self.parse(completion))

    def quotient(self, text: str) -> int | None:
        return None  # the answer alone


register(Direct())
