"""The documentation site in a real browser: every page of ``mkdocs build`` served on the loopback address (by
this test, stopped by it) and opened in headless Chromium at a 1280-px viewport: no console error, every image
decodes and is legible, every internal link and anchor resolves, nothing scrolls sideways."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag

import pytest

from tests.browser.test_pages import MIN_SCALE, MIN_SHOWN_PX, VIEWPORT, chromium, measure  # noqa: F401 - fixture

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Path, str]]:
    """The built site and the loopback URL serving it."""
    out = tmp_path_factory.mktemp("site") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run([BIN / "mkdocs", "build", "--strict", "--site-dir", out], cwd=ROOT, env=env, check=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield out, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def pages(site_dir: Path) -> list[Path]:
    return sorted(p for p in site_dir.rglob("*.html") if p.name != "404.html")


def test_every_page_of_the_site_loads_clean(chromium, site):  # noqa: F811 - the chromium fixture
    site_dir, base = site
    checked = pages(site_dir)
    assert len(checked) >= 20
    for page in checked:
        rel = page.relative_to(site_dir).as_posix()
        m, errors = measure(chromium, page, url=f"{base}/{rel}")
        assert errors == [], (rel, errors)
        for img in m["images"]:
            assert img["natural"] > 0, (rel, f"image does not decode: {img['alt']}")
            legible = img["shown"] >= MIN_SHOWN_PX or img["shown"] >= MIN_SCALE * img["natural"]
            assert legible, (rel, f"{img['alt']}: shown {img['shown']:.0f} px of {img['natural']} px")
        for href in m["links"]:
            target, anchor = urldefrag(href)
            if href.startswith(("http://", "https://", "mailto:")):
                continue  # external: not fetched (the machine may be offline)
            if not target:
                assert anchor in m["ids"], (rel, f"broken anchor {href}")
                continue
            path = (page.parent / target).resolve()
            if path.is_dir():
                path = path / "index.html"
            assert path.is_file(), (rel, f"broken link {href}")
        assert m["scrollWidth"] <= VIEWPORT, (rel, f"page scrolls sideways: scrollWidth {m['scrollWidth']}")


def test_the_site_has_its_picture_and_reference(site):
    site_dir, _ = site
    index = (site_dir / "index.html").read_text()
    assert 'src="assets/decision_surfaces.png"' in index
    cli = (site_dir / "reference" / "cli.html").read_text()
    assert all(f"usage: xorlab-{app}" in cli for app in ("report", "runs", "store")) and "grid.seed" in cli
    assert "train_batch" in (site_dir / "reference" / "api.html").read_text()
