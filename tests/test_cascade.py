"""Cascade mode: plans, acceptance and escalation through the replay server, calibration, extractors
on the shared tables' real answers, and the offline ``zerorouter-cascade`` evaluation router."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from zerorouter_integrations.answers import extract_number
from zerorouter_integrations.cascade import (
    EVAL_ROUTERS,
    AgreementModel,
    CascadePolicy,
    answers_match,
    arun_cascade,
    astream_cascade,
    canonical_answer,
    detect_answer_kind,
    extractor_for,
    run_cascade,
    stream_cascade,
    table_answers,
)
from zerorouter_integrations.cascade_menus import build_menus, choose
from zerorouter_integrations.data import find_data_dir
from zerorouter_integrations.errors import InfeasibleError, NotFittedError
from zerorouter_integrations.features import messages_to_text
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer

DATA = find_data_dir()

QUESTION = (
    "Which planet is the largest in the solar system?\nA) Mars\nB) Jupiter\nC) Venus\nD) Earth\n"
    "Answer with the letter of the correct option."
)
CODE_REQUEST = "Write a python function that reverses a linked list."

#: What each model answers to QUESTION (tests change it); models not listed answer "B".
ANSWERS: dict[str, str] = {}


def _reply(body: dict) -> str:
    return f"The answer is {ANSWERS.get(body['model'], 'B')}."


@pytest.fixture(scope="module")
def server():
    with ReplayServer(scripted=[(r"largest in the solar system", _reply)]) as srv:
        yield srv


@pytest.fixture(scope="module")
def router(server):
    pytest.importorskip("onnxruntime")
    from zerorouter_integrations.artifact import DEFAULT_ARTIFACT

    if not DEFAULT_ARTIFACT.is_file():
        pytest.skip("the default artifact is not built")
    from zerorouter_integrations.testing.fixtures import replay_router

    return replay_router(server)


@pytest.fixture(scope="module")
def policy(router):
    """Always cascade comparable prompts; accept on agreement, escalate on disagreement (checked below).

    The independence agreement model (ρ = β = 0): the default prior's β = 1 would accept the primary on
    disagreement too here, since the router predicts llama-2-70b above gpt-4 on this question."""
    return CascadePolicy(lam=0.0, allow_single=False, agreement=AgreementModel(rho=0.0, beta=0.0)).fit_router(
        router
    )


@pytest.fixture(autouse=True)
def _reset(server):
    ANSWERS.clear()
    for name in list(server._behaviours):
        server.set_behaviour(name, ModelBehaviour())
    server.reset_counters()
    yield


def _plan(router, policy, text=QUESTION):
    decision = router.route(text)
    c = decision.candidates
    return policy.plan(
        [x.model for x in c],
        [x.predicted_quality for x in c],
        [x.predicted_cost_usd for x in c],
        [x.predicted_latency_s for x in c],
        sd=[x.quality_sd for x in c],
        kind=detect_answer_kind(messages_to_text([{"role": "user", "content": text}])),
        key=text,
    )


def _cascade_plan(router, policy):
    plan = _plan(router, policy)
    assert plan.mode == "cascade", plan.reason
    assert plan.accept_if_agree and not plan.accept_if_disagree, plan  # the rule the tests rely on
    return plan


def _tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def _expected_usage(server) -> tuple[int, int]:
    """Input and output tokens the replay server billed, summed over its request log."""
    inp = out = 0
    for r in server.requests:
        inp += _tokens(sum(len(m["content"]) for m in r.body["messages"]))
        out += math.ceil(len(_reply(r.body)) / 4)
    return inp, out


# ------------------------------------------------------------------------------------------------ answers


def test_answer_kinds_and_extractors():
    assert detect_answer_kind(QUESTION) == "choice"
    assert detect_answer_kind("Is it A or B?\nA) yes\nB) no\nAnswer with the letter.") == "choice2"
    assert detect_answer_kind(CODE_REQUEST) is None
    assert detect_answer_kind('Solve it.\nPut the result in the json field "answer".') == "json"
    assert detect_answer_kind("How many apples are left if I eat 3 of 10?") == "number"
    assert detect_answer_kind("Tell me about your weekend.") is None
    assert canonical_answer(extractor_for("choice")("The answer is (c).")) == "c"
    assert answers_match(canonical_answer("[(4, 1), (2, 3)]"), canonical_answer("[(4,1),(2,3)]"))
    assert answers_match(canonical_answer("1,000.0"), canonical_answer("1000"))
    assert not answers_match(canonical_answer("12"), None)
    assert extractor_for(None) is None and extractor_for("short", extractor=str.upper) is str.upper


def test_extractor_on_routerbench_arc_responses():
    """On real ARC answers, every correct response yields the same letter and wrong ones another."""
    table = DATA / "routerbench_subset"
    prompts = pd.read_parquet(table / "prompts.parquet")
    arc = prompts[prompts["task"] == "arc-challenge"].sample(120, random_state=0)
    assert {detect_answer_kind(t) for t in arc["prompt"]} == {"choice"}
    out = pd.read_parquet(table / "outcomes.parquet")
    ex = pd.read_parquet(table / "outcome_extras.parquet")
    rows = out.merge(ex, on=["prompt_id", "model"])
    rows = rows[rows["prompt_id"].isin(set(arc["prompt_id"]))]
    extract = extractor_for("choice")
    rows = rows.assign(letter=[canonical_answer(extract(r)) for r in rows["response"]])
    consistent = wrong_differs = wrong_total = 0
    groups = list(rows.groupby("prompt_id"))
    for _, g in groups:
        right = g.loc[g["score"] == 1, "letter"].dropna()
        if right.empty:
            continue
        letter = right.mode().iloc[0]
        consistent += int((right == letter).all())
        wrong = g.loc[(g["score"] == 0), "letter"].dropna()
        wrong_total += len(wrong)
        wrong_differs += int((wrong != letter).sum())
    assert consistent / len(groups) >= 0.97
    assert wrong_differs / max(wrong_total, 1) >= 0.95


def test_zeroeval_parsed_answers_match_references():
    table = DATA / "zeroeval"
    prompts = pd.read_parquet(table / "prompts.parquet")
    gsm = prompts[prompts["task"] == "gsm"].sample(150, random_state=0)
    out = pd.read_parquet(table / "outcomes.parquet")
    ex = pd.read_parquet(table / "outcome_extras.parquet")
    rows = out.merge(ex, on=["prompt_id", "model"]).merge(gsm[["prompt_id", "reference"]], on="prompt_id")
    ref = [canonical_answer(extract_number(r)) for r in rows["reference"]]
    got = [canonical_answer(p) for p in rows["parsed_answer"]]
    match = np.array([answers_match(a, b) for a, b in zip(got, ref)])
    score = rows["score"].to_numpy()
    assert match[score == 1].mean() >= 0.97
    assert match[score == 0].mean() <= 0.05


def test_table_answers_kinds_and_unavailable(tmp_path):
    from zerorouter_integrations.tables import load_table

    t = load_table(DATA / "routerbench_subset")
    ids = t.prompts.groupby("task").head(5)["prompt_id"].tolist()
    small = t.subset(prompt_ids=ids)
    A, kinds = table_answers(small)
    assert A.shape == (len(ids), len(small.model_names))
    by_task = dict(zip(small.prompts["task"], kinds))
    assert (
        by_task["arc-challenge"] == "choice"
        and by_task["winogrande"] == "choice2"
        and by_task["mbpp"] is None
    )
    mbpp_rows = [i for i, k in enumerate(kinds) if k is None]
    assert all(v is None for v in A[mbpp_rows].ravel())  # never guessed
    bare = load_table(small.save(tmp_path / "no_extras"))
    assert isinstance(table_answers(bare), str) and "outcome_extras" in table_answers(bare)


# ------------------------------------------------------------------------------------------------ policy


def _random_calibration(n=400, m=6, seed=0):
    rng = np.random.default_rng(seed)
    ability = np.linspace(-1.0, 1.5, m)
    difficulty = rng.normal(size=(n, 1))
    Q = 1 / (1 + np.exp(-(ability[None, :] - difficulty + 0.3 * rng.normal(size=(n, m)))))
    C = np.exp(np.linspace(np.log(1e-5), np.log(5e-3), m))[None, :] * rng.uniform(0.7, 1.3, size=(n, m))
    return Q, C


@pytest.mark.parametrize(
    "target",
    [dict(quality_target=0.75), dict(budget_usd_per_1k=1.0), dict(reference="m5", reference_fraction=0.97)],
)
def test_calibration_lands_within_one_percent(target):
    Q, C = _random_calibration()
    kinds = ["choice"] * 250 + ["number"] * 100 + [None] * 50
    pol = CascadePolicy(**target).fit(Q, C, kinds=kinds, model_names=[f"m{j}" for j in range(6)])
    cal = pol.calibration_
    assert cal["binding"] and cal["relative_error"] <= 0.01, cal
    assert 0 < cal["cascade_share"] < 1
    # the achieved value is what the fitted policy does on the calibration set
    pl = build_menus(pol, Q, C, None, None, kinds, names=[f"m{j}" for j in range(6)])
    from zerorouter_integrations.policy import index_uniform

    ch = choose(pl, pol._lams(index_uniform(len(Q))), 0.0)
    achieved = ch.C.mean() if "budget_usd_per_1k" in target else ch.Q.mean()
    assert achieved == pytest.approx(cal["achieved"], rel=1e-9)


def test_calibration_infeasible_and_unfitted():
    Q, C = _random_calibration(n=50)
    with pytest.raises(InfeasibleError):
        CascadePolicy(quality_target=0.999).fit(Q, C)
    with pytest.raises(NotFittedError):
        CascadePolicy(budget_usd_per_1k=1.0).plan(["a", "b"], [0.5, 0.9], [1e-4, 1e-3])
    with pytest.raises(ValueError, match="at most one"):
        CascadePolicy(lam=1.0, quality_target=0.5).fit(Q, C)
    for bad in (-1.0, float("nan")):  # a budget that is no amount is rejected up front, as by Policy
        with pytest.raises(ValueError, match="budget_usd_per_1k must be ≥ 0"):
            CascadePolicy(budget_usd_per_1k=bad).fit(Q, C)
    with pytest.raises(ValueError, match="needs a target"):
        CascadePolicy().fit(Q, C)
    p = CascadePolicy(lam=3.0, max_candidates=3)
    assert p.get_params()["max_candidates"] == 3 and "max_candidates=3" in repr(p)
    with pytest.raises(ValueError, match="invalid parameter"):
        p.set_params(nope=1)


def test_plan_prefers_cascade_only_when_it_pays():
    names = ["tiny", "small", "big"]
    q, c = [0.80, 0.82, 0.95], [1e-5, 2e-5, 1e-2]
    cheap = CascadePolicy(lam=1e4).plan(names, q, c, kind="choice")
    assert cheap.mode == "single" and cheap.first == ["tiny"]
    mid = CascadePolicy(lam=30.0).plan(names, q, c, kind="number")
    assert mid.mode == "cascade" and set(mid.first) == {"tiny", "small"} and mid.escalate_to == "big"
    assert mid.accept_if_agree and not mid.accept_if_disagree
    assert mid.expected_cost_usd == pytest.approx(3e-5 + (1 - mid.p_agree) * 1e-2)
    assert CascadePolicy(lam=30.0).plan(names, q, c, kind=None).mode == "single"
    # the second stage: agreement accepts, disagreement escalates, one strong token probability may flip it
    pol = CascadePolicy(lam=30.0)
    assert pol.accept(mid, {"tiny": "7", "small": "7"})[0]
    ok, detail = pol.accept(mid, {"tiny": "7", "small": "8"})
    assert not ok and detail["agreement"] is False and "disagree" in detail["reason"]
    ok, _ = pol.accept(mid, {mid.first[0]: "7", mid.first[1]: "8"}, token_probs={mid.first[0]: 0.99999})
    assert ok
    assert not pol.accept(mid, {"tiny": None, "small": None})[0]


def test_default_prior_keeps_the_escalation_quality_at_the_dear_end():
    """β = 1 (shared prompt difficulty): a cheap model predicted worse than E never beats E on either side,
    E's marginal is kept, and at λ = 0 the policy sends such prompts to E alone instead of cascading."""
    rng = np.random.default_rng(3)
    pa, pb, pe = rng.uniform(0.05, 0.95, 5000), rng.uniform(0.05, 0.95, 5000), rng.uniform(0.05, 0.99, 5000)
    model = AgreementModel()
    assert (model.rho, model.beta) == (AgreementModel.DEFAULT_RHO, AgreementModel.DEFAULT_BETA) == (0.3, 1.0)
    for kind in ("choice", "choice2", "number", "json"):
        pr = model.predict(pa, pb, pe, kind)
        kept = pr["agree"] * pr["e_ok_agree"] + (1 - pr["agree"]) * pr["e_ok_dis"]
        assert np.abs(kept - pe).max() < 1e-3
        worse = pa <= pe
        assert (pr["a_ok_agree"][worse] <= pr["e_ok_agree"][worse] + 1e-3).all()
        assert (pr["a_ok_dis"][worse] <= pr["e_ok_dis"][worse] + 1e-3).all()
        # correlated errors: where the cheap models are more often right than not (p_a + p_b > 1),
        # agreement is less reassuring than under independence
        ind = AgreementModel(rho=0.0, beta=0.0).predict(pa, pb, pe, kind)
        likely = pa + pb > 1
        assert (pr["a_ok_agree"][likely] <= ind["a_ok_agree"][likely] + 1e-9).all()
    # the policy at λ = 0: every prompt whose cheap models are predicted below E goes to E, alone
    Q, C = _random_calibration(n=300)
    kinds = ["choice"] * 300
    pol = CascadePolicy(lam=0.0)
    pol.agreement_ = AgreementModel()
    pl = build_menus(pol, Q, C, None, None, kinds)
    ch = choose(pl, 0.0, 0.0)
    E = pl.E
    assert (E == Q.argmax(axis=1)).all()
    assert not ch.is_pair.any() and (ch.model == E).all()
    # the independence prior, just off λ = 0, cascades and accepts agreeing cheap answers predicted
    # worse than E; at λ = 0 the dear end is E alone by construction, whatever the agreement model
    pol0 = CascadePolicy(lam=0.0, agreement=AgreementModel(rho=0.0, beta=0.0))
    pol0.agreement_ = pol0.agreement
    pl0 = build_menus(pol0, Q, C, None, None, kinds)
    ch0 = choose(pl0, 1e-9, 0.0)
    assert ch0.is_pair.mean() > 0.5 and ch0.acc_agree[ch0.is_pair].all()
    at0 = choose(pl0, 0.0, 0.0)
    assert not at0.is_pair.any() and (at0.model == pl0.E).all()
    # unless single plans are barred (allow_single=False): then λ = 0 still cascades
    pol1 = CascadePolicy(lam=0.0, allow_single=False, agreement=AgreementModel(rho=0.0, beta=0.0))
    pol1.agreement_ = pol1.agreement
    assert choose(build_menus(pol1, Q, C, None, None, kinds), 0.0, 0.0).is_pair.mean() > 0.5


def test_agreement_model_fit_recovers_chance_rate():
    rng = np.random.default_rng(1)
    n = 20000
    pa, pb, pe = rng.uniform(0.3, 0.95, n), rng.uniform(0.3, 0.95, n), rng.uniform(0.6, 0.99, n)
    a_ok, b_ok = rng.random(n) < pa, rng.random(n) < pb
    agree = (a_ok & b_ok) | (~a_ok & ~b_ok & (rng.random(n) < 0.3))
    e_ok = rng.random(n) < pe
    model = AgreementModel().fit(
        pa, pb, pe, agree, a_ok.astype(float), e_ok.astype(float), kinds=["choice"] * n
    )
    prm = model.params("choice")
    assert prm["chance"] == pytest.approx(0.3, abs=0.05) and abs(prm["rho"]) < 0.1 and prm["beta"] < 0.3
    assert AgreementModel.from_dict(model.to_dict()).params("choice") == pytest.approx(prm)
    pr = model.predict(pa[:5], pb[:5], pe[:5], "choice")
    # marginals are kept: P(agree)·q(a|agree) + P(dis)·q(a|dis) = p_a
    np.testing.assert_allclose(
        pr["agree"] * pr["a_ok_agree"] + (1 - pr["agree"]) * pr["a_ok_dis"], pa[:5], atol=1e-6
    )


# ------------------------------------------------------------------------------------------------ through the router


def test_agreeing_cheap_answers_are_accepted(router, policy, server):
    plan = _cascade_plan(router, policy)
    resp = run_cascade(router, QUESTION, policy=policy)
    assert resp.content == "The answer is B." and resp.model in plan.first
    assert sorted(r.model for r in server.requests) == sorted(plan.first)
    stage = resp.decision.stages[-1]
    assert stage.kind == "cascade" and stage.outcome == "accepted" and stage.detail["agreement"] is True
    assert stage.models == plan.first and "agree" in stage.detail["reason"]
    inp, out = _expected_usage(server)
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (inp, out)
    assert resp.usage.total_tokens == inp + out
    assert resp.cost_usd == pytest.approx(sum(stage.detail["cost_usd"].values()))
    assert resp.cost_usd > max(stage.detail["cost_usd"].values())
    assert resp.decision.to_dict()["stages"][0]["outcome"] == "accepted"
    assert router.store.get_request(resp.request_id)["model"] == resp.model  # feedback path


def test_disagreeing_cheap_answers_escalate(router, policy, server):
    plan = _cascade_plan(router, policy)
    ANSWERS.update({plan.first[0]: "A", plan.first[1]: "C", plan.escalate_to: "D"})
    resp = run_cascade(router, QUESTION, policy=policy)
    assert resp.model == plan.escalate_to and resp.content == "The answer is D."
    log = server.requests
    assert [r.model for r in log][-1] == plan.escalate_to and len(log) == 3
    first, esc = resp.decision.stages
    assert first.outcome == "escalated" and first.detail["agreement"] is False
    assert first.detail["answers"] == {plan.first[0]: "a", plan.first[1]: "c"}
    assert esc.kind == "escalation" and esc.models == [plan.escalate_to]
    inp, out = _expected_usage(server)
    assert (resp.usage.input_tokens, resp.usage.output_tokens) == (inp, out)
    assert resp.cost_usd == pytest.approx(sum(first.detail["cost_usd"].values()) + esc.detail["cost_usd"])
    stats = router.store.all_stats()
    assert all(stats[m].n_calls >= 1 for m in [*plan.first, plan.escalate_to])


def test_failed_cheap_model_counts_as_no_answer(router, policy, server):
    plan = _cascade_plan(router, policy)
    server.set_behaviour(plan.first[1], ModelBehaviour(fail_rate=1.0, fail_status=400))
    ANSWERS[plan.escalate_to] = "D"
    resp = run_cascade(router, QUESTION, policy=policy)
    stage = resp.decision.stages[0]
    assert stage.detail["failed"] == [plan.first[1]]
    assert resp.attempts and resp.attempts[0].model == plan.first[1]
    # one answer left: accepted or escalated on its model's own predicted quality, never an error
    assert resp.content in ("The answer is B.", "The answer is D.")


def test_code_request_is_routed_to_one_model(router, policy, server):
    resp = run_cascade(router, CODE_REQUEST, policy=policy)
    assert len(server.requests) == 1 and resp.decision.stages[0].kind == "route"
    assert "not comparable" in resp.decision.stages[0].detail["reason"]
    assert any(n.startswith("cascade declined: an open-ended or code request") for n in resp.decision.notes)


def test_open_ended_requests_decline_to_cascade(router, policy):
    """Free-form chat has no comparable answer, and a router whose scores are judge scores or win
    probabilities compares nothing: one model answers and the decision's notes say why."""
    chat = [
        {"role": "system", "content": "You are a friendly writing assistant."},
        {"role": "user", "content": "Write a short, warm note thanking my team for a great quarter."},
    ]
    d = router.route(chat, cascade=policy)
    assert d.plan.mode == "single" and any("cascade declined" in n for n in d.notes)
    # the question of the current turn decides the kind, not the system prompt or earlier turns
    follow = [*chat, {"role": "assistant", "content": "Sure!"}, {"role": "user", "content": QUESTION}]
    assert router.route(follow, cascade=policy).plan.mode == "cascade"
    assert not any("cascade declined" in n for n in router.route(QUESTION, cascade=policy).notes)
    missing = object()
    before = getattr(router.predictor, "score_type_", missing)
    router.predictor.score_type_ = "continuous"
    try:
        d = router.route(QUESTION, cascade=policy)
        assert d.plan.mode == "single"
        assert any("scores are continuous" in n for n in d.notes), d.notes
    finally:
        if before is missing:
            del router.predictor.score_type_
        else:
            router.predictor.score_type_ = before
    assert router.route(QUESTION, cascade=policy).plan.mode == "cascade"


def test_first_stage_runs_concurrently(router, policy, server):
    plan = _cascade_plan(router, policy)
    for name in plan.first:
        server.set_behaviour(name, ModelBehaviour(latency_s=0.5))
    run_cascade(router, QUESTION, policy=policy)
    done = {r.model: r.time for r in server.requests}
    assert set(done) == set(plan.first)
    # each call takes 0.5 s on the server: one after the other they would finish ≥ 0.5 s apart
    assert abs(done[plan.first[0]] - done[plan.first[1]]) < 0.25


async def test_async_first_stage_runs_concurrently(router, policy, server):
    plan = _cascade_plan(router, policy)
    for name in plan.first:
        server.set_behaviour(name, ModelBehaviour(latency_s=0.5))
    ANSWERS.update({plan.first[0]: "A", plan.first[1]: "C", plan.escalate_to: "D"})
    resp = await arun_cascade(router, QUESTION, policy=policy)
    done = {r.model: r.time for r in server.requests}
    assert abs(done[plan.first[0]] - done[plan.first[1]]) < 0.25
    assert done[plan.escalate_to] >= max(done[m] for m in plan.first)
    assert resp.model == plan.escalate_to and len(resp.decision.stages) == 2


def test_stream_accepted_answer_in_chunks(router, server):
    pol = CascadePolicy(
        lam=0.0, allow_single=False, chunk_chars=5, agreement=AgreementModel(rho=0.0, beta=0.0)
    ).fit_router(router)
    _cascade_plan(router, pol)  # accept on agreement (every model answers B here)
    chunks = list(stream_cascade(router, QUESTION, policy=pol))
    final = chunks[-1]
    assert final.final and all(not c.final for c in chunks[:-1])
    assert "".join(c.content for c in chunks[:-1]) == "The answer is B." == final.response.content
    assert max(len(c.content) for c in chunks[:-1]) == 5
    assert final.response.decision.stages[0].outcome == "accepted"
    assert len(server.requests) == 2 and not any(r.stream for r in server.requests)


async def test_astream_escalation_streams_live(router, policy, server):
    plan = _cascade_plan(router, policy)
    ANSWERS.update({plan.first[0]: "A", plan.first[1]: "C", plan.escalate_to: "D"})
    chunks = [c async for c in astream_cascade(router, QUESTION, policy=policy)]
    assert "".join(c.content for c in chunks) == "The answer is D."
    resp = chunks[-1].response
    assert resp.model == plan.escalate_to and [s.outcome for s in resp.decision.stages] == [
        "escalated",
        "answered",
    ]
    log = server.requests
    assert [r.stream for r in log] == [False, False, True]
    first, esc = resp.decision.stages
    assert resp.cost_usd == pytest.approx(sum(first.detail["cost_usd"].values()) + esc.detail["cost_usd"])


def test_the_decision_carries_the_plan_the_executor_runs(router, policy, server):
    from zerorouter_integrations.decision import RoutingDecision
    from zerorouter_integrations.plan import CascadePlan, SinglePlan

    expected = _cascade_plan(router, policy)
    decision = router.route(QUESTION, cascade=policy)
    plan = decision.plan
    assert isinstance(plan, CascadePlan) and plan.first == expected.first
    assert plan.escalation[0] == plan.escalate_to == expected.escalate_to
    assert set(plan.escalation) == set(decision.ranking) - set(plan.first)
    assert decision.policy["mode"] == "cascade" and "cascade" in str(decision)
    d = decision.to_dict()
    assert d["plan"]["plan"] == "cascade" and d["plan"]["first"] == plan.first
    assert RoutingDecision.from_dict(d).plan.threshold_agree == pytest.approx(plan.threshold_agree)
    assert server.requests == []  # deciding calls nobody
    ANSWERS.update({plan.first[0]: "A", plan.first[1]: "C", plan.escalate_to: "D"})
    resp = router.complete(QUESTION, cascade=policy)
    assert [r.model for r in server.requests][-1] == plan.escalation[0] == resp.model
    single = router.route(QUESTION)
    assert isinstance(single.plan, SinglePlan) and single.plan.models == single.ranking
    assert (
        single.to_dict()["plan"]["plan"] == "single" and single.to_dict()["plan"]["models"] == single.ranking
    )
    code = router.route(CODE_REQUEST, cascade=policy).plan
    assert isinstance(code, SinglePlan) and code.cascade and "not comparable" in code.reason


def test_escalation_falls_back_down_the_plan_then_to_the_first_stage(policy, server):
    from zerorouter_integrations.testing.fixtures import replay_router

    router = replay_router(server)  # its own store: the failures below put models in cooldown
    plan = router.route(QUESTION, cascade=policy).plan
    ANSWERS.update({plan.first[0]: "A", plan.first[1]: "C"})
    for name in plan.escalation[:2]:
        server.set_behaviour(name, ModelBehaviour(fail_rate=1.0, fail_status=500))
    resp = router.complete(QUESTION, cascade=policy, request_id="fb-1")
    assert len(plan.escalation) > 2
    assert resp.model == plan.escalation[2] and resp.decision.stages[-1].outcome == "answered"
    for name in plan.escalation:
        server.set_behaviour(name, ModelBehaviour(fail_rate=1.0, fail_status=500))
    resp = router.complete(QUESTION, cascade=policy)
    assert resp.model == plan.first[0] and resp.content == "The answer is A."
    assert resp.decision.stages[-1].kind == "escalation" and resp.decision.stages[-1].outcome == "failed"
    assert {a.model for a in resp.attempts} >= set(plan.escalation)


def test_default_policy_takes_the_router_target(router):
    from zerorouter_integrations.cascade import resolve_policy

    pol = resolve_policy(router, True)
    assert pol is resolve_policy(router, None)  # cached per router
    cal = pol.calibration_
    assert cal["kind"] == "reference" and cal["relative_error"] <= 0.01
    assert cal["reference"] == router.effective_reference_model
    budget = CascadePolicy(budget_usd_per_1k=0.5).fit_router(router)
    assert budget.calibration_["relative_error"] <= 0.01


# ------------------------------------------------------------------------------------------------ offline evaluation


def test_offline_evaluation_router(encoder):
    from zerorouter_integrations.evaluation import evaluate
    from zerorouter_integrations.tables import Split, load_table

    t = load_table(DATA / "routerbench_subset")
    ids = t.prompts.groupby("task", group_keys=False).head(60)["prompt_id"].tolist()
    small = t.subset(prompt_ids=ids)
    rng = np.random.default_rng(0)
    split = Split(
        test_prompt_ids=sorted(rng.choice(ids, size=60, replace=False).tolist()), new_models=["claude-v1"]
    )
    report = evaluate(
        small,
        split,
        routers=["zerorouter", "zerorouter-cascade"],
        anchors=30,
        encoder=encoder,
        show_progress=False,
    )
    assert "zerorouter-cascade" in EVAL_ROUTERS
    r = report.routers["zerorouter-cascade"]
    hull = r.curve.hull
    assert np.all(np.diff(hull[:, 0]) >= 0) and np.all(np.diff(hull[:, 1]) > 0)
    # the sweep spans from the cheapest model's cost up to (at least) close to the dearest
    single = report.references["single_models"]
    assert hull[0, 0] <= min(s["cost"] for s in single.values()) * 1.5
    assert 0 < r.extra["comparable_share"] < 1
    assert "zerorouter-cascade" in report.to_markdown()
