"""zerorouter: route each LLM request to the cheapest model that will answer it well."""

from zerorouter_integrations import _env  # noqa: F401  (must run before litellm / transformers)

__version__ = "0.1.0"
