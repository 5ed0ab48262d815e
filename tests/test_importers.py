"""Importers read records written the way each tool writes them, and account for every bad record.

* LiteLLM: the ``standard_logging_object`` that LiteLLM itself hands a callback, captured from real
  ``litellm.completion`` calls against the replay server and written one JSON object per line.
* LangSmith: runs built with the published ``langsmith.schemas.Run`` model, LangChain messages
  serialized by ``langchain_core.load.dumpd`` (what the LangChain tracer stores), dumped as JSON lines.
* OpenTelemetry: spans made by the real SDK with GenAI semantic-convention attributes, encoded by
  the OTLP exporter's own encoder into an ``ExportTraceServiceRequest`` and written as OTLP/JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from zerorouter_integrations._env import import_litellm
from zerorouter_integrations.errors import SchemaError
from zerorouter_integrations.features import messages_to_text
from zerorouter_integrations.importers import calls_to_table, detect_format, read_logs
from zerorouter_integrations.importers.feedback import read_feedback, store_observations
from zerorouter_integrations.importers.judge import judge_calls, parse_grade
from zerorouter_integrations.testing import ModelBehaviour, ReplayServer

PROMPTS = ["What is 2+2?", "Name the capital of France.", "Write a haiku about routers."]


@pytest.fixture(scope="module")
def server():
    with ReplayServer(
        {"cheap": ModelBehaviour(), "strong": ModelBehaviour(), "broken": ModelBehaviour(fail_rate=1.0)}
    ) as srv:
        srv.add_scripted(r"GRADE 1-10", "8")
        yield srv


@pytest.fixture(scope="module")
def litellm_log(server, tmp_path_factory):
    """A JSON-lines file of LiteLLM's own standard logging payloads (+ the responses, for checks)."""
    litellm = import_litellm()
    from litellm.integrations.custom_logger import CustomLogger

    path = tmp_path_factory.mktemp("litellm") / "calls.jsonl"

    class JsonLinesLogger(CustomLogger):
        def log_success_event(self, kwargs, response_obj, start_time, end_time):
            self._write(kwargs)

        def log_failure_event(self, kwargs, response_obj, start_time, end_time):
            self._write(kwargs)

        active = True  # LiteLLM copies callbacks into its own lists: switch off instead of removing

        def _write(self, kwargs):
            if not self.active:
                return
            with path.open("a") as fh:
                fh.write(json.dumps(kwargs["standard_logging_object"], default=str) + "\n")

    logger = JsonLinesLogger()
    before = list(litellm.callbacks)
    litellm.callbacks = [*before, logger]
    responses = []
    try:
        for i, prompt in enumerate(PROMPTS):
            responses.append(
                litellm.completion(
                    model="openai/" + ("cheap" if i % 2 == 0 else "strong"),
                    api_base=server.base_url,
                    api_key="sk-test",
                    messages=[{"role": "user", "content": prompt}],
                    input_cost_per_token=1e-6,
                    output_cost_per_token=2e-6,
                )
            )
        with pytest.raises(Exception):
            litellm.completion(
                model="openai/broken",
                api_base=server.base_url,
                api_key="sk-test",
                messages=[{"role": "user", "content": "fails"}],
                num_retries=0,
            )
        import time

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not path.exists() or len(path.read_text().splitlines()) < 4):
            time.sleep(0.05)
    finally:
        logger.active = False
        litellm.callbacks = before
    with path.open("a") as fh:
        fh.write("{not json\n")
        fh.write(json.dumps({"id": "x-1", "status": "success", "response_cost": 0.1, "messages": []}) + "\n")
    return path, responses


def test_litellm_standard_logging_payload(litellm_log):
    path, responses = litellm_log
    assert detect_format(path) == "litellm"
    report = read_logs(path)
    assert report.n_records == 6
    # LiteLLM's logging worker writes the lines from a background thread: their order is not the calls'
    assert sorted(c.model for c in report.calls) == ["cheap", "cheap", "strong"]
    by_id = {c.call_id: c for c in report.calls}
    for i, (resp, prompt) in enumerate(zip(responses, PROMPTS)):
        call = by_id[resp.id]
        assert call.model == ("cheap" if i % 2 == 0 else "strong")
        assert call.prompt == prompt
        assert call.response == resp.choices[0].message.content
        assert call.input_tokens == resp.usage.prompt_tokens
        assert call.output_tokens == resp.usage.completion_tokens
        expected_cost = resp.usage.prompt_tokens * 1e-6 + resp.usage.completion_tokens * 2e-6
        assert call.cost_usd == pytest.approx(expected_cost, rel=1e-6)
        assert call.latency_s is not None and call.latency_s >= 0
        assert call.trace_id
    # the failed call, the broken line and the record without a prompt: skipped, with their lines
    skipped = {i.line: i.reason for i in report.skipped}
    assert len(skipped) == 3, report.summary()
    assert any("status 'failure'" in r and "500" in r for r in skipped.values())
    assert skipped[5].startswith("not valid JSON")
    assert "no prompt" in skipped[6] or "no 'model'" in skipped[6]
    assert "3 calls imported" in report.summary() and "3 skipped" in report.summary()


def test_litellm_spend_log_rows_and_model_map(tmp_path):
    row = {
        "request_id": "req-1",
        "call_type": "acompletion",
        "spend": 0.0021,
        "total_tokens": 30,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "startTime": "2026-12-01T10:00:00.000Z",
        "endTime": "2026-12-01T10:00:01.500Z",
        "model": "openai/gpt-4o-mini",
        "messages": json.dumps([{"role": "user", "content": "hello"}]),
        "response": json.dumps({"choices": [{"message": {"role": "assistant", "content": "hi"}}]}),
        "status": "success",
    }
    f = tmp_path / "spend.jsonl"
    f.write_text(json.dumps(row) + "\n")
    report = read_logs(f, model_map={"gpt-4o-mini": "gpt-4o-mini-2024-07-18"})
    (call,) = report.calls
    assert call.model == "gpt-4o-mini-2024-07-18"
    assert call.cost_usd == 0.0021 and call.latency_s == pytest.approx(1.5)
    assert call.response == "hi" and report.issues == []


def _langsmith_runs():
    from langchain_core.load import dumpd
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
    from langchain_core.outputs import ChatGeneration
    from langsmith.schemas import Run

    t0 = dt.datetime(2026, 12, 1, 9, 0, 0, tzinfo=dt.timezone.utc)
    trace = uuid.uuid4()

    def llm_run(i, model, question, answer, **kw):
        # What LangChain's tracer stores on_llm_end: LLMResult.model_dump() with dumpd(message).
        gen = ChatGeneration(message=AIMessage(content=answer)).model_dump()
        gen["message"] = dumpd(AIMessage(content=answer))
        return Run(
            id=uuid.uuid4(),
            trace_id=trace,
            name="ChatOpenAI",
            run_type="llm",
            start_time=t0 + dt.timedelta(seconds=10 * i),
            end_time=t0 + dt.timedelta(seconds=10 * i + 2),
            inputs={
                "messages": [
                    [dumpd(SystemMessage(content="Be brief.")), dumpd(HumanMessage(content=question))]
                ]
            },
            outputs={
                "generations": [[gen]],
                "llm_output": {"model_name": model},
                "run": None,
                "type": "LLMResult",
            },
            extra={"metadata": {"ls_provider": "openai", "ls_model_name": model, "ls_model_type": "chat"}},
            prompt_tokens=12,
            completion_tokens=3,
            total_tokens=15,
            total_cost=0.00042,
            status="success",
            **kw,
        )

    runs = [
        Run(
            id=trace,
            trace_id=trace,
            name="RunnableSequence",
            run_type="chain",
            start_time=t0,
            inputs={"q": "x"},
        ),
        llm_run(1, "gpt-4o-mini", "What is 2+2?", "4"),
        llm_run(2, "gpt-4o", "Capital of France?", "Paris"),
        llm_run(3, "gpt-4o", "Boom", "", error="RateLimitError: 429"),
    ]
    no_model = llm_run(4, "gpt-4o", "Who?", "me")
    no_model.extra = {"metadata": {}}
    no_model.outputs = {**no_model.outputs, "llm_output": {}}
    runs.append(no_model)
    return runs


def test_langsmith_runs_from_the_published_schema(tmp_path):
    f = tmp_path / "runs.jsonl"
    runs = _langsmith_runs()
    f.write_text("\n".join(r.model_dump_json() for r in runs) + "\n")
    assert detect_format(f) == "langsmith"
    report = read_logs(f)
    assert [c.model for c in report.calls] == ["gpt-4o-mini", "gpt-4o"]
    first = report.calls[0]
    assert first.call_id == str(runs[1].id) and first.trace_id == str(runs[1].trace_id)
    # The router's reading of the chat (features.messages_to_text), both turns in it.
    assert first.prompt == messages_to_text(first.messages)
    assert "Be brief." in first.prompt and "What is 2+2?" in first.prompt
    assert first.messages[0]["role"] == "system" and first.messages[1]["role"] == "user"
    assert first.response == "4" and first.latency_s == pytest.approx(2.0)
    assert (first.input_tokens, first.output_tokens, first.cost_usd) == (12, 3, pytest.approx(0.00042))
    reasons = {i.line: i.reason for i in report.skipped}
    assert set(reasons) == {1, 4, 5}
    assert "chain" in reasons[1] and "429" in reasons[4] and "no model" in reasons[5]


def _otlp_request(tmp_path):
    from google.protobuf.json_format import MessageToDict
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test-genai")

    def chat(model, question, answer, *, error=False):
        with tracer.start_as_current_span(f"chat {model}") as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", model)
            span.set_attribute("gen_ai.response.model", model + "-2024")
            span.set_attribute("gen_ai.usage.input_tokens", 11)
            span.set_attribute("gen_ai.usage.output_tokens", 5)
            span.set_attribute(
                "gen_ai.input.messages",
                json.dumps([{"role": "user", "parts": [{"type": "text", "content": question}]}]),
            )
            span.set_attribute(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {
                            "role": "assistant",
                            "parts": [{"type": "text", "content": answer}],
                            "finish_reason": "stop",
                        }
                    ]
                ),
            )
            if error:
                span.set_status(Status(StatusCode.ERROR, "upstream 503"))

    chat("gpt-4o-mini", "What is 2+2?", "4")
    chat("gpt-4o", "Capital of France?", "Paris", error=True)
    with tracer.start_as_current_span("embeddings text-embedding-3-small") as span:
        span.set_attribute("gen_ai.operation.name", "embeddings")
        span.set_attribute("gen_ai.request.model", "text-embedding-3-small")
    with tracer.start_as_current_span("chat gpt-4o") as span:  # content capture off: no prompt
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
    spans = exporter.get_finished_spans()
    body = MessageToDict(encode_spans(spans))
    # OTLP/JSON writes trace and span ids as hex (protobuf's JSON mapping would give base64).
    import base64

    for rs in body["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for sp in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in sp:
                        sp[key] = base64.b64decode(sp[key]).hex()
    f = tmp_path / "spans.json"
    f.write_text(json.dumps(body, indent=1))
    return f, spans


def test_otlp_genai_spans(tmp_path):
    f, spans = _otlp_request(tmp_path)
    assert detect_format(f) == "otlp"
    prices = {"gpt-4o-mini-2024": (1e-6, 4e-6)}
    report = read_logs(f, prices=prices)
    (call,) = report.calls
    assert call.model == "gpt-4o-mini-2024" and call.prompt == "What is 2+2?" and call.response == "4"
    assert (call.input_tokens, call.output_tokens) == (11, 5)
    assert call.cost_usd == pytest.approx(11e-6 + 20e-6)
    assert call.call_id == format(spans[0].context.span_id, "016x")
    assert call.latency_s == pytest.approx((spans[0].end_time - spans[0].start_time) / 1e9)
    reasons = [i.reason for i in report.skipped]
    assert len(reasons) == 3 and report.n_records == 4
    assert any("upstream 503" in r for r in reasons)
    assert any("embeddings" in r for r in reasons)
    assert any("no prompt" in r for r in reasons)
    # Without prices the call is kept and reported as partial (no cost).
    report = read_logs(f)
    assert report.calls[0].cost_usd is None and "no cost_usd" in report.partial[0].reason


def test_otlp_json_lines_report_each_line(tmp_path):
    f, _ = _otlp_request(tmp_path)
    doc = json.loads(f.read_text())
    lines = tmp_path / "collector.jsonl"
    lines.write_text(json.dumps(doc) + "\n" + "garbage\n" + json.dumps({"foo": 1}) + "\n")
    report = read_logs(lines, format="otlp")
    assert len(report.calls) == 1
    lines_of = sorted({i.line for i in report.skipped})
    assert lines_of == [1, 2, 3]


def test_unknown_format_is_named(tmp_path):
    f = tmp_path / "x.jsonl"
    f.write_text(json.dumps({"hello": 1}) + "\n")
    with pytest.raises(SchemaError, match="cannot tell the log format"):
        read_logs(f)
    with pytest.raises(ValueError, match="format must be"):
        read_logs(f, format="csv")


def test_feedback_file_scores_and_table(litellm_log, tmp_path):
    path, responses = litellm_log
    report = read_logs(path)
    fb = tmp_path / "feedback.csv"
    ids = [r.id for r in responses]
    fb.write_text(f"request_id,score\n{ids[0]},1\n{ids[1]},down\n,1\n{ids[2]},7\n")
    scores, fb_report = read_feedback(fb)
    assert scores == {ids[0]: 1.0, ids[1]: 0.0}
    assert {i.line for i in fb_report.skipped} == {4, 5}
    table = calls_to_table(report.calls, scores, prices={"cheap": (1e-6, 2e-6)})
    assert sorted(table.prompt_ids) == sorted(ids[:2])
    assert table.scores(ids[:2], ["cheap"])[0, 0] == 1.0
    assert table.prices("cheap") == (pytest.approx(1e-6), pytest.approx(2e-6))
    with pytest.raises(SchemaError, match="none of the"):
        calls_to_table(report.calls, {})


def test_store_observations_from_record_quality(tmp_path):
    from zerorouter_integrations.stores import SQLiteStore
    from zerorouter_integrations.testing.fixtures import replay_router

    pool = ["gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat"]
    with ReplayServer() as srv:
        router = replay_router(srv, pool, store=SQLiteStore(tmp_path / "store.db"))
        r = router.complete("What is 17 * 23?", max_tokens=16)
        router.record_quality(r.request_id, 1.0)
    obs = store_observations(SQLiteStore(tmp_path / "store.db"), pool)
    assert len(obs) == 1 and obs[0].model == r.model and obs[0].score == 1.0
    assert obs[0].z == pytest.approx(list(r.decision.latent))


def test_judge_scores_sample_and_cache(litellm_log, server, tmp_path):
    path, _ = litellm_log
    calls = read_logs(path).calls
    cache = tmp_path / "judge.sqlite"
    server.reset_counters()
    scores, report = judge_calls(
        calls, "openai/strong", max_calls=2, cache=cache, api_base=server.base_url, api_key="sk-test"
    )
    assert len(scores) == 2 and list(scores.values()) == [pytest.approx(7 / 9)] * 2
    assert report.skipped == [] and report.n_records == 3
    assert server.request_count("strong") == 2
    scores2, _ = judge_calls(
        calls, "openai/strong", max_calls=0, cache=cache, api_base=server.base_url, api_key="sk-test"
    )
    assert scores2 == scores and server.request_count("strong") == 2  # cached: no new call
    assert parse_grade("Grade: 10/10") == 1.0 and parse_grade("no idea") is None
