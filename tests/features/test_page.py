"""The feature page: self-contained (no network), its JSON beside it, and, in a real headless
browser where one is installed, a page that loads, shows a latent and finds one by index."""

import copy
import json
import re
import shutil
from pathlib import Path

import pytest

from saejax.features import page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def data():
    def latent(j, freq):
        return {"index": j, "frequency": freq, "max": 3.0,
                "histogram": {"edges": [0.0, 1.5, 3.0], "counts": [4, 1]},
                "contexts": [{"row": 7, "activation": 3.0, "focus": 1,
                              "tokens": ["def", " f", "</script><b>x", "<!--<script>"],
                              "values": [0.0, 3.0, 1.0, 0.0]}],
                "promoted": [[" return", 0.9]], "suppressed": [[" the", -0.4]]}

    return {"model": "tiny", "layer": 1, "site": "resid_post", "rows": 400,
            "latents_total": 24, "dead_fraction": 0.25, "arch": "topk",
            "latents": [latent(5, 0.5), latent(17, 0.25), latent(2, 0.125)]}


def test_the_page_is_self_contained_and_its_json_round_trips(tmp_path):
    where = page.write(tmp_path / "p", data(), "tiny block 1 resid_post")
    html = where.read_text()
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)  # nothing from the network
    assert "</script><b>x" not in html and html.count("</script>") == 2  # a token cannot
    assert "<!--" not in html.split('type="application/json">')[1]  # end or comment the data
    assert json.loads((tmp_path / "p" / "features.json").read_text()) == data()
    with pytest.raises(ValueError, match="not empty: nothing was changed"):
        page.write(tmp_path / "p", data(), "again")
    assert json.loads((tmp_path / "p" / "features.json").read_text()) == data()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt install chromium, then "
                    "pip install playwright, to test the page in a real browser")
def test_in_a_headless_browser(tmp_path):
    sync = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    where = page.write(tmp_path / "p", copy.deepcopy(data()), "tiny")
    with sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page()
        errors = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(Path(where).resolve().as_uri())
        assert tab.inner_text("h1") == "latent 5"  # the most frequent first
        assert "fires on 50.000% of tokens" in tab.inner_text("#latent")
        assert "</script><b>x" in tab.inner_text(".ctx")  # shown as text
        assert tab.locator("svg rect").count() == 2
        tab.fill("#search", "17")
        assert tab.inner_text("h1") == "latent 17"
        tab.fill("#search", "999")
        assert tab.inner_text("#missing") == "latent 999 is not on this page"
        tab.click("li[data-index='2']")
        assert tab.inner_text("h1") == "latent 2"
        browser.close()
    assert errors == []
