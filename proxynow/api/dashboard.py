"""The dashboard's static files and its two redirects, without sockets.

The files live in the package (proxynow/api/dashboard/: index.html, app.js, app.css),
are read once, and are served as they are: no build step, nothing fetched from the
network at run time. `dashboard_answer(assets, base, path)` answers a request path as
sent by the worker (`base` is `api.basePath` without its trailing slash):

- `<base>/` (and `<base>` itself) → 301 to `<base>/dashboard/`, Traefik's
  `dashboard_redirect@internal`;
- `<base>/dashboard` → 301 to `<base>/dashboard/` (the page's relative URLs need the slash);
- `<base>/dashboard/` → index.html; `<base>/dashboard/<file>` → that file; anything else 404.

Every answer carries a Content-Security-Policy that allows only the dashboard's own
script, style and API (`default-src 'self'`, no inline script): even if a name from the
configuration were inserted unescaped somewhere, the browser would not run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources

from proxynow.api.endpoints import Answer

__all__ = ["CSP", "Assets", "dashboard_answer", "is_dashboard_path"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
}
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_NOT_FOUND = Answer(404, b"404 page not found\n", "text/plain; charset=utf-8")


@dataclass(frozen=True, slots=True)
class Assets:
    """File name → (content type, bytes)."""

    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Assets:
        """The files shipped in proxynow/api/dashboard/."""
        folder = resources.files("proxynow.api").joinpath("dashboard")
        files: dict[str, tuple[str, bytes]] = {}
        for entry in folder.iterdir():
            kind = _TYPES.get(entry.name.rpartition(".")[2])
            if kind is not None and entry.is_file():
                files[entry.name] = (kind, entry.read_bytes())
        return cls(files)


def is_dashboard_path(base: str, path: str) -> bool:
    """Whether `path` is the dashboard's (under `<base>/dashboard`)."""
    prefix = f"{base}/dashboard"
    return path == prefix or path.startswith(prefix + "/")


def dashboard_answer(assets: Assets, base: str, path: str) -> Answer:
    """The answer to GET `path` (without the query) for the dashboard under `base`."""
    home = f"{base}/dashboard/"
    if path in (base, base + "/", home[:-1]):
        return Answer(301, b"", "text/plain; charset=utf-8", {**_HEADERS, "Location": home})
    if not path.startswith(home):
        return _NOT_FOUND
    name = path[len(home) :] or "index.html"
    found = assets.files.get(name)
    if found is None:
        return _NOT_FOUND
    content_type, body = found
    return Answer(200, body, content_type, _HEADERS)
