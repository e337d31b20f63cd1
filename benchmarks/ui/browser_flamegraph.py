"""Flame graph drawing in headless Chromium on a 100,000-node profile: greenflame and speedscope.

greenflame (server/static/flamegraph.js): the tree as the API sends it is parsed, laid out
and drawn on a 1280-pixel canvas; a 1x1 ``getImageData`` after each draw makes the browser
finish rasterising before the clock stops. Reported:

- first draw: layout + draw after the JSON is parsed (goal <= 100 ms), and with the parse;
- zoom redraw: ``zoomTo`` on 40 different frames, each a full redraw (goal <= 16 ms).

speedscope (npm package, run from its ``dist/release`` folder on a local HTTP server, the same
profile in speedscope's own JSON format): from the moment the profile's body has arrived
(``responseEnd`` of its fetch) to the first animation frame after speedscope shows the
loaded profile; this includes speedscope's own parse and model building.

    npm install --prefix /tmp/speedscope speedscope   # optional
    python benchmarks/ui/browser_flamegraph.py [--runs 15] [--speedscope /tmp/speedscope/node_modules/speedscope]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import random
import shutil
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

STATIC = Path(__file__).resolve().parents[2] / "server" / "static"
NODES = 100_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def make_tree(nodes: int = NODES, seed: int = 3) -> Dict[str, Any]:
    """A deterministic call tree of exactly ``nodes`` nodes (sibling names distinct), API-shaped."""
    rng = random.Random(seed)
    root: Dict[str, Any] = {"name": "all", "file": "", "line": 0, "self": 0, "total": 0, "children": []}
    parents = [root]
    depth = {id(root): 0}
    made = 1
    while made < nodes:
        parent = parents[int(len(parents) * rng.random() ** 0.5)] if rng.random() < 0.9 else rng.choice(parents)
        if depth[id(parent)] >= 80:
            continue
        index = len(parent["children"])
        kind = ("/srv/app/", "/usr/lib/python3.11/", "/venv/lib/python3.11/site-packages/lib/")[made % 3]
        child = {
            "name": f"module{made % 211}.function_{made}_{index}",
            "file": f"{kind}mod{made % 97}.py",
            "line": made % 500,
            "self": rng.randint(0, 50) if rng.random() < 0.6 else 0,
            "total": 0,
            "children": [],
            "kind": ("user", "stdlib", "library")[made % 3],
        }
        parent["children"].append(child)
        parents.append(child)
        depth[id(child)] = depth[id(parent)] + 1
        made += 1
    _totals(root)
    root["sample_type"], root["unit"] = "cpu", "samples"
    return root


def _totals(root: Dict[str, Any]) -> None:
    order: List[Dict[str, Any]] = []
    pending = [root]
    while pending:
        node = pending.pop()
        order.append(node)
        pending.extend(node["children"])
    for node in reversed(order):
        node["self"] = max(node["self"], 0 if node["children"] else 1)
        node["total"] = node["self"] + sum(child["total"] for child in node["children"])


def to_speedscope(tree: Dict[str, Any]) -> Dict[str, Any]:
    """The same tree as a speedscope 'sampled' profile: one weighted sample per node with self time."""
    frames: List[Dict[str, Any]] = []
    frame_ids: Dict[Tuple[str, str, int], int] = {}
    samples: List[List[int]] = []
    weights: List[int] = []
    pending: List[Tuple[Dict[str, Any], List[int]]] = [(child, []) for child in tree["children"]]
    while pending:
        node, prefix = pending.pop()
        key = (node["name"], node["file"], node["line"])
        if key not in frame_ids:
            frame_ids[key] = len(frames)
            frames.append({"name": node["name"], "file": node["file"], "line": node["line"]})
        stack = [*prefix, frame_ids[key]]
        if node["self"]:
            samples.append(stack)
            weights.append(node["self"])
        pending.extend((child, stack) for child in node["children"])
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": "bench",
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "name": "bench",
    }


GREENFLAME_RUN = """
async (text) => {
  const host = document.body;
  host.style.width = '1280px';
  const results = { first: [], firstWithParse: [], zoom: [], drawn: 0, layout: [] };
  const flush = (canvas) => canvas.getContext('2d').getImageData(0, 0, 1, 1);
  for (let run = 0; run < RUNS; run++) {
    host.replaceChildren();
    const box = document.createElement('div'); box.style.position = 'relative';
    const canvas = document.createElement('canvas'); canvas.style.width = '1280px';
    const tip = document.createElement('div'); tip.hidden = true;
    box.append(canvas, tip); host.append(box);
    const graph = new GreenflameFlamegraph.FlameGraph(canvas, tip, {});
    await new Promise(r => requestAnimationFrame(r));
    const t0 = performance.now();
    const tree = JSON.parse(text);
    const t1 = performance.now();
    graph.setTree(tree);
    flush(canvas);
    const t2 = performance.now();
    results.first.push(t2 - t1); results.firstWithParse.push(t2 - t0); results.layout.push(graph.timings.layout);
    results.drawn = graph.timings.drawn;
    if (run === 0) {
      const data = graph.data;
      const picks = [];
      for (let i = 1; i < data.n && picks.length < 40; i++) {
        if (data.depth[i] >= 2 && data.childCount[i] > 2) picks.push(i);
      }
      for (const index of picks) {
        const z0 = performance.now();
        graph.zoomTo(index);
        flush(canvas);
        results.zoom.push(performance.now() - z0);
      }
      graph.zoomTo(0); flush(canvas);
      results.nodes = data.n;
    }
  }
  return results;
}
"""

SPEEDSCOPE_WATCH = """
window.__bench = { shown: null, painted: null };
new MutationObserver(function () {
  if (window.__bench.shown === null && document.body && /Left Heavy/.test(document.body.innerText || '')) {
    window.__bench.shown = performance.now();
    requestAnimationFrame(function () {
      requestAnimationFrame(function () { window.__bench.painted = performance.now(); });
    });
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


def serve(folder: Path) -> Tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def stats(values: List[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return (
        f"median {statistics.median(ordered):7.1f} ms  min {ordered[0]:6.1f}  p90 {p90:6.1f}"
        f"  max {ordered[-1]:6.1f}  (n={len(ordered)})"
    )


def run_greenflame(browser: Any, text: str, runs: int) -> Dict[str, Any]:
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    page.goto("about:blank")
    for name in ("common.js", "flamegraph.js"):
        page.add_script_tag(content=(STATIC / name).read_text(encoding="utf-8"))
    result: Dict[str, Any] = page.evaluate(GREENFLAME_RUN.replace("RUNS", str(runs)), text)
    page.close()
    return result


def run_speedscope(browser: Any, package: Path, profile: Dict[str, Any], runs: int) -> List[float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        shutil.copytree(package / "dist" / "release", root / "app")
        (root / "profile.json").write_text(json.dumps(profile), encoding="utf-8")
        server, url = serve(root)
        timings = []
        try:
            for _ in range(runs):
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                page.add_init_script(SPEEDSCOPE_WATCH)
                page.goto(f"{url}/app/index.html#profileURL={url}/profile.json&title=bench")
                page.wait_for_function("() => window.__bench.painted !== null", timeout=120_000)
                arrived = page.evaluate(
                    "() => performance.getEntriesByType('resource')"
                    ".find(e => e.name.endsWith('/profile.json')).responseEnd"
                )
                timings.append(page.evaluate("() => window.__bench.painted") - arrived)
                page.close()
        finally:
            server.shutdown()
        return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--speedscope", type=Path, help="the installed speedscope npm package folder")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    tree = make_tree()
    text = json.dumps(tree, separators=(",", ":"))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        print(f"Chromium {browser.version}; profile: {NODES:,} nodes, {len(text) / 1e6:.1f} MB of JSON")
        result = run_greenflame(browser, text, args.runs)
        print(f"greenflame nodes laid out: {result['nodes']:,}; drawn at full view: {result['drawn']:,}")
        print(f"greenflame first draw (layout+draw)      {stats(result['first'])}")
        print(f"greenflame   of which layout             {stats(result['layout'])}")
        print(f"greenflame first draw incl. JSON.parse   {stats(result['firstWithParse'])}")
        print(f"greenflame zoom redraw                   {stats(result['zoom'])}")
        speedscope: Optional[Path] = args.speedscope
        if speedscope:
            version = json.loads((speedscope / "package.json").read_text())["version"]
            timings = run_speedscope(browser, speedscope, to_speedscope(tree), max(3, args.runs // 3))
            print(f"speedscope {version} first draw after data  {stats(timings)}")
        browser.close()


if __name__ == "__main__":
    main()
