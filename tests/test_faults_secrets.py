"""Issue 14, item 8: API keys are SecretStr end to end (core part: ModelEndpoint and dispatch)."""

from __future__ import annotations

import json
import logging
import pickle

from pydantic import SecretStr

from zerorouter_integrations.dispatch import Dispatcher, ModelEndpoint
from zerorouter_integrations.testing import ReplayServer

SECRET = "sk-do-not-print-4242"


def test_model_endpoint_never_shows_its_key_but_calls_with_it(caplog):
    with ReplayServer(["m"], require_api_key=SECRET) as srv:
        ep = ModelEndpoint("m", "openai/m", api_base=srv.base_url, api_key=SECRET)
        assert isinstance(ep.api_key, SecretStr)
        for text in (repr(ep), str(ep), json.dumps(ep.to_dict())):
            assert SECRET not in text
        assert ep.to_dict()["api_key"] is None
        assert ModelEndpoint.from_dict(ep.to_dict()).api_key is None
        copy = pickle.loads(pickle.dumps(ep))
        assert copy == ep and copy.secret_api_key() == SECRET  # a copy can still call the model
        with caplog.at_level(logging.DEBUG):
            res = Dispatcher({"m": copy}).complete(["m"], [{"role": "user", "content": "hello"}])
        assert res.content and SECRET not in repr(res) and SECRET not in caplog.text
        # a wrong key fails, and the failure's message does not echo the key
        bad = ModelEndpoint("m", "openai/m", api_base=srv.base_url, api_key=SECRET + "-wrong")
        try:
            Dispatcher({"m": bad}).complete(["m"], [{"role": "user", "content": "hello"}])
        except Exception as exc:
            assert SECRET not in str(exc)
        else:
            raise AssertionError("a wrong API key was accepted")
