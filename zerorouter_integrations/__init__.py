"""zerorouter: route each LLM request to the cheapest model that will answer it well.

One request flows one way: text → features → latent → predicted quality per model → plan →
execution → feedback → profile. The modules, one idea each:

* ``router``: ``ZeroRouter``, the one object users hold (decide, then execute)
* ``routing``: the deciding half: constraints, estimates, ranking, the decision and its plan
* ``plan``: plans as plain data (``SinglePlan``, ``CascadePlan``) and the cascade's acceptance rule
* ``executor``: runs any plan sync / async / stream / astream; aggregation and feedback
* ``responses``: ``RoutedResponse``, ``RoutedChunk``
* ``decision``: ``RoutingDecision`` and session stickiness
* ``dispatch``, ``dispatch_types``, ``dispatch_errors``, ``dispatch_stream``: LiteLLM calls with
  retries and fallback; endpoints and results; error classification; stream assembly
* ``policy``, ``policy_calibration``, ``policy_params``: the per-query policy; λ's calibration and the
  deterministic mix; the target parameters it shares with ``CascadePolicy``
* ``cascade``, ``cascade_policy``, ``cascade_menus``, ``agreement``, ``cascade_replay``: cascade mode;
  its policy; plan menus; the agreement model; offline replay on recorded answers
* ``answers``: answer extraction, grading and comparison
* ``optimizer``, ``optimizer_pruning``, ``optimizer_knapsack``, ``optimizer_milp``: the batch integer
  program; pruning and bounds; the Lagrangian path; HiGHS
* ``constraints``: capability filters
* ``encoder``, ``features``, ``latent``: text → embedding → features → latent coordinates
* ``encoder_model``, ``encoder_onnx``, ``encoder_torch``, ``encoder_export``, ``encoder_cache``: the
  encoder's model spec, ONNX backend, torch fallback, ONNX export, caches
* ``predictor``, ``profiles``, ``latency``: predicted quality / cost / latency per model
* ``feedback``, ``stores``: observed stats and where they live (memory, SQLite, Redis)
* ``onboarding``, ``artifact``, ``training``: new models from anchors; the artifact; fitting it
* ``logfit``, ``fromlogs``, ``importers``: refining an artifact with logged traffic; log importers
* ``batch``, ``batch_ray``: offline batch routing (local or Ray)
* ``tables``, ``data``: routing tables and where the shared ones are
* ``evaluation``, ``eval_context``, ``eval_report``, ``metrics``: the evaluation contract
* ``catalog``, ``profile_names``, ``names``: model names
* ``litellm_config``, ``litellm_ext``: LiteLLM configs as pools; the LiteLLM ``Router`` integration
* ``server``: ``zerorouter serve``, the OpenAI-compatible gateway
* ``cli``, ``cli_logs``, ``demo``: the ``zerorouter`` command
* ``errors``, ``jsonsafe``, ``_io``, ``_env``: error tree, JSON-safe values, atomic writes, offline settings
* ``testing``: the local replay server
"""

from zerorouter_integrations import _env  # noqa: F401  (must run before litellm / transformers)

__version__ = "0.1.0"
