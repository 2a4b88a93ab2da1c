"""Text to run a language model on: a file, a directory of text files, or a corpus every Python
installation has (``pydoc:``, the standard library's documentation topics; ``stdlib:``, its
source files), each with its description and sha256."""

from __future__ import annotations

import hashlib
import sysconfig
from pathlib import Path

from saejax.data.errors import DataError

SOURCES = {"pydoc:": "the standard library's documentation topics (pydoc_data.topics)",
           "stdlib:": "the standard library's .py source files, in sorted order"}


def documents(spec: str | Path) -> tuple[list[str], dict]:
    """The documents ``spec`` names, in order, and ``{"source", "documents", "characters",
    "sha256"}`` (the hash of every document, in order).

    Args:
      spec: ``pydoc:``, ``stdlib:``, a UTF-8 text file, or a directory (every file in it and
        below that reads as UTF-8 text, in sorted order of path).

    Raises:
      DataError: a missing path, a file that is not UTF-8 text, or a directory with no text.
    """
    text = str(spec)
    if text == "pydoc:":
        from pydoc_data import topics

        docs = [topics.topics[k] for k in sorted(topics.topics)]
    elif text == "stdlib:":
        root = Path(sysconfig.get_paths()["stdlib"])
        docs = _read_all(sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts),
                         strict=False)
    else:
        path = Path(text)
        if path.is_dir():
            docs = _read_all(sorted(p for p in path.rglob("*") if p.is_file()), strict=False)
            if not docs:
                raise DataError(f"{path} holds no UTF-8 text files: give a directory of text, a "
                                f"text file, or one of {', '.join(SOURCES)}.")
        elif path.is_file():
            docs = _read_all([path], strict=True)
        else:
            raise DataError(f"{path} does not exist: give --text a text file, a directory of "
                            f"text files, or one of {', '.join(SOURCES)}.")
    digest = hashlib.sha256()
    for d in docs:
        digest.update(d.encode("utf-8") + b"\0")
    return docs, {"source": text, "documents": len(docs),
                  "characters": sum(len(d) for d in docs), "sha256": digest.hexdigest()}


def _read_all(paths, strict: bool) -> list[str]:
    docs = []
    for p in paths:
        try:
            doc = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            if strict:
                raise DataError(f"{p} is not UTF-8 text ({e}); convert it, or give a directory "
                                "(files that are not text are skipped there).") from e
            continue
        except OSError as e:
            if strict:
                raise DataError(f"cannot read {p}: {e.strerror or e}.") from e
            continue
        if doc.strip():
            docs.append(doc)
    return docs
