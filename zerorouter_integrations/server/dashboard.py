"""``GET /dashboard``: one HTML page with its script, shipped in the package (no CDN).

The page polls ``/dashboard/data`` (the same counters as ``/metrics``) every two seconds and draws
plain SVG. With an API key, open ``/dashboard#key=KEY``: the script sends it as a bearer token.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

__all__ = ["dashboard_page"]


@lru_cache(maxsize=1)
def dashboard_page() -> str:
    """The dashboard's HTML with its stylesheet and script inlined."""
    static = files("zerorouter_integrations.server") / "static"
    html = (static / "dashboard.html").read_text(encoding="utf-8")
    css = (static / "dashboard.css").read_text(encoding="utf-8")
    js = (static / "dashboard.js").read_text(encoding="utf-8")
    return html.replace("/*STYLE*/", css).replace("/*SCRIPT*/", js)
