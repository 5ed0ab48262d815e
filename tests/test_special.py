"""The NumPy ``expit`` / ``softmax`` of the routing path agree with :mod:`scipy.special` (which the
base install does not have), and deciding in a fresh process imports none of the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import special as sp

from zerorouter_integrations.special import expit, softmax


def test_expit_matches_scipy_to_one_epsilon():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 3, 100_000), rng.normal(0, 60, 10_000), [0.0, -0.0, 1e-300, 40, -40]])
    ours, theirs = expit(x), sp.expit(x)
    assert ours.dtype == theirs.dtype == np.float64 and ours.shape == x.shape
    np.testing.assert_array_max_ulp(ours, theirs, maxulp=2)
    assert np.abs(ours - theirs).max() <= np.finfo(np.float64).eps
    x32 = x.astype(np.float32)
    np.testing.assert_array_max_ulp(expit(x32), sp.expit(x32), maxulp=4)  # float32 exp: 4 ulp
    assert expit(x.astype(np.float32)).dtype == np.float32
    with np.errstate(
        over="raise", divide="raise", invalid="raise"
    ):  # no overflow warning at the tails, the exact limits there
        assert expit(-1000.0) == 0.0 and expit(1000.0) == 1.0
        assert expit(np.array([-np.inf, np.inf])).tolist() == [0.0, 1.0]
    assert np.isnan(expit(np.nan))
    assert isinstance(expit(0.5), np.floating) and expit(0.5) == sp.expit(0.5)
    assert expit(np.array([0, 2])).dtype == np.float64  # integers: float64, as scipy
    assert expit([[1.0, -2.0]]).shape == (1, 2)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 1)])
def test_softmax_is_scipys_bit_for_bit(axis):
    rng = np.random.default_rng(1)
    X = rng.normal(0, 8, (500, 9))
    X[0, 0] = 900.0  # would overflow without the shift
    assert np.array_equal(softmax(X, axis=axis), sp.softmax(X, axis=axis))
    assert np.array_equal(
        softmax(X.astype(np.float32), axis=axis), sp.softmax(X.astype(np.float32), axis=axis)
    )


HEAVY = (
    "scipy",
    "sklearn",
    "pandas",
    "pyarrow",
    "matplotlib",
    "litellm",
    "torch",
    "sentence_transformers",
    "transformers",
    "langchain_core",
    "llama_index",
    "redis",
    "yaml",
    "rich",
    "tqdm",
    "pydantic",
    "mcp",
)


def test_deciding_in_a_fresh_process_imports_no_heavy_library():
    """``ZeroRouter.default().route()`` needs numpy, onnxruntime and tokenizers only: SciPy, pandas,
    LiteLLM & co. are imported by the code that uses them (fitting, tables, dispatch), not by deciding."""
    code = (
        "import json, sys\n"
        "from zerorouter_integrations.router import ZeroRouter\n"
        "r = ZeroRouter.default()\n"
        "d = r.route('What is 17 * 23? Answer with a number.')\n"
        "r.route([{'role': 'user', 'content': 'Write a haiku about the sea.'}], max_tokens=64)\n"
        f"print(json.dumps({{'chosen': d.chosen, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["chosen"]
    assert rec["loaded"] == [], f"deciding imported {rec['loaded']}"


def test_cost_line_fit_is_scipys_nnls():
    """``CostModel.fit``'s two-coefficient NNLS (closed form, NumPy) equals ``scipy.optimize.nnls``,
    also where the unconstrained line has a negative intercept or slope."""
    from scipy.optimize import nnls

    from zerorouter_integrations.profiles import CostModel, nnls_line

    rng = np.random.default_rng(2)
    faces = set()
    for trial in range(400):
        n = int(rng.integers(3, 60))
        x = rng.uniform(0, 4000, n).round()
        a, b = rng.normal(0, 1e-3), rng.normal(0, 1e-6)  # either may be negative
        y = np.abs(a + b * x + rng.normal(0, 2e-4, n)) if trial % 2 else a + b * x + rng.normal(0, 2e-4, n)
        ref, _ = nnls(np.column_stack([np.ones_like(x), x]), y)
        ours = nnls_line(x, y)
        faces.add((ref[0] > 0, ref[1] > 0))
        np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-15)
        cm = CostModel.fit(x, y)
        np.testing.assert_allclose([cm.intercept_usd, cm.per_input_token_usd], ref, rtol=1e-9, atol=1e-15)
    assert faces == {(True, True), (True, False), (False, True), (False, False)}  # every case was hit


def test_cost_fit_prices_tokens_past_the_fitted_lengths_at_least_at_list_price() -> None:
    """Benchmark prompts whose output shrinks as the input grows give a fitted slope near 0. Within
    the fitted lengths the line is kept; past the longest fitted prompt each token costs at least the
    list input price, so a long RAG prompt is priced for its tokens."""
    import pickle

    from zerorouter_integrations.predictor import fit_cost
    from zerorouter_integrations.profiles import CostModel

    rng = np.random.default_rng(0)
    tokens = rng.uniform(300, 700, 400)
    price_in, price_out = 10e-6, 30e-6
    out_tokens = np.clip(400 - 0.6 * tokens + rng.normal(0, 20, 400), 1, None)  # longer in, shorter out
    costs = price_in * tokens + price_out * out_tokens
    free = CostModel.fit(tokens, costs)
    assert free.per_input_token_usd < price_in and free.knee_input_tokens is None
    kneed = fit_cost(costs, tokens, (price_in, price_out))
    np.testing.assert_allclose(kneed.predict(tokens), free.predict(tokens))  # same on the fitted range
    assert kneed.knee_input_tokens == tokens.max()
    slope_past = (kneed.predict(30_000) - kneed.predict(20_000)) / 10_000
    assert slope_past == pytest.approx(price_in)
    assert kneed.predict(20_000) >= price_in * (20_000 - tokens.max())
    assert CostModel.from_dict(kneed.to_dict()) == kneed == pickle.loads(pickle.dumps(kneed))
    assert "knee_input_tokens" not in free.to_dict()  # old artifacts' cost models read unchanged
    with pytest.raises(ValueError, match="min_per_input_token_usd"):
        CostModel.fit(tokens, costs, min_per_input_token_usd=-1.0)


def test_shipped_default_prices_long_prompts_at_least_at_list_input_price() -> None:
    """Through the vectorised predictor: a 50k-token prompt costs every priced model of the shipped
    default at least its list input price per token past the longest prompt it was fitted on."""
    from zerorouter_integrations.features import PromptFeaturizer
    from zerorouter_integrations.router import ZeroRouter

    router = ZeroRouter.default()
    pred = router.predictor
    priced = [m for m, p in pred.profiles_.items() if p.input_usd_per_token]
    assert len(priced) > 50
    X = PromptFeaturizer(router.encoder).transform(["Summarise the attached contract."])
    n = 50_000.0
    P = pred.predict(X, input_tokens=np.array([n]), models=priced)
    for j, m in enumerate(P.models):
        c = pred.profiles_[m].cost
        assert P.cost_usd[0, j] == pytest.approx(float(c.predict(n)))
        knee = c.knee_input_tokens or 0.0
        assert P.cost_usd[0, j] >= pred.profiles_[m].input_usd_per_token * (n - knee) * (1 - 1e-9), m
