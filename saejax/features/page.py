"""The feature page: one static HTML file (no server, no CDN; the data inline) and its JSON."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from saejax.records import files


def write(out: str | Path, data: dict, title: str) -> Path:
    """Writes ``out``/index.html and ``out``/features.json (``collect.collect``'s data); ``out``
    must be new or empty. Returns the page's path."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: nothing was changed. Choose a new "
                         "--out directory.")
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False)
    files.write_text(out / "features.json", text + "\n")
    template = resources.files("saejax.features").joinpath("page.html").read_text("utf-8")
    inline = text.replace("</", "<\\/")  # no token text can close the script element
    html = template.replace("__TITLE__", _escape(title)).replace("__DATA__", inline)
    return files.write_text(out / "index.html", html)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
