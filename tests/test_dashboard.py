"""The gateway's dashboard in real headless Chromium (Debian's package, driven by playwright):
after 100 routed calls it shows the same totals as ``/metrics``; a screenshot is saved."""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from serve_process import ServeProcess

from zerorouter_integrations.testing import ReplayServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(os.environ.get("ZEROROUTER_SCREENSHOT_DIR", "zerorouter-screenshots")) / "dashboard.png"
MODELS = ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-05-13", "gpt-3.5-turbo-0125")
PROMPTS = [
    "What is {i} + {i}?",
    "Prove that the square root of {i} is irrational or an integer, step by step.",
    "Write a haiku about the number {i}.",
    "Summarise the causes of World War {i} in one sentence.",
]


def metric_sum(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, flags=re.M))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not Path(CHROMIUM).is_file():
        reason = "chromium not installed (bash .ci/chromium.sh)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI is set, so the dashboard test must run", pytrace=False)
        pytest.skip(reason)
    with ReplayServer() as replay:
        replay.set_behaviour(MODELS[1], latency_s=0.02)
        replay.set_behaviour(MODELS[0], fail_rate=0.3)  # some retries and fallbacks
        cfg = {
            "model_list": [
                {
                    "model_name": m,
                    "litellm_params": {"model": f"openai/{m}", "api_base": replay.base_url, "api_key": "k"},
                }
                for m in MODELS
            ],
            "zerorouter": {
                "policies": {
                    "cheapest": {"lam": 1.0e6},
                    "top": {"quality_target": 1.0, "reference": MODELS[1]},
                },
                "cooldown_after": 1000,
            },
        }
        path = tmp_path_factory.mktemp("dash") / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        with ServeProcess(path) as proc:
            yield proc


def test_dashboard_shows_the_metrics_totals(served):
    def call(i: int) -> int:
        virtual = ("zerorouter/cheapest", "zerorouter", "zerorouter/top")[i % 3]
        body = {"model": virtual, "messages": [{"role": "user", "content": PROMPTS[i % 4].format(i=i)}]}
        return httpx.post(served.url + "/chat/completions", json=body, timeout=180).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(100)))
    assert statuses.count(200) == 100
    rid = httpx.post(
        served.url + "/chat/completions",
        json={"model": "zerorouter", "messages": [{"role": "user", "content": "Rate me."}]},
        timeout=180,
    ).headers["x-zerorouter-request-id"]
    assert httpx.post(served.url + "/feedback", json={"request_id": rid, "score": 0.75}).status_code == 200
    metrics = httpx.get(served.root + "/metrics").text
    routed = metric_sum(metrics, "zerorouter_routed_total")
    assert routed == 101
    cost = metric_sum(metrics, "zerorouter_cost_usd_total")
    saving = metric_sum(metrics, "zerorouter_saving_usd_total")
    fallbacks = metric_sum(metrics, "zerorouter_fallbacks_total")
    assert cost > 0 and saving > 0

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        page.goto(served.root + "/dashboard")
        page.wait_for_selector("body[data-loaded='1']", timeout=30_000)
        page.wait_for_function(
            "document.querySelectorAll('#decisions tbody tr').length === 50", timeout=30_000
        )

        def shown(el_id: str) -> tuple[str, float]:
            el = page.locator(f"#{el_id}")
            return el.inner_text(), float(el.get_attribute("data-value"))

        text, value = shown("total-routed")
        assert text == "101" and value == routed
        text, value = shown("total-cost")
        assert value == pytest.approx(cost, rel=1e-9) and text == f"{cost:.6f}"
        text, value = shown("total-saving")
        assert value == pytest.approx(saving, rel=1e-9) and text == f"{saving:.6f}"
        assert shown("total-fallbacks")[1] == fallbacks
        assert shown("total-requests")[1] == metric_sum(metrics, "zerorouter_requests_total")
        assert page.locator("#feedback-mean").inner_text() == "0.75"
        rows = page.locator("#models tbody tr")
        assert rows.count() >= 2
        shares = [
            float(t.split()[0]) for t in page.locator("#models tbody tr td:nth-child(2)").all_inner_texts()
        ]
        assert sum(shares) == pytest.approx(100.0, abs=0.5)
        assert page.locator("#saving-chart polyline").count() == 2
        assert "candidate" in page.locator("#decisions tbody tr").first.inner_text()
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
