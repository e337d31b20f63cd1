"""The web UI as a user meets it, in headless Chromium against a real ``greenflame serve``.

For each version measured (this checkout, and with ``--previous DIR`` an older checkout of the
repository run side by side on the same data, in the same run) it reports:

- first meaningful paint of a group page: from navigation start to the frame after the flame
  graph is drawn (its status line names the samples), for the demo Lambda function (the seed's
  "brown" handler run by ``greenflame lambda invoke``) and for a profile of 100,000 distinct
  call-tree nodes (the API prunes it to 5,000);
- zoom redraw on the page: a click on a frame (zoom in) and on the root (zoom out), timed
  around the synchronous redraw, 40 clicks;
- where the flame graph starts on a 1440x900 screen (px from the top of the page);
- bytes and requests per page: the groups list (6 groups), the demo group page, its Findings
  tab, first load (empty cache) and a second load (warm cache).

    git archive <commit> | tar -x -C /tmp/previous      # optional: the version to compare with
    python benchmarks/ui/page_load.py [--runs 5] [--previous /tmp/previous]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support.server import LiveServer, ingest, ingest_profile, start_server  # noqa: E402 - the tests' real server

from greenflame.analyzer.model import Frame, Profile  # noqa: E402

DESKTOP = {"width": 1440, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PACKAGES = ("agent", "analyzer", "server", "cli", "devtools", "sample_apps")
DEMO_HANDLER = "greenflame.sample_apps.seed_brown.lambda_handler"
BIG_NODES = 100_000

# Records when the flame graph status first names samples, then waits two frames (drawn and shown).
PAINT_WATCH = """
window.__paint = null;
new MutationObserver(function () {
  var status = document.getElementById('flamegraph-status');
  if (window.__paint === null && status && /samples/.test(status.textContent)) {
    window.__paint = -1;
    requestAnimationFrame(function () { requestAnimationFrame(function () { window.__paint = performance.now(); }); });
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""

ZOOM_CLICKS = """
async ([x, y, rootY, clicks]) => {
  const canvas = document.getElementById('flamegraph');
  const box = canvas.getBoundingClientRect();
  const flush = () => canvas.getContext('2d').getImageData(0, 0, 1, 1);
  const times = [];
  for (let i = 0; i < clicks; i++) {
    const at = i % 2 === 0 ? [box.left + x, box.top + y] : [box.left + 5, box.top + rootY];
    const t0 = performance.now();
    canvas.dispatchEvent(new MouseEvent('click', { clientX: at[0], clientY: at[1], bubbles: true }));
    flush();
    times.push(performance.now() - t0);
    await new Promise((r) => requestAnimationFrame(r));
  }
  return times;
}
"""

TRANSFERRED = """
() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  return { bytes: entries.reduce((sum, e) => sum + (e.transferSize || 0), 0), requests: entries.length,
           api: entries.filter((e) => e.name.includes('/api/')).length };
}
"""


def big_profile(group: str, nodes: int = BIG_NODES, seed: int = 5) -> Profile:
    """A profile whose call tree has ``nodes`` distinct nodes (depth up to 40), each with some self time."""
    rng = random.Random(seed)
    profile = Profile(group=group, start_time_unix_ns=1_700_000_000 * 10**9, duration_ns=60 * 10**9)
    paths: List[List[Frame]] = [[]]
    for made in range(nodes):
        parent = paths[int(len(paths) * rng.random() ** 0.5)]
        if len(parent) >= 40:
            parent = paths[0]
        kind = ("/srv/app/", "/usr/lib/python3.11/", "/venv/lib/python3.11/site-packages/lib/")[made % 3]
        path = [*parent, Frame(f"module{made % 211}.function_{made}", f"{kind}mod{made % 97}.py", made % 500)]
        paths.append(path)
        weight = rng.randint(1, 20)
        profile.add(path, [weight, weight])
    return profile


def demo_profile_bytes(folder: Path) -> bytes:
    """The demo Lambda function's profile, as ``greenflame lambda invoke`` writes it."""
    out = folder / "demo.json"
    command = [sys.executable, "-m", "greenflame.cli.main"] if not shutil.which("greenflame") else ["greenflame"]
    subprocess.run(
        [*command, "lambda", "invoke", DEMO_HANDLER, "--invocations", "1500", "--out", str(out)],
        check=True,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return out.read_bytes()


def overlay_for(tree: Path, folder: Path) -> Dict[str, str]:
    """The environment that makes ``greenflame`` import the packages of ``tree`` instead of this checkout."""
    package = folder / "overlay" / "greenflame"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in PACKAGES:
        if (tree / name).is_dir():
            (package / name).symlink_to(tree / name)
    return {"PYTHONPATH": str(folder / "overlay")}


def fill(server: LiveServer, demo: bytes) -> Dict[str, str]:
    """Six groups of the demo profile (the groups list) and one 100,000-node group; their names."""
    for n in range(6):
        name = f"demo-{n}"
        key = server.create_group(name)
        document = json.loads(demo)
        document["group"] = name
        assert ingest(server, key, json.dumps(document).encode()).status_code == 202
    key = server.create_group("big")
    assert ingest_profile(server, key, big_profile("big")).status_code == 202
    return {"demo": "demo-0", "big": "big"}


@contextmanager
def painted(browser: Any, url: str) -> Iterator[Any]:
    """A fresh page (empty cache) at ``url``, once its flame graph has been drawn and shown."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.add_init_script(PAINT_WATCH)
    page.goto(url)
    page.wait_for_function("() => window.__paint > 0", timeout=120_000)
    try:
        yield page
    finally:
        context.close()


def paint_ms(browser: Any, url: str) -> float:
    with painted(browser, url) as page:
        value: float = page.evaluate("() => window.__paint")
    return value


def zoom_ms(browser: Any, url: str, clicks: int = 40) -> List[float]:
    with painted(browser, url) as page:
        width = page.locator("#flamegraph").bounding_box()["width"]
        times: List[float] = page.evaluate(ZOOM_CLICKS, [width * 0.5, 18 * 3 + 9, 9, clicks])
    return times


def graph_top(browser: Any, url: str) -> float:
    with painted(browser, url) as page:
        top: float = page.evaluate("() => document.getElementById('flamegraph').getBoundingClientRect().top + scrollY")
    return top


def transferred(browser: Any, url: str, wait_for: str) -> Dict[str, Dict[str, int]]:
    """Bytes and requests of a first load (empty cache) and a second one in the same browser context."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    result = {}
    for visit in ("first", "second"):
        page.goto(url)
        page.wait_for_function(wait_for, timeout=120_000)
        page.wait_for_timeout(500)  # late requests (sparklines, labels) finish
        result[visit] = page.evaluate(TRANSFERRED)
    context.close()
    return result


def stats(values: List[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"median {statistics.median(ordered):7.1f} ms  min {ordered[0]:6.1f}  p90 {p90:6.1f}  (n={len(ordered)})"


def measure(browser: Any, server: LiveServer, groups: Dict[str, str], runs: int) -> List[str]:
    demo = server.api(f"/groups/{groups['demo']}")
    big = server.api(f"/groups/{groups['big']}")
    lines = [
        f"first meaningful paint, demo group     {stats([paint_ms(browser, demo) for _ in range(runs)])}",
        f"first meaningful paint, 100k-node group {stats([paint_ms(browser, big) for _ in range(runs)])}",
        f"zoom redraw on the page, demo group    {stats(zoom_ms(browser, demo))}",
        f"zoom redraw on the page, 100k-node group {stats(zoom_ms(browser, big))}",
        f"flame graph top at 1440x900, demo group  {graph_top(browser, demo):.0f} px",
    ]
    status_loaded = (
        "() => { const s = document.getElementById('flamegraph-status'); return s && /samples/.test(s.textContent); }"
    )
    pages = {
        "groups list (6 groups)": (server.url, "() => !document.body.innerText.includes('\u2026')"),
        "demo group page": (demo, status_loaded),
        "demo Findings tab": (
            demo + "/findings",
            "() => !/Loading/.test(document.getElementById('findings-status').textContent)",
        ),
    }
    for name, (url, ready) in pages.items():
        seen = transferred(browser, url, ready)
        first, second = seen["first"], seen["second"]
        lines.append(
            f"{name:27} first load {first['bytes'] / 1024:7.1f} KiB in {first['requests']:3} requests"
            f" ({first['api']} API); second load {second['bytes'] / 1024:6.1f} KiB in {second['requests']} requests"
        )
    return lines


def run_version(label: str, env: Dict[str, str], demo: bytes, runs: int, browser: Any, folder: Path) -> None:
    server = start_server(folder / f"data-{label}", env)
    try:
        groups = fill(server, demo)
        print(f"== {label}")
        for line in measure(browser, server, groups, runs):
            print("  " + line, flush=True)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--previous", type=Path, help="an older checkout of the repository to measure beside this one")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as temp, sync_playwright() as playwright:
        folder = Path(temp)
        demo = demo_profile_bytes(folder)
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        print(f"Chromium {browser.version}; load average {os.getloadavg()[0]:.1f}")
        versions: Dict[str, Dict[str, str]] = {"this version": {}}
        previous: Optional[Path] = args.previous
        if previous:
            versions = {"previous version": overlay_for(previous.resolve(), folder), **versions}
        for label, env in versions.items():
            run_version(label, env, demo, args.runs, browser, folder)
        print(f"load average after {os.getloadavg()[0]:.1f}")
        browser.close()


if __name__ == "__main__":
    main()
