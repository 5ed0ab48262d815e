"""Build the router artifact shipped inside the package: ``zerorouter_integrations/artifacts/default.json.gz``.

Re-run it from the repository root (it reads ``../shared/data``)::

    python scripts/build_default_artifact.py [--data ../shared/data] [--out zerorouter_integrations/artifacts/default.json.gz]

What it does, deterministically (seed 0):

1. Loads the routing tables that carry costs (zeroeval, routerbench_subset, llmrouter_ulab, and the
   open-ended alpacaeval: chat and writing instructions judged by win probability) and merges them
   into one sparse table (prompt ids prefixed with the table name; model names are distinct).
   alpacaeval's 40 unpriced models shape the latent space (and the prior of new models) only: they
   get no profile, since a router cannot weigh their cost.
2. Holds out 20 % of each table's prompts (``split_by_prompt``, seed 0, identical questions kept
   together). The held-out ids are recorded in the artifact so ``zerorouter demo`` evaluates the
   shipped router only on prompts it was not fit on.
3. Encodes every prompt with the bundled MiniLM (``QueryEncoder(**ROUTING_ENCODER)``: the int8 ONNX
   model, first 64 tokens) + text features. Routers built on the artifact embed with the same
   settings (``benchmarks/quality.py --max-seq-length/--precision`` and
   ``benchmarks/encoder_precision.py`` compare them with float32 / 128 tokens).
4. Fits the ZeroRouter latent space (``IRTSpace``, defaults) on the training prompts, builds each
   model's profile (ability, cost model from observed costs, LiteLLM name and prices).
5. Picks 100 anchors with a reference answer (information-maximizing) for live onboarding, and 600
   calibration prompts (predicted coordinates) for policy calibration.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zerorouter_integrations.artifact import DEFAULT_ARTIFACT  # noqa: E402
from zerorouter_integrations.data import find_data_dir  # noqa: E402
from zerorouter_integrations.encoder import ROUTING_ENCODER  # noqa: E402
from zerorouter_integrations.tables import RoutingTable, load_table, split_by_prompt  # noqa: E402
from zerorouter_integrations.training import fit_artifact  # noqa: E402

TABLES = ("zeroeval", "routerbench_subset", "llmrouter_ulab", "alpacaeval")
#: Tables whose models without a price are fit (they shape the space) but get no profile.
LATENT_ONLY_UNPRICED = ("alpacaeval",)
MAX_SEQ_LENGTH = ROUTING_ENCODER["max_seq_length"]
PRECISION = ROUTING_ENCODER["precision"]
N_ANCHORS = 100
N_CALIBRATION = 600
SEED = 0


def latent_only_models(data: Path) -> list[str]:
    """The unpriced models of :data:`LATENT_ONLY_UNPRICED` (no input price in ``models.csv``)."""
    out: list[str] = []
    for name in LATENT_ONLY_UNPRICED:
        m = load_table(data / name).models
        out += m.loc[m["input_usd_per_1m"].isna(), "model"].astype(str).tolist()
    return sorted(out)


def merged_table(data: Path) -> tuple[RoutingTable, dict[str, list[str]]]:
    """One sparse table over several folders, plus each folder's held-out prompt ids (prefixed)."""
    prompts, outcomes, models = [], [], []
    held_out: dict[str, list[str]] = {}
    for name in TABLES:
        t = load_table(data / name)
        split = split_by_prompt(t, test_fraction=0.2, seed=SEED)
        held_out[name] = [f"{name}/{pid}" for pid in split.test_prompt_ids]
        p = t.prompts.copy()
        p["prompt_id"] = name + "/" + p["prompt_id"]
        p["task"] = name + "/" + p["task"]
        o = t.outcomes.copy()
        o["prompt_id"] = name + "/" + o["prompt_id"]
        prompts.append(p)
        outcomes.append(o)
        models.append(t.models)
    table = RoutingTable.from_frames(
        pd.concat(prompts, ignore_index=True),
        pd.concat(outcomes, ignore_index=True),
        pd.concat(models, ignore_index=True),
        name="+".join(TABLES),
    )
    return table, held_out


def build(data: Path, out: Path) -> Path:
    t0 = time.perf_counter()
    table, held_out = merged_table(data)
    test_ids = [pid for ids in held_out.values() for pid in ids]
    print(
        f"{table}: {len(table.prompts) - len(test_ids)} training prompts, {len(test_ids)} held out",
        flush=True,
    )
    artifact = fit_artifact(
        table,
        exclude_prompt_ids=test_ids,
        latent_only_models=latent_only_models(data),
        max_seq_length=MAX_SEQ_LENGTH,
        precision=PRECISION,
        n_anchors=N_ANCHORS,
        n_calibration=N_CALIBRATION,
        seed=SEED,
        build_info={
            "script": "scripts/build_default_artifact.py",
            "tables": list(TABLES),
            "held_out_prompt_ids": held_out,
            "table_models": {name: sorted(load_table(data / name).model_names) for name in TABLES},
        },
    )
    path = artifact.save(out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - t0:.0f} s")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="the shared data folder (default: ../shared/data or $ZEROROUTER_DATA)",
    )
    ap.add_argument("--out", type=Path, default=DEFAULT_ARTIFACT)
    args = ap.parse_args(argv)
    build(find_data_dir(args.data), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
