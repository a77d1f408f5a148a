"""The generated pages in a real browser: ``report.html`` (``xorlab-report``) and ``compare.html``
(``xorlab-runs compare``), opened in Debian's headless Chromium at a 1280-px viewport.

Asserted on what the browser measures: every embedded image decodes (naturalWidth > 0); no console error or
uncaught exception; no broken link; the page never scrolls sideways (scrollWidth ≤ 1280) and no element pokes
out of the viewport unless it sits in a box that scrolls on its own (a wide table); figures legible (shown at
≥ 600 px, or at ≥ 60 % of their natural width). No screenshots are kept.

Chromium is driven over the DevTools protocol on a local port (``--remote-debugging-port=0``), with
networking features off, so nothing is downloaded. ``make test-browser`` installs Chromium when missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

BIN = Path(sys.executable).parent
VIEWPORT = 1280
MIN_SHOWN_PX, MIN_SCALE = 600, 0.6
GRID = [
    "grid.lr=[0.1,1,4]",
    "grid.init=[notebook,xavier_normal,he_uniform,zeros,{name:normal,std:[0.01,1]}]",
    "grid.seed=range(0,12)",
    "grid.max_steps=[100,400]",
    "sweep.progress=false",
]  # 432 runs: every figure has several facets, the summary table is wide

DEEP = "/".join(["a_rather_long_folder_name_as_clusters_have"] * 5) + "/b"  # a store path of ~220 characters
MEASURE = """(async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const vw = VIEWPORT;
  const scroller = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return a;
    }
    return null;
  };
  const outside = r => r.right > vw + 0.5 || r.left < -0.5;
  const poking = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if ((r.width === 0 && r.height === 0) || !outside(r)) continue;
    const box = scroller(el);
    if (!box || outside(box.getBoundingClientRect()))
      poking.push(el.tagName.toLowerCase() + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    images: imgs.map(i => ({natural: i.naturalWidth, shown: i.getBoundingClientRect().width, alt: i.alt})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    tables: [...document.querySelectorAll('table')].map(t => ({
      width: t.getBoundingClientRect().width, scrolls: scroller(t) !== null})),
    poking,
  };
})()""".replace("VIEWPORT", str(VIEWPORT))


class Page:
    """One Chromium tab over the DevTools protocol: send commands, collect events."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client (the `browser` extra)

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(event)
            self.events.append(json.loads(self.ws.recv()))

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("text", "exception"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Log.entryAdded" and p["entry"].get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out


@pytest.fixture(scope="module")
def chromium(tmp_path_factory) -> Iterator[str]:
    """A headless Chromium for the module; yields the DevTools HTTP endpoint."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium not found: `make test-browser` installs Debian's chromium (apt-get install chromium)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    args = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        endpoint = None
        deadline = time.monotonic() + 60
        while endpoint is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            if m := re.search(r"DevTools listening on ws://([\d.]+:\d+)/", line):
                endpoint = f"http://{m[1]}"
        assert endpoint, "chromium did not start its DevTools endpoint"
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def measure(endpoint: str, page_path: Path, url: str | None = None) -> tuple[dict, list[str]]:
    """Open ``page_path`` (or ``url``) in a new tab at a 1280-px viewport; return the measurements and the errors
    logged."""
    req = urllib.request.Request(f"{endpoint}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        target = json.load(resp)
    page = Page(target["webSocketDebuggerUrl"])
    try:
        for domain in ("Runtime", "Log", "Page"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride", width=VIEWPORT, height=900, deviceScaleFactor=1, mobile=False)
        page.send("Page.navigate", url=url or page_path.absolute().as_uri())
        page.wait_for("Page.loadEventFired")
        result = page.send("Runtime.evaluate", expression=MEASURE, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        time.sleep(0.2)  # late console messages
        page.send("Runtime.evaluate", expression="1")
        return result["result"]["value"], page.errors()
    finally:
        page.ws.close()
        urllib.request.urlopen(f"{endpoint}/json/close/{target['id']}", timeout=30).close()


def assert_page_ok(page_path: Path, m: dict, errors: list[str], min_images: int) -> None:
    assert errors == [], errors
    assert len(m["images"]) >= min_images
    for img in m["images"]:
        assert img["natural"] > 0, f"image does not decode: {img['alt']}"
        legible = img["shown"] >= MIN_SHOWN_PX or img["shown"] >= MIN_SCALE * img["natural"]
        assert legible, f"{img['alt']}: shown {img['shown']:.0f} px of {img['natural']} px"
    for href in m["links"]:
        if href.startswith("#"):
            assert href[1:] in m["ids"], f"broken anchor {href}"
        else:
            assert not re.match(r"^[a-z][a-z0-9+.-]*:", href), f"external link in a self-contained page: {href}"
            assert (page_path.parent / href.split("#")[0]).exists(), f"broken link {href}"
    assert m["scrollWidth"] <= VIEWPORT, f"page scrolls sideways: scrollWidth {m['scrollWidth']}"
    assert m["poking"] == [], f"elements wider than the viewport: {m['poking'][:5]}"
    for t in m["tables"]:
        assert t["width"] <= VIEWPORT or t["scrolls"], t


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """report.html and compare.html made by the console scripts from two small stores."""
    root = tmp_path_factory.mktemp("pages")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYDRA_")}
    for name, extra in (("a", []), (DEEP, ["grid.loss_threshold=0.01"])):
        d = root / name
        subprocess.run(
            [BIN / "xorlab-sweep", *GRID, *extra, f"sweep.dir={d}"], cwd=root, env=env, check=True, capture_output=True
        )
    subprocess.run([BIN / "xorlab-report", root / "a"], cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(
        [BIN / "xorlab-runs", "compare", root / "a", root / "a", "--out", root / "same"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run([BIN / "xorlab-report", root / DEEP], cwd=root, env=env, check=True, capture_output=True)
    subprocess.run(
        [BIN / "xorlab-runs", "compare", root / "a", root / DEEP, "--out", root / "threshold"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    return {
        "report": root / "a" / "report" / "report.html",
        "report_long_path": root / DEEP / "report" / "report.html",
        "compare": root / "same" / "compare.html",
        "compare_paired": root / "threshold" / "compare.html",  # a long store path, too
    }


def test_report_html(chromium, pages):
    m, errors = measure(chromium, pages["report"])
    assert_page_ok(pages["report"], m, errors, min_images=5)


def test_report_html_long_store_path(chromium, pages):
    m, errors = measure(chromium, pages["report_long_path"])
    assert_page_ok(pages["report_long_path"], m, errors, min_images=5)


@pytest.mark.parametrize("name", ["compare", "compare_paired"])
def test_compare_html(chromium, pages, name):
    m, errors = measure(chromium, pages[name])
    assert_page_ok(pages[name], m, errors, min_images=1)
    assert m["tables"], "no table on the comparison page"


def test_the_checks_catch_a_bad_page(chromium, tmp_path):
    """The checks themselves: a page with every fault is caught fault by fault."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><div style="width:1500px">too wide</div>'
        '<div style="overflow-x:auto"><table style="width:2000px"><tr><td>scrolls in its box</td></tr></table></div>'
        '<img src="data:image/png;base64,AAAA" alt="broken"><img src="missing.png" alt="missing">'
        '<a href="nowhere.html">x</a><a href="#nope">y</a><script>console.error("boom")</script></body></html>'
    )
    m, errors = measure(chromium, bad)
    assert any("boom" in e for e in errors)
    assert m["scrollWidth"] > VIEWPORT
    assert [p.split()[0] for p in m["poking"]] == ["div"]  # the table scrolls inside its box: not poking out
    assert [i["natural"] for i in m["images"]] == [0, 0]
    assert m["links"] == ["nowhere.html", "#nope"]
    with pytest.raises(AssertionError):
        assert_page_ok(bad, m, [], min_images=0)
