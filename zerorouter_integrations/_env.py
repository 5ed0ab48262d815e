"""Process-wide settings that must hold before heavy libraries are imported.

Imported first by :mod:`zerorouter_integrations`. Nothing in this package may reach the network:

* ``LITELLM_LOCAL_MODEL_COST_MAP=True`` stops LiteLLM from fetching its price map at import.
* ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1`` stop sentence-transformers and transformers (the
  ``torch`` extra) from asking a model hub for anything; the default encoder is the int8 ONNX MiniLM
  shipped in this package (``shipped_encoder/``).
* ``TOKENIZERS_PARALLELISM=false`` avoids the fork warning of HF tokenizers in multi-process use.

Values the user has already set are respected (``setdefault``), except the LiteLLM cost map, which
is forced: a network fetch at import is never acceptable for this package.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def import_litellm():
    """Import LiteLLM lazily, with the offline cost map in force and its chatty logging quiet."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    return litellm
