"""Pairwise judging of open-ended answers against a reference answer, in both orders.

The judge model sees the instruction and two answers and names the better one (``A`` or ``B``).
Each candidate is judged twice, once as ``A`` and once as ``B``, which cancels the judge's position
bias; the score is the mean of the two verdicts (1 = candidate preferred, 0.5 = tie, 0 = reference
preferred), on the same scale as the shared alpacaeval table (probability of beating the reference).
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["JUDGE_TEMPLATE", "judge_score", "parse_verdict"]

#: The judge's prompt; ``{instruction}``, ``{a}`` and ``{b}`` are filled in.
JUDGE_TEMPLATE = """You are a careful, impartial judge. Compare two answers to the same instruction and decide
which one is more helpful, correct and complete. Ignore their length and their order.

[Instruction]
{instruction}

[Answer A]
{a}

[Answer B]
{b}

Reply with exactly one letter: A if answer A is better, B if answer B is better, or T for a tie."""

_VERDICT = re.compile(r"\b([ABT])\b")

#: ``ask(prompt) -> reply text`` (e.g. a LiteLLM call to the judge model).
Ask = Callable[[str], str]


def parse_verdict(reply: str) -> str | None:
    """``"A"``, ``"B"`` or ``"T"`` from a judge's reply (its first standalone letter), else None."""
    m = _VERDICT.search((reply or "").strip().upper())
    return m.group(1) if m else None


def judge_score(ask: Ask, instruction: str, candidate: str, reference: str) -> float | None:
    """How much the judge prefers ``candidate`` to ``reference`` in [0, 1], both orders averaged.

    Returns None when neither verdict could be read.
    """
    first = parse_verdict(ask(JUDGE_TEMPLATE.format(instruction=instruction, a=candidate, b=reference)))
    second = parse_verdict(ask(JUDGE_TEMPLATE.format(instruction=instruction, a=reference, b=candidate)))
    wins = []
    if first is not None:
        wins.append({"A": 1.0, "B": 0.0, "T": 0.5}[first])
    if second is not None:
        wins.append({"A": 0.0, "B": 1.0, "T": 0.5}[second])
    return sum(wins) / len(wins) if wins else None
