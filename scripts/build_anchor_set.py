"""Build the shipped onboarding anchor set from the shared tables (deterministic).

Writes ``zerorouter_integrations/artifacts/onboarding_anchors.json.gz``: prompts over the shared
tables' domains with what grades an answer to each:

============  ===========================================  ==========================================
domain        source (table: task)                         grader
============  ===========================================  ==========================================
math          zeroeval: gsm, math-l5                       ``number`` / ``exact`` (final answer)
mcq           llmrouter_ulab: mmlu, arc_challenge, gpqa,   ``choice`` (letter)
              openbook_qa
commonsense   llmrouter_ulab: commonsense_qa               ``choice``
code          llmrouter_ulab: mbpp, human_eval             ``code`` (the tests run in a subprocess)
code          zeroeval: crux (output prediction)           ``literal`` (Python values compared)
open          alpacaeval (open-ended instructions)         ``judge`` (pairwise vs a reference answer)
============  ===========================================  ==========================================

Items are drawn per task with a fixed seed among prompts that discriminate between the table's models
(mean score between 0.1 and 0.9; for alpacaeval, whose scores are win rates against GPT-4-Turbo, the
prompts with the widest spread) and at most 3,000 characters long. alpacaeval has no gold answer:
the reference answer of an open-ended item is written at onboarding time by the reference model
(see ``zerorouter onboard --live --judge``).

Usage::

    python scripts/build_anchor_set.py [--data ../shared/data] [--out PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "zerorouter_integrations" / "artifacts" / "onboarding_anchors.json.gz"
MAX_CHARS = 3000
SEED = 0

#: (table, task, domain, grader, count)
PLAN = [
    ("zeroeval", "gsm", "math", "number", 30),
    ("zeroeval", "math-l5", "math", "exact", 20),
    ("zeroeval", "crux", "code", "literal", 20),
    ("llmrouter_ulab", "mmlu", "mcq", "choice", 25),
    ("llmrouter_ulab", "arc_challenge", "mcq", "choice", 15),
    ("llmrouter_ulab", "gpqa", "mcq", "choice", 10),
    ("llmrouter_ulab", "openbook_qa", "mcq", "choice", 10),
    ("llmrouter_ulab", "commonsense_qa", "commonsense", "choice", 25),
    ("llmrouter_ulab", "mbpp", "code", "code", 30),
    ("llmrouter_ulab", "human_eval", "code", "code", 10),
    ("alpacaeval", None, "open", "judge", 50),
]


def data_dir(arg: str | None) -> Path:
    """``--data``, else ``$ZEROROUTER_DATA``, else ``../shared/data`` next to the repository."""
    from zerorouter_integrations.data import find_data_dir

    return find_data_dir(arg)


def _reference(table: str, task: str | None, grader: str, ref: str | None) -> str | None:
    if grader == "judge":
        return None
    ref = str(ref).strip()
    if table == "zeroeval" and task == "gsm":
        return ref.lstrip("#").strip()
    return ref


def _human_eval(prompt: str, ref: str) -> tuple[str, str]:
    """(test code, code prefix) of a human_eval item: its ``check`` called on the prompt's function."""
    body = prompt.split("Complete the following function:", 1)[1]
    prefix = body.split("Implement the function body only", 1)[0].strip("\n ") + "\n"
    name = re.search(r"^def\s+(\w+)\s*\(", prefix, re.M)
    if name is None:
        raise ValueError(f"no function signature in a human_eval prompt: {prompt[:200]!r}")
    return f"{ref}\n\ncheck({name.group(1)})\n", prefix


def _mbpp_asserts(ref: str) -> list[str]:
    """mbpp's reference: a Python list of assert statements."""
    import ast

    return [str(a) for a in ast.literal_eval(ref)]


def build(data: Path) -> list[dict]:
    rng = np.random.default_rng(SEED)
    items: list[dict] = []
    for table, task, domain, grader, count in PLAN:
        prompts = pd.read_parquet(data / table / "prompts.parquet")
        outcomes = pd.read_parquet(data / table / "outcomes.parquet", columns=["prompt_id", "score"])
        stats = outcomes.groupby("prompt_id")["score"].agg(["mean", "std"])
        rows = prompts if task is None else prompts[prompts["task"] == task]
        rows = rows[rows["prompt"].str.len() <= MAX_CHARS].join(stats, on="prompt_id")
        if grader == "judge":
            rows = rows.sort_values(["std", "prompt_id"], ascending=[False, True]).head(3 * count)
        else:
            rows = rows[rows["reference"].notna() & rows["mean"].between(0.1, 0.9)]
        rows = rows.sort_values("prompt_id")
        pick = rows.iloc[np.sort(rng.choice(len(rows), size=min(count, len(rows)), replace=False))]
        for r in pick.itertuples():
            item = {
                "id": f"{table}:{r.prompt_id}",
                "table": table,
                "task": str(r.task),
                "domain": domain,
                "grader": grader,
                "prompt": str(r.prompt),
                "reference": _reference(table, task, grader, r.reference),
            }
            if grader == "code":
                if task == "mbpp":
                    item["tests"] = "\n".join(_mbpp_asserts(str(r.reference)))
                else:
                    item["tests"], item["code_prefix"] = _human_eval(str(r.prompt), str(r.reference))
            items.append(item)
    return items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="the shared data folder (default: ../shared/data or $ZEROROUTER_DATA)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    items = build(data_dir(args.data))
    payload = {"version": 1, "source": "scripts/build_anchor_set.py", "seed": SEED, "items": items}
    raw = json.dumps(payload, ensure_ascii=False, sort_keys=True, indent=0).encode()
    out = Path(args.out)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw)
    tmp.replace(out)
    counts = pd.Series([i["domain"] for i in items]).value_counts().to_dict()
    print(f"wrote {out} ({len(items)} items, {out.stat().st_size / 1024:.0f} KiB): {counts}")


if __name__ == "__main__":
    main()
