"""Kedro-Viz, in a real (headless) browser.

``kedro viz build --include-previews`` writes the static Kedro-Viz site of a test-scale project
(``KEDRO_ENV=test``, so previews read the shared build's artifacts); Python's ``http.server``
serves it on 127.0.0.1 and Debian's Chromium, driven by Playwright, opens it. The flowchart must
show every node and dataset of every registered pipeline, in the default view and with each
pipeline picked in Kedro-Viz's dropdown. The browser may fetch nothing but the local site.

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install chromium``) and the ``playwright`` Python
package; never ``playwright install`` (it downloads browsers).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_ENV, clone_project
from world_models_kedro.pipeline_registry import AFTER, AGAIN, PARTS

# run after the default pipeline, by name: not drawn in the default view
OUTSIDE_DEFAULT = {*AFTER, *(part for name in AFTER for part in PARTS[name]), AGAIN}

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NODES = ".pipeline-flowchart__nodes .pipeline-node"  # one SVG group per task or dataset
LAYER_NAMES = ".pipeline-flowchart__layer-names .pipeline-layer-name"
# Preview types the Kedro-Viz front end can draw (its NU/DU renderers, Kedro-Viz 12): the data
# node's `preview_type` (the name of `preview()`'s return annotation) picks the renderer; any
# other name (`dict[str, Any]`, `Any`) shows no preview at all.
RENDERABLE_PREVIEWS = {
    "TablePreview",
    "ImagePreview",
    "PlotlyPreview",
    "JSONPreview",
    "HTMLPreview",
    "TextPreview",
    "MermaidPreview",
}


def _chromium() -> str | None:
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")


def _expected_pipelines() -> dict[str, tuple[set[str], set[str]]]:
    """{pipeline: (node names, dataset names)} from the project's registry (parameters left out:
    Kedro-Viz hides them by default)."""
    from kedro.framework.project import pipelines

    expected = {}
    for name in pipelines:
        pipeline = pipelines[name]
        namespaces = {node.namespace for node in pipeline.nodes}
        if namespaces == {None}:
            nodes, datasets = {node.name for node in pipeline.nodes}, pipeline.datasets()
        else:  # one namespace (iterate_again's round2): drawn collapsed, with its inputs and outputs
            (namespace,) = namespaces
            nodes, datasets = {namespace}, pipeline.inputs() | pipeline.outputs()
        datasets = {d for d in datasets if d != "parameters" and not d.startswith("params:")}
        expected[name] = (nodes, datasets)
    return expected


def _catalog_layers(project: Path) -> set[str]:
    """The layers named in the project's catalog (``metadata: {kedro-viz: {layer: ...}}``)."""
    import yaml

    catalog = yaml.safe_load((project / "conf" / "base" / "catalog.yml").read_text())
    return {
        entry["metadata"]["kedro-viz"]["layer"]
        for entry in catalog.values()
        if isinstance(entry, dict) and "layer" in entry.get("metadata", {}).get("kedro-viz", {})
    }


@pytest.fixture(scope="module")
def viz_site(built_project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared build whose ``build/`` holds the static Kedro-Viz site."""
    project = clone_project(built_project, tmp_path_factory.mktemp("viz") / "project")
    env = {
        **os.environ,
        "KEDRO_ENV": TEST_ENV,  # `kedro viz build` has no --env: Kedro reads it from here
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
    }

    def kedro(*args: str, timeout: int) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "kedro", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        return output

    # The pipelines run after the default ones, so that every dataset exists. In a subprocess: an
    # in-process run would leave Kedro's project pipelines loaded for that one name only.
    kedro("run", f"--env={TEST_ENV}", f"--pipelines={','.join(AFTER)}", timeout=300)
    kedro(  # the second round, whatever the first round's check says
        "run",
        f"--env={TEST_ENV}",
        f"--pipelines={AGAIN}",
        "--params=iterate_again.second_round=always",
        timeout=300,
    )
    output = kedro("viz", "build", "--include-previews", timeout=180)
    assert "could not be previewed" not in output, output
    assert (project / "build" / "index.html").exists(), output
    return project


def _api(project: Path, *parts: str) -> Any:
    return json.loads((project / "build" / "api" / Path(*parts)).read_text())


@contextmanager
def _serve(folder: Path) -> Iterator[str]:
    """``python -m http.server`` for ``folder`` on 127.0.0.1 and a free port; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with opener.open(url, timeout=2) as response:
                    assert response.status == 200
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def _flowchart(page: Any) -> tuple[set[str], set[str]]:
    """(full names, label texts) of the nodes drawn in the flowchart."""
    names = set(page.eval_on_selector_all(NODES, "els => els.map(e => e.dataset.nodeFullname)"))
    labels = {t.strip() for t in page.locator(f"{NODES} .pipeline-node__text").all_text_contents()}
    return names, labels


def _assert_drawn(page: Any, pipeline: str, nodes: set[str], datasets: set[str]) -> None:
    names, labels = _flowchart(page)
    missing = (nodes | datasets) - names
    assert not missing, f"pipeline {pipeline!r}: not in the flowchart: {sorted(missing)}"
    # Labels are the names, or their "pretty" form (Settings: pretty names) when that is on.
    normalised = {re.sub(r"\s+", "_", label).lower() for label in labels}
    unlabelled = {n for n in nodes | datasets if n.lower() not in normalised}
    assert not unlabelled, f"pipeline {pipeline!r}: no label for {sorted(unlabelled)}"


def _dismiss_hints(page: Any) -> None:
    """Close the first-visit feature tour, if it shows (it covers part of the flowchart)."""
    close = page.locator(".feature-hints__close")
    try:
        close.wait_for(state="visible", timeout=3000)
    except Exception:  # noqa: BLE001 - no tour in this version/visit
        return
    close.click()


def _select_pipeline(page: Any, name: str, expected: set[str]) -> None:
    page.locator(".pipeline-list .dropdown__label").click()
    page.locator(f'.pipeline-list .menu-option__content[title="{name}"]').click()
    try:  # the flowchart re-renders with exactly this pipeline's elements
        page.wait_for_function(
            """([selector, wanted]) => {
                const got = new Set([...document.querySelectorAll(selector)]
                    .map(e => e.dataset.nodeFullname));
                return got.size === wanted.length && wanted.every(n => got.has(n));
            }""",
            arg=[NODES, sorted(expected)],
            timeout=15_000,
        )
    except Exception:  # noqa: BLE001 - report what is drawn instead of a bare timeout
        names, _ = _flowchart(page)
        pytest.fail(
            f"after picking {name!r} in the dropdown the flowchart shows {sorted(names)}, "
            f"expected {sorted(expected)}"
        )
    label = page.locator(".pipeline-list .dropdown__label").inner_text().strip()
    assert label == name


def test_kedro_viz_shows_every_pipeline_in_a_browser(viz_site: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium: neither /usr/bin/chromium nor `chromium` on PATH")
    sync_api = pytest.importorskip("playwright.sync_api")
    expected = _expected_pipelines()
    assert set(expected) >= {"__default__", "rollouts", "vae", "encode", "mdn", "controller"}
    layers = _api(viz_site, "main")["layers"]  # [] when Kedro-Viz turned layers off

    screenshot = tmp_path / "kedro-viz.png"
    outside: list[str] = []
    with _serve(viz_site / "build") as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})

            def local_only(route: Any) -> None:  # e.g. Google Fonts: never leave the machine
                if route.request.url.startswith(url):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", local_only)
            page.goto(url, wait_until="load")
            page.wait_for_selector(NODES, timeout=30_000)
            _dismiss_hints(page)

            # The default view (`__default__`, every stage) draws every stage's elements; the
            # pipelines run after it (AFTER) show when picked in the dropdown, below.
            label = page.locator(".pipeline-list .dropdown__label").inner_text().strip()
            assert label == "__default__"
            for name, (nodes, datasets) in expected.items():
                if name not in OUTSIDE_DEFAULT:
                    _assert_drawn(page, name, nodes, datasets)
            all_nodes, all_datasets = expected["__default__"]
            assert len(_flowchart(page)[0]) == len(all_nodes | all_datasets)

            if layers:  # the layer bands are labelled with the catalog's layers
                page.wait_for_selector(LAYER_NAMES, timeout=10_000)
                shown = {t.strip() for t in page.locator(LAYER_NAMES).all_text_contents()}
                assert set(layers) <= shown, f"layers {layers}, labels {sorted(shown)}"
                assert set(layers) == _catalog_layers(viz_site)

            page.screenshot(path=str(screenshot), full_page=False)

            # A preview (pandas CSV: a table) shows in the side panel of a selected dataset.
            page.locator(f'{NODES}[data-node-fullname="rollout_stats"]').dispatch_event("click")
            page.wait_for_selector(".pipeline-metadata table", timeout=10_000)
            assert "episode" in page.locator(".pipeline-metadata table").first.inner_text()
            page.locator(".pipeline-metadata__close-button").click()

            # Each pipeline picked in the dropdown shows exactly its own elements.
            for name, (nodes, datasets) in expected.items():
                if name != "__default__":
                    _select_pipeline(page, name, nodes | datasets)
                    _assert_drawn(page, name, nodes, datasets)
        finally:
            browser.close()

    assert screenshot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    blocked = [u for u in outside if not u.startswith("https://fonts.")]
    assert not blocked, f"Kedro-Viz tried to reach {blocked}"


def test_kedro_viz_draws_the_layers(viz_site: Path) -> None:
    """Kedro-Viz orders the catalog's layers, or turns them all off when their order has a cycle
    (it then logs 'Layers visualisation is disabled as circular dependency detected')."""
    layers = _api(viz_site, "main")["layers"]
    assert layers, (
        "Kedro-Viz shows no layers: the layer order of the catalog has a cycle (e.g. vae_model in "
        "'models' feeds 'feature' latents, which feed 'model_input' sequences, which feed the "
        "'models' mdn_model)"
    )
    assert set(layers) == _catalog_layers(viz_site)
    order = ["raw", "feature", "model_input", "models", "reporting"]
    assert [layer for layer in layers if layer in order] == [o for o in order if o in layers]


def test_kedro_viz_can_draw_every_preview(viz_site: Path) -> None:
    """Every dataset preview in the build has a type the front end can draw."""
    main = _api(viz_site, "main")
    undrawable = {}
    for node in main["nodes"]:
        if node["type"] != "data":
            continue
        metadata = _api(viz_site, "nodes", node["id"])
        if metadata.get("preview") is not None:
            kind = metadata.get("preview_type")
            if kind not in RENDERABLE_PREVIEWS:
                undrawable[node["name"]] = kind
    assert not undrawable, (
        f"Kedro-Viz computes these previews but cannot draw them (preview() must be annotated "
        f"with a kedro_datasets._typing preview type): {undrawable}"
    )
