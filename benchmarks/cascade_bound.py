"""How far can a static answer-agreement cascade go? A hindsight bound on the cascade target (issue 15).

Issue 15 asks the cascade to reach the best single model's quality at ≤ 0.6 of its cost on
routerbench_subset and zeroeval (5 of 6 held-out splits). This script asks what *any* static plan
could do on the recorded answers, choosing with hindsight on the very prompts it is scored on:

* per task (ARC, Winogrande, MBPP, …) one strategy, or a random mix of two (the convex hull): a
  single model, or an agreement cascade of ``k`` (2…``--max-k``) models cheaper than the best single
  model (all ``k`` are called; their answer is taken when all agree, else the best single model is
  called too);
* the per-task strategies are combined by a Lagrangian sweep (argmax quality − λ·cost per task), and
  the least total cost whose quality reaches the best single model's is reported (on the upper hull:
  a random mix of two operating points is a plan too), as a fraction of that model's cost ("never"
  when no combination below its own cost reaches it).

Choosing with hindsight on the scored prompts, the bound is optimistic: a plan fit on training
prompts can only do worse. A router that reaches the target where the bound does not gets there by
per-prompt routing (prompt features), not by answer agreement.

Rows: ``all prompts`` (the whole table) and the test prompts of ``split_by_prompt(table, seed=s)``
for ``s`` in 0…5 (the splits of ``benchmarks/cascade.py``). The last column is the honest version
of the same plan: each λ's per-task strategies are chosen on the split's training prompts and scored
on its test prompts.

Run: ``.venv/bin/python benchmarks/cascade_bound.py [--tables routerbench_subset,zeroeval] [--max-k 3]``
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence

import numpy as np

from zerorouter_integrations.cascade import table_answers
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.evaluation import POOL_COVERAGE
from zerorouter_integrations.metrics import Curve, cost_to_reach, upper_hull
from zerorouter_integrations.tables import load_table, split_by_prompt

DATA = find_data_dir()


def strategies(
    S: np.ndarray, C: np.ndarray, agree: dict[tuple[int, ...], np.ndarray], best: int
) -> np.ndarray:
    """(cost, quality) sums of every strategy on one task's prompts: single models, then cascades."""
    out = [(C[:, j].sum(), S[:, j].sum()) for j in range(S.shape[1])]
    for combo, ok in agree.items():
        q = np.where(ok, S[:, combo[0]], S[:, best]).sum()
        c = C[:, list(combo)].sum() + C[~ok, best].sum()
        out.append((c, q))
    return np.array(out, dtype=float)


def agreement(A: np.ndarray, comparable: np.ndarray, combo: tuple[int, ...]) -> np.ndarray:
    """Prompts with a comparable answer on which every model of ``combo`` gives the same answer."""
    first = A[:, combo[0]]
    same = comparable & np.array([x is not None for x in first])
    for j in combo[1:]:
        same &= A[:, j] == first
    return same


def cost_to_match(
    per_task: Sequence[np.ndarray],
    target_q: float,
    ref_cost: float,
    scored: Sequence[np.ndarray] | None = None,
) -> float | None:
    """Least total cost (fraction of ``ref_cost``) of per-task strategy mixes reaching ``target_q``.

    Each task's strategy is the argmax of ``quality − λ·cost`` in ``per_task`` as λ sweeps; its cost
    and quality are read from ``scored`` (the same strategies on other prompts) when given, else from
    ``per_task`` itself (hindsight).
    """
    pts = set()
    for lam in np.concatenate([[0.0], np.geomspace(1e-6, 1e3, 3000)]):
        c = q = 0.0
        for t, P in enumerate(per_task):
            k = int(np.lexsort((P[:, 0], -(P[:, 1] - lam * P[:, 0])))[0])
            R = P if scored is None else scored[t]
            c, q = c + R[k, 0], q + R[k, 1]
        pts.add((c, q))
    pts_arr = np.array(sorted(pts))
    reach = cost_to_reach(Curve(points=pts_arr, hull=upper_hull(pts_arr)), target_q - 1e-12)
    return None if reach is None or reach >= ref_cost * (1 - 1e-9) else reach / ref_cost


def bound_rows(name: str, max_k: int, n_splits: int) -> list[str]:
    table = load_table(DATA / name)
    found = table_answers(table)
    if isinstance(found, str):
        return [f"| {name} | {found} | | | | | |"]
    A, kinds = found
    S, C = table.scores(), table.costs()
    # the evaluated pool, as in the evaluation contract: models scored and priced on enough prompts
    have = ~np.isnan(S) & ~np.isnan(C)
    pool = np.flatnonzero(have.mean(axis=0) >= POOL_COVERAGE)
    S, C, A, names = S[:, pool], C[:, pool], A[:, pool], [table.model_names[j] for j in pool]
    ok = have[:, pool].all(axis=1)
    tasks = table.prompts["task"].to_numpy()
    ids = np.array(table.prompt_ids)
    comparable = np.array([k is not None for k in kinds])
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def agrees(combo: tuple[int, ...]) -> np.ndarray:  # over every prompt, once per combination
        if combo not in cache:
            cache[combo] = agreement(A, comparable, combo)
        return cache[combo]

    rows = []
    subsets = [("all prompts", ok, np.zeros_like(ok))]
    for s in range(n_splits):
        test = ok & np.isin(ids, split_by_prompt(table, seed=s).test_prompt_ids)
        subsets.append((f"split {s}", test, ok & ~test))
    for label, sel, train in subsets:
        best = int(np.argmax(S[sel].mean(axis=0)))
        ref_cost = C[sel, best].sum()
        cheaper = [j for j in range(S.shape[1]) if j != best and C[sel, j].sum() < ref_cost]
        singles, cascades, fitted = [], [], []
        for task in sorted(set(tasks[sel])):
            in_task = tasks == task
            combos = (
                [c for k in range(2, max_k + 1) for c in itertools.combinations(cheaper, k)]
                if comparable[ok & in_task].any()
                else []
            )
            test, fit_on = (
                strategies(S[m], C[m], {c: agrees(c)[m] for c in combos}, best)
                for m in (sel & in_task, train & in_task)
            )
            singles.append(test[: S.shape[1]])
            cascades.append(test)
            fitted.append(fit_on)  # the same strategies, in the same order, on the training prompts
        target = S[sel, best].sum()
        fmt = lambda x: "never" if x is None else f"{x:.3f}"  # noqa: E731
        chosen = "–" if not train.any() else fmt(cost_to_match(fitted, target, ref_cost, scored=cascades))
        rows.append(
            f"| {name} | {label} | {sel.sum()} | {names[best]} ({100 * S[sel, best].mean():.1f} %) | "
            f"{fmt(cost_to_match(singles, target, ref_cost))} | {fmt(cost_to_match(cascades, target, ref_cost))} | "
            f"{chosen} |"
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tables", default="routerbench_subset,zeroeval")
    ap.add_argument("--max-k", type=int, default=3, help="largest agreement cascade (models called together)")
    ap.add_argument("--splits", type=int, default=6)
    args = ap.parse_args(argv)
    print(
        "| table | prompts scored | n | best single (quality) | per-task single models: cost to match | "
        f"+ agreement cascades of 2–{args.max_k} cheaper models: cost to match | "
        "the same, strategies chosen on the training prompts |"
    )
    print("| --- | --- | ---: | --- | ---: | ---: | ---: |")
    for name in args.tables.split(","):
        for row in bound_rows(name, args.max_k, args.splits):
            print(row, flush=True)


if __name__ == "__main__":
    main()
