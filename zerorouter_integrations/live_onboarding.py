"""Run the anchor set through a model: bounded concurrency, grading, judging, and an early stop.

:func:`run_anchors` calls the model on each anchor (``concurrency`` calls at a time, a progress bar),
grades each answer (:func:`zerorouter_integrations.anchorset.grade_anchor`; open-ended answers by a
judge model against a reference model's answer, :mod:`zerorouter_integrations.judge`), and returns a
:class:`AnchorRun`. When the first ``stop_after`` calls all fail with the same error (a missing key,
an unknown model, a wrong URL) it stops at once and raises :class:`OnboardingError` quoting the
first failure verbatim; otherwise failures are counted and the first one is kept in the report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from zerorouter_integrations.anchorset import Anchor, grade_anchor
from zerorouter_integrations.errors import AllModelsFailedError, OnboardingError
from zerorouter_integrations.judge import judge_score

__all__ = ["AnchorRun", "run_anchors"]


@dataclass
class AnchorRun:
    """What a live run produced: graded anchors, their costs, and what failed or was left out."""

    model: str
    prompts: list[str] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    costs: list[float] = field(default_factory=list)
    failures: int = 0
    first_error: str | None = None
    skipped: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One paragraph for a console."""
        left = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items()))
        lines = [f"{len(self.scores)} anchor(s) graded on {self.model!r}, mean score {self.mean_score:.3f}"]
        if left:
            lines.append(f"left out: {left}")
        if self.failures:
            lines.append(f"{self.failures} call(s) failed; the first: {self.first_error}")
        return "\n".join(lines)

    @property
    def mean_score(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else math.nan


def _cause(exc: BaseException) -> str:
    """The provider's own message: the last attempt's, when dispatch tried several."""
    if isinstance(exc, AllModelsFailedError) and exc.attempts:
        a = exc.attempts[-1]
        return f"{a.error_type}: {a.message}"
    return f"{type(exc).__name__}: {exc}"


def _asker(dispatcher: Any, name: str, max_tokens: int) -> Any:
    def ask(prompt: str) -> str:
        res = dispatcher.complete(
            [name], [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0
        )
        return res.content or ""

    return ask


def run_anchors(
    model: str,
    endpoint: Any,
    anchors: Sequence[Anchor],
    *,
    judge: Any = None,
    reference: Any = None,
    concurrency: int = 8,
    run_code: bool = True,
    max_tokens: int = 512,
    stop_after: int = 8,
    show_progress: bool | None = None,
    timeout_s: float = 120.0,
) -> AnchorRun:
    """Run ``anchors`` through ``endpoint`` and grade the answers (see the module docstring).

    Parameters
    ----------
    judge, reference : ModelEndpoint or None
        The judge of open-ended answers, and the model that writes their reference answer (default:
        the judge). Without a judge, open-ended anchors are left out (not called).
    concurrency : int, default=8
        Calls in flight at once.
    run_code : bool, default=True
        Run code answers against their tests (model-written code, in a subprocess); False leaves the
        code anchors out.
    stop_after : int, default=8
        Stop when this many first calls all failed alike.
    """
    from tqdm.auto import tqdm

    from zerorouter_integrations.dispatch import Dispatcher, RetryPolicy

    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r}; expected an integer >= 1")
    endpoints = {model: endpoint}
    if judge is not None:
        endpoints["__judge__"] = judge
        endpoints["__reference__"] = reference or judge
    dispatcher = Dispatcher(endpoints, retry=RetryPolicy(max_retries=1, timeout_s=timeout_s))
    ask_judge = _asker(dispatcher, "__judge__", 16)
    ask_reference = _asker(dispatcher, "__reference__", max_tokens)
    run = AnchorRun(model)
    todo: list[Anchor] = []
    for a in anchors:
        why = "open-ended (no --judge)" if a.grader == "judge" and judge is None else None
        why = why or ("code (not run)" if a.grader == "code" and not run_code else None)
        if why:
            run.skipped[why] = run.skipped.get(why, 0) + 1
        else:
            todo.append(a)

    def one(a: Anchor) -> tuple[Anchor, float | None, float]:
        res = dispatcher.complete(
            [model], [{"role": "user", "content": a.prompt}], max_tokens=max_tokens, temperature=0
        )
        cost = res.cost_usd if res.cost_known else math.nan
        if a.grader == "judge":
            try:
                ref = ask_reference(a.prompt)
                return a, judge_score(ask_judge, a.prompt, res.content or "", ref), cost
            except Exception as exc:  # the judge failed, not the model: leave the anchor out
                raise _JudgeFailed(_cause(exc)) from exc
        return a, grade_anchor(a, res.content or "", run_code=run_code), cost

    first: list[str | None] = []  # the causes of the first completed calls (None: it answered)
    with (
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="onboard") as pool,
        tqdm(total=len(todo), desc=f"onboarding {model}", disable=show_progress is False, leave=False) as bar,
    ):
        pending: set[Future] = set()
        queue = list(reversed(todo))
        while queue or pending:
            while queue and len(pending) < concurrency:
                pending.add(pool.submit(one, queue.pop()))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                bar.update(1)
                try:
                    a, score, cost = fut.result()
                except _JudgeFailed as exc:
                    run.skipped["judge failed"] = run.skipped.get("judge failed", 0) + 1
                    run.first_error = run.first_error or f"judge: {exc}"
                    first.append(None)
                    continue
                except Exception as exc:
                    cause = _cause(exc)
                    run.failures += 1
                    run.first_error = run.first_error or cause
                    first.append(cause)
                    if _all_failed_alike(first, min(stop_after, len(todo))):
                        for f in pending:
                            f.cancel()
                        raise OnboardingError(
                            f"stopped: the first {len(first)} call(s) to {model!r} all failed alike; "
                            f"the first failure: {first[0]}"
                        ) from exc
                    continue
                first.append(None)
                if score is None:
                    run.skipped["ungradable"] = run.skipped.get("ungradable", 0) + 1
                    continue
                run.prompts.append(a.prompt)
                run.scores.append(float(score))
                run.costs.append(cost)
    return run


class _JudgeFailed(Exception):
    """The judge or reference model failed on an anchor the model itself answered."""


def _all_failed_alike(first: list[str | None], n: int) -> bool:
    return len(first) == n and n > 0 and first[0] is not None and all(c == first[0] for c in first)
