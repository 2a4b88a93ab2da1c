"""The feature page: one static HTML file (no server, no CDN; the data inline) and its JSON."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from saejax.records import files


def write(out: str | Path, data: dict, title: str) -> Path:
    """Writes ``out``/index.html and ``out``/features.json (``collect.collect``'s data); ``out``
    must be new or empty. Returns the page's path."""
    out = check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False)
    files.write_text(out / "features.json", text + "\n")
    template = resources.files("saejax.features").joinpath("page.html").read_text("utf-8")
    # nothing in the data can end the script element or open a comment in it
    inline = text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
    html = template.replace("__TITLE__", _escape(title)).replace("__DATA__", inline)
    return files.write_text(out / "index.html", html)


def check_out(out: str | Path) -> Path:
    """``out`` as a Path, or a ValueError when it exists and is not an empty directory."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not empty: nothing was changed. Choose a new "
                         "--out directory.")
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
