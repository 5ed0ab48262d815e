"""What the router decided for one request, over whom, why, and what it expects to save.

:class:`RoutingDecision` is the record every request produces: the admissible candidates ranked best
first (predicted quality ± sd, predicted cost, latency, policy score), the models removed by
constraints with the reason, the policy in force, the reference model it is compared with, session
stickiness, and the stages of a cascade. It prints as a fixed-width table, renders as a
``rich`` table, and round-trips through JSON (:meth:`RoutingDecision.to_dict` /
:meth:`RoutingDecision.from_dict`).

:class:`SessionStickiness` keeps a conversation from being routed *down*: once a session used a
model of some capability, later turns only go to models at least as capable.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from zerorouter_integrations._aio import to_thread
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.jsonsafe import json_safe
from zerorouter_integrations.latency import expected_latency_s, p95_latency_s, sla_mask
from zerorouter_integrations.plan import CascadePlan, Plan, SinglePlan, plan_from_dict

__all__ = [
    "Candidate",
    "RoutingDecision",
    "SessionStickiness",
    "SessionStore",
    "Stage",
    "expected_latency_s",
    "p95_latency_s",
    "sla_mask",
]


@dataclass
class Candidate:
    """One admissible model for a request.

    Attributes
    ----------
    model : str
        Pool name.
    predicted_quality : float
        Predicted quality in [0, 1].
    quality_sd : float or None
        Standard deviation of that prediction, when the predictor gives one.
    predicted_cost_usd : float
        Predicted cost of this call, USD.
    predicted_latency_s : float or None
        Predicted latency of this call, seconds.
    score : float
        The policy's score (``quality − λ·cost − μ·latency``); higher is better.
    """

    model: str
    predicted_quality: float
    quality_sd: float | None
    predicted_cost_usd: float
    predicted_latency_s: float | None
    score: float

    def to_dict(self) -> dict[str, Any]:
        return json_safe({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Candidate:
        kw: dict[str, Any] = {f.name: d.get(f.name) for f in fields(cls)}
        return cls(**kw)


@dataclass
class Stage:
    """One step of a multi-stage decision (e.g. a cascade: try cheap, escalate on low confidence).

    Attributes
    ----------
    kind : str
        What the stage did, e.g. ``"route"``, ``"cascade"``, ``"fallback"``.
    models : list of str
        The models it involved.
    outcome : str
        How it ended, e.g. ``"accepted"``, ``"escalated"``, ``"failed"``.
    detail : dict
        Free-form JSON-safe details.
    """

    kind: str
    models: list[str]
    outcome: str
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "kind": self.kind,
                "models": list(self.models),
                "outcome": self.outcome,
                "detail": dict(self.detail),
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Stage:
        return cls(
            kind=d["kind"],
            models=list(d.get("models") or []),
            outcome=d.get("outcome", ""),
            detail=dict(d.get("detail") or {}),
        )


def _fmt_num(v: float | None, spec: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


@dataclass
class RoutingDecision:
    """The routing decision for one request.

    Attributes
    ----------
    request_id : str
        Identifier of the request (also the key of its stored record).
    chosen : str
        The model the request goes to first.
    candidates : list of Candidate
        Admissible models, ranked best first (the dispatch fallback order).
    removed : dict of str to str
        Models removed before scoring → why.
    policy : dict
        The policy in force (e.g. ``{"kind": "budget", "lam": …, "mu": …}``).
    reference_model : str or None
        The model savings are measured against (e.g. the strongest in the pool).
    reference_cost_usd, reference_quality : float or None
        That model's predicted cost (USD) and quality for this request.
    session_id : str or None
        Conversation the request belongs to.
    sticky : bool
        Whether session stickiness removed candidates.
    stages : list of Stage
        Steps of a multi-stage decision.
    routing_time_s : float or None
        Time spent deciding, seconds.
    plan : SinglePlan or CascadePlan or None
        What the executor runs (:mod:`zerorouter_integrations.plan`): the ranked candidates with
        their fallbacks, or a cascade's first stage, acceptance rule and escalation.
    notes : list of str
        What the router had to do unusually (e.g. every circuit was open: the first to close was tried).
    """

    request_id: str
    chosen: str
    candidates: list[Candidate]
    removed: dict[str, str]
    policy: dict
    reference_model: str | None
    reference_cost_usd: float | None
    reference_quality: float | None
    session_id: str | None = None
    sticky: bool = False
    stages: list[Stage] = field(default_factory=list)
    routing_time_s: float | None = None
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ derived values

    @property
    def ranking(self) -> list[str]:
        """Candidate model names, best first."""
        return [c.model for c in self.candidates]

    def _chosen_candidate(self) -> Candidate | None:
        return next((c for c in self.candidates if c.model == self.chosen), None)

    @property
    def expected_saving_usd(self) -> float | None:
        """Reference cost − chosen model's predicted cost, USD per call (None without a reference)."""
        ch = self._chosen_candidate()
        if self.reference_cost_usd is None or ch is None:
            return None
        return float(self.reference_cost_usd) - float(ch.predicted_cost_usd)

    @property
    def expected_saving_fraction(self) -> float | None:
        """Saving as a fraction of the reference cost (None without a positive reference cost)."""
        s = self.expected_saving_usd
        if s is None or not self.reference_cost_usd:
            return None
        return s / float(self.reference_cost_usd)

    # ------------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (``json.dumps`` works on it); derived values are included for readers
        and ignored by :meth:`from_dict`."""
        return json_safe(
            {
                "request_id": self.request_id,
                "chosen": self.chosen,
                "candidates": [c.to_dict() for c in self.candidates],
                "removed": dict(self.removed),
                "policy": dict(self.policy),
                "reference_model": self.reference_model,
                "reference_cost_usd": self.reference_cost_usd,
                "reference_quality": self.reference_quality,
                "session_id": self.session_id,
                "sticky": self.sticky,
                "stages": [s.to_dict() for s in self.stages],
                "routing_time_s": self.routing_time_s,
                "plan": None if self.plan is None else self.plan.to_dict(),
                "notes": list(self.notes),
                "ranking": self.ranking,
                "expected_saving_usd": self.expected_saving_usd,
                "expected_saving_fraction": self.expected_saving_fraction,
            }
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RoutingDecision:
        """Rebuild a decision from :meth:`to_dict` output."""
        try:
            return cls(
                request_id=str(d["request_id"]),
                chosen=str(d["chosen"]),
                candidates=[Candidate.from_dict(c) for c in d.get("candidates") or []],
                removed=dict(d.get("removed") or {}),
                policy=dict(d.get("policy") or {}),
                reference_model=d.get("reference_model"),
                reference_cost_usd=d.get("reference_cost_usd"),
                reference_quality=d.get("reference_quality"),
                session_id=d.get("session_id"),
                sticky=bool(d.get("sticky", False)),
                stages=[Stage.from_dict(s) for s in d.get("stages") or []],
                routing_time_s=d.get("routing_time_s"),
                plan=plan_from_dict(d["plan"]) if d.get("plan") else None,
                notes=list(d.get("notes") or []),
            )
        except KeyError as e:
            raise SchemaError(f"RoutingDecision dict lacks the field {e.args[0]!r}") from e

    # ------------------------------------------------------------------ display

    def _policy_text(self) -> str:
        p = self.policy
        parts = [str(p["kind"])] if p.get("kind") else []
        for key, label in (("target", "target"), ("lam", "λ"), ("mu", "μ")):
            v = p.get(key)
            if isinstance(v, (int, float)) and v is not None:
                parts.append(f"{label}={v:.4g}")
        return ", ".join(parts)

    def _rows(self) -> list[tuple[str, str, str, str, str, str]]:
        rows = []
        for c in self.candidates:
            q = _fmt_num(c.predicted_quality, ".3f")
            if c.quality_sd is not None:
                q += f" ± {_fmt_num(c.quality_sd, '.3f')}"
            rows.append(
                (
                    "→" if c.model == self.chosen else "",
                    c.model,
                    q,
                    _fmt_num(None if c.predicted_cost_usd is None else c.predicted_cost_usd * 1000, ".4g"),
                    "-" if c.predicted_latency_s is None else f"{c.predicted_latency_s:.2f} s",
                    _fmt_num(c.score, ".4f"),
                )
            )
        return rows

    def _plan_text(self) -> str | None:
        p = self.plan
        if isinstance(p, CascadePlan) and p.mode == "cascade":
            return (
                f"plan: cascade {' + '.join(p.first)} → accept when the answers' confidence reaches "
                f"{_fmt_num(p.threshold_agree, '.3f')} (agree) / {_fmt_num(p.threshold_disagree, '.3f')} "
                f"(disagree), else escalate to {', '.join(p.escalation or [str(p.escalate_to)])}"
            )
        if isinstance(p, SinglePlan) and len(p.models) > 1:
            return f"plan: {p.models[0]}, fallbacks {', '.join(p.models[1:])}"
        return None

    def _saving_text(self) -> str | None:
        s = self.expected_saving_usd
        if s is None:
            return None
        frac = self.expected_saving_fraction
        pct = f" ({frac:.1%})" if frac is not None else ""
        return f"expected saving vs {self.reference_model}: ${s * 1000:.4g} per 1k calls{pct}"

    def __str__(self) -> str:
        head = ["", "model", "pred. quality", "$/1k calls", "latency", "score"]
        rows = self._rows()
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        align = ["<", "<", ">", ">", ">", ">"]

        def line(r: Sequence[str]) -> str:
            return "  ".join(format(v, f"{a}{w}") for v, a, w in zip(r, align, widths)).rstrip()

        title = f"request {self.request_id}: chosen {self.chosen}"
        pol = self._policy_text()
        if pol:
            title += f"  (policy: {pol})"
        out = [title, line(head), line(["-" * w for w in widths])]
        out += [line(r) for r in rows]
        if self.removed:
            out.append("removed:")
            out += [f"  {m}: {why}" for m, why in self.removed.items()]
        if self.session_id is not None:
            out.append(
                f"session {self.session_id}"
                + (" (sticky: lower-capability models removed)" if self.sticky else "")
            )
        plan = self._plan_text()
        if plan:
            out.append(plan)
        for st in self.stages:
            out.append(f"stage {st.kind}: {', '.join(st.models)} → {st.outcome}")
        saving = self._saving_text()
        if saving:
            out.append(saving)
        if self.routing_time_s is not None:
            out.append(f"routing time: {self.routing_time_s * 1000:.2f} ms")
        return "\n".join(out)

    def __rich__(self):
        from rich.table import Table

        notes = [f"removed {m}: {why}" for m, why in self.removed.items()]
        saving = self._saving_text()
        if saving:
            notes.append(saving)
        table = Table(
            title=f"request {self.request_id}: chosen [bold]{self.chosen}[/bold]",
            caption="\n".join(notes) or None,
        )
        for name, justify in (
            ("", "left"),
            ("model", "left"),
            ("pred. quality", "right"),
            ("$/1k calls", "right"),
            ("latency", "right"),
            ("score", "right"),
        ):
            table.add_column(name, justify=justify)
        for r in self._rows():
            table.add_row(*r, style="bold green" if r[0] else None)
        return table


# ------------------------------------------------------------------------------------------------
# session stickiness


class SessionStore(Protocol):
    """What :class:`SessionStickiness` needs from a store (``ProfileStore`` satisfies it)."""

    def get_session(self, session_id: str) -> dict | None: ...

    def set_session(self, session_id: str, payload: dict) -> None: ...


class _MemorySessions:
    def __init__(self) -> None:
        self._data: dict[str, dict] = {}
        self.lock = threading.RLock()

    def get_session(self, session_id: str) -> dict | None:
        with self.lock:
            v = self._data.get(session_id)
            return None if v is None else dict(v)

    def set_session(self, session_id: str, payload: dict) -> None:
        with self.lock:
            self._data[session_id] = dict(payload)


class SessionStickiness:
    """Escalate-only within a session: never route to a model of lower capability than one already used.

    Each session keeps a *capability floor* (the highest capability it has used). :meth:`filter`
    removes every model below the floor; :meth:`record` raises the floor after a call.

    Parameters
    ----------
    store : SessionStore, optional
        Anything with ``get_session(id) -> dict | None`` and ``set_session(id, dict)``, e.g. a
        ``ProfileStore`` (shared across processes). Default: an in-memory dict guarded by a lock.

    Notes
    -----
    The floor lives under the ``"capability_floor"`` key of the session payload (other keys are
    preserved); ``"models"`` lists the models used. With the in-memory default, :meth:`record` is
    atomic; with an external store it is a read-modify-write, so two concurrent turns of one session
    may both record, and the floor is still the max of whatever was last written.
    Models missing from the ``capability`` mapping are removed once a floor exists (their capability
    cannot be shown to meet it). When every candidate is below the floor the returned ranking is
    empty; the caller decides (typically :class:`~zerorouter_integrations.errors.NoAdmissibleModelError`).
    """

    FLOOR_KEY = "capability_floor"

    def __init__(self, store: SessionStore | None = None):
        self.store = store if store is not None else _MemorySessions()

    def floor(self, session_id: str | None) -> float | None:
        """The session's capability floor, or None (no session, or nothing used yet)."""
        if session_id is None:
            return None
        payload = self.store.get_session(session_id)
        v = None if payload is None else payload.get(self.FLOOR_KEY)
        return None if v is None else float(v)

    @staticmethod
    def _apply(
        floor: float | None, ranking: Sequence[str], capability: Mapping[str, float]
    ) -> tuple[list[str], bool]:
        ranking = list(ranking)
        if floor is None:
            return ranking, False
        kept = [m for m in ranking if m in capability and float(capability[m]) >= floor]
        return kept, len(kept) < len(ranking)

    def filter(
        self, session_id: str | None, ranking: Sequence[str], capability: Mapping[str, float]
    ) -> tuple[list[str], bool]:
        """Remove models below the session's capability floor.

        Parameters
        ----------
        session_id : str or None
            None disables stickiness.
        ranking : sequence of str
            Candidate models, best first.
        capability : mapping of str to float
            A capability score per model (e.g. the profile's ability).

        Returns
        -------
        ranking : list of str
            The kept models, in the given order.
        sticky_applied : bool
            True when the floor removed at least one model.
        """
        return self._apply(self.floor(session_id), ranking, capability)

    def record(self, session_id: str | None, model: str, capability: float) -> None:
        """Raise the session's floor to ``max(floor, capability)`` after ``model`` served it."""
        if session_id is None:
            return
        lock = getattr(self.store, "lock", None)
        if lock is not None:
            with lock:
                self._record(session_id, model, capability)
        else:
            self._record(session_id, model, capability)

    def _merge(self, payload: dict | None, model: str, capability: float) -> dict:
        payload = dict(payload or {})
        old = payload.get(self.FLOOR_KEY)
        payload[self.FLOOR_KEY] = float(capability) if old is None else max(float(old), float(capability))
        used = list(payload.get("models") or [])
        if model not in used:
            used.append(model)
        payload["models"] = used
        payload["updated_at"] = time.time()
        return payload

    def _record(self, session_id: str, model: str, capability: float) -> None:
        self.store.set_session(session_id, self._merge(self.store.get_session(session_id), model, capability))

    async def afilter(
        self, session_id: str | None, ranking: Sequence[str], capability: Mapping[str, float]
    ) -> tuple[list[str], bool]:
        """Async twin of :meth:`filter` (uses the store's ``aget_session`` when it has one)."""
        if session_id is None:
            return list(ranking), False
        aget = getattr(self.store, "aget_session", None)
        payload = await aget(session_id) if aget else await to_thread(self.store.get_session, session_id)
        v = None if payload is None else payload.get(self.FLOOR_KEY)
        return self._apply(None if v is None else float(v), ranking, capability)

    async def arecord(self, session_id: str | None, model: str, capability: float) -> None:
        """Async twin of :meth:`record` (uses ``aget_session``/``aset_session`` when present)."""
        if session_id is None:
            return
        aget = getattr(self.store, "aget_session", None)
        aset = getattr(self.store, "aset_session", None)
        if aget is None or aset is None:
            await to_thread(self.record, session_id, model, capability)
            return
        await aset(session_id, self._merge(await aget(session_id), model, capability))
