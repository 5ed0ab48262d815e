"""What an evaluation reports: :class:`RouterResult` per router (curve, AUDC, QNC, cost to reach the
references, timings) and :class:`EvaluationReport` (every router on one split, as text, CSV, JSON and
a plot), the output of :func:`zerorouter_integrations.evaluation.evaluate`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zerorouter_integrations.extras import need
from zerorouter_integrations.metrics import Curve, cost_to_reach, upper_hull

__all__ = ["EvaluationReport", "RouterResult"]


@dataclass
class RouterResult:
    """One router's evaluation."""

    name: str
    curve: Curve
    audc: float
    qnc: float | None
    cost_at_95: float | None
    apgr: float | None
    best_quality: float
    fit_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "audc": self.audc,
            "qnc": self.qnc,
            "cost_at_95": self.cost_at_95,
            "apgr": self.apgr,
            "best_quality": self.best_quality,
            "curve": [[float(c), float(q)] for c, q in self.curve.hull],
            "fit_seconds": round(self.fit_seconds, 3),
            **self.extra,
        }


@dataclass
class EvaluationReport:
    """Everything ``zerorouter eval`` prints and writes."""

    table: str
    routers: dict[str, RouterResult]
    references: dict[str, Any]
    pool: list[str]
    new_models: list[str]
    excluded_models: list[dict[str, str]]
    n_test_prompts: int
    n_dropped_prompts: int
    anchors: int
    cost_range: tuple[float, float]
    oracle_curve: Curve
    unavailable: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        refs = self.references
        return {
            "table": self.table,
            "routers": {name: r.to_dict() for name, r in self.routers.items()},
            "unavailable_routers": dict(self.unavailable),
            "references": {
                "best_single": {k: refs["best_single"][k] for k in ("model", "quality", "cost")},
                "cheapest": {k: refs["cheapest"][k] for k in ("model", "quality", "cost")},
                "oracle": {**refs["oracle"], "audc": refs["oracle_audc"]},
                "random_mix": {**refs["random_mix"], "audc": refs["random_mix_audc"]},
                "single_models": refs["single_models"],
            },
            "pool": list(self.pool),
            "new_models": list(self.new_models),
            "excluded_models": list(self.excluded_models),
            "n_test_prompts": self.n_test_prompts,
            "n_dropped_test_prompts": self.n_dropped_prompts,
            "anchors": self.anchors,
            "cost_range": list(self.cost_range),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=None, allow_nan=False)

    def rows(self) -> list[dict[str, Any]]:
        """One row per router plus the references, for tables."""
        refs = self.references
        bs = refs["best_single"]
        out = []
        for name, r in self.routers.items():
            out.append(
                {
                    "router": name,
                    "audc": r.audc,
                    "qnc": r.qnc,
                    "cost_at_95": r.cost_at_95,
                    "apgr": r.apgr,
                    "best_quality": r.best_quality,
                }
            )
        na = "–"
        out.append(
            {
                "router": f"best single ({bs['model']})",
                "audc": na,
                "qnc": 1.0,
                "cost_at_95": 1.0,
                "apgr": 1.0,
                "best_quality": bs["quality"],
            }
        )
        out.append(
            {
                "router": "random mix",
                "audc": refs["random_mix_audc"],
                "qnc": 1.0,
                "cost_at_95": cost_to_reach(
                    Curve(
                        points=np.asarray(refs["random_mix"]["curve"]),
                        hull=upper_hull(np.asarray(refs["random_mix"]["curve"])),
                    ),
                    0.95 * bs["quality"],
                )
                / bs["cost"]
                if bs["cost"] > 0
                else na,
                "apgr": 0.5,
                "best_quality": bs["quality"],
            }
        )
        out.append(
            {
                "router": "oracle",
                "audc": refs["oracle_audc"],
                "qnc": cost_to_reach(self.oracle_curve, bs["quality"]) / bs["cost"] if bs["cost"] > 0 else na,
                "cost_at_95": cost_to_reach(self.oracle_curve, 0.95 * bs["quality"]) / bs["cost"]
                if bs["cost"] > 0
                else na,
                "apgr": na,
                "best_quality": refs["oracle"]["quality"],
            }
        )
        return out

    def to_markdown(self) -> str:
        def fmt(v: Any, pct: bool = False) -> str:
            if isinstance(v, str):
                return v
            if v is None:
                return "never" if not pct else "–"
            return f"{100 * v:.1f}" if pct else f"{v:.3f}"

        lines = [
            f"Table `{self.table}`: {self.n_test_prompts} test prompts ({self.n_dropped_prompts} dropped), "
            f"pool of {len(self.pool)} models ({len(self.new_models)} new, onboarded from ≤{self.anchors} anchors).",
            "",
            "| router | AUDC (%) | QNC | cost at 95 % | APGR | best quality (%) |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in self.rows():
            lines.append(
                f"| {r['router']} | {fmt(r['audc'], True)} | {fmt(r['qnc'])} | {fmt(r['cost_at_95'])} | "
                f"{fmt(r['apgr'])} | {fmt(r['best_quality'], True)} |"
            )
        lines.append("")
        lines.append(
            "QNC and cost at 95 % are fractions of the best single model's cost; 'never' means the curve "
            "does not reach that quality."
        )
        for name, why in self.unavailable.items():
            lines.append(f"- `{name}` unavailable: {why}")
        for ex in self.excluded_models:
            lines.append(f"- excluded `{ex['model']}`: {ex['reason']}")
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["router", "audc", "qnc", "cost_at_95", "apgr", "best_quality"])
        w.writeheader()
        for r in self.rows():
            w.writerow({k: ("" if v is None or v == "–" else v) for k, v in r.items()})
        return buf.getvalue()

    def plot(self, path: str | Path) -> Path:
        """Deferral curves of every router and the references, as a PNG."""
        need("plots", "EvalReport.plot")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from zerorouter_integrations._io import atomic_write_bytes

        fig, ax = plt.subplots(figsize=(7.5, 5))
        for name, r in self.routers.items():
            h = r.curve.hull
            ax.plot(h[:, 0] * 1000, h[:, 1], marker=".", ms=3, label=f"{name} (AUDC {100 * r.audc:.1f})")
        oc = self.oracle_curve.hull
        ax.plot(oc[:, 0] * 1000, oc[:, 1], ls=":", color="grey", label="oracle")
        rm = np.asarray(self.references["random_mix"]["curve"])
        ax.plot(rm[:, 0] * 1000, rm[:, 1], ls="--", color="black", lw=1, label="random mix")
        for s in self.references["single_models"].values():
            ax.scatter([s["cost"] * 1000], [s["quality"]], s=10, color="grey", alpha=0.5)
        bs = self.references["best_single"]
        ax.scatter(
            [bs["cost"] * 1000],
            [bs["quality"]],
            marker="*",
            s=120,
            color="red",
            label=f"best single: {bs['model']}",
        )
        ax.set_xscale("log")
        ax.set_xlabel("mean cost per 1k queries (USD, log scale)")
        ax.set_ylabel("mean quality on test prompts")
        ax.set_title(f"Deferral curves on {self.table} ({self.n_test_prompts} test prompts)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=120)
        plt.close(fig)
        return atomic_write_bytes(Path(path), buf.getvalue())

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.md``, ``report.csv``, ``report.json`` and ``deferral.png`` into ``out_dir``."""
        from zerorouter_integrations._io import atomic_write_bytes

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return {
            "markdown": atomic_write_bytes(out / "report.md", self.to_markdown().encode()),
            "csv": atomic_write_bytes(out / "report.csv", self.to_csv().encode()),
            "json": atomic_write_bytes(out / "report.json", json.dumps(self.to_dict(), indent=1).encode()),
            "plot": self.plot(out / "deferral.png"),
        }
