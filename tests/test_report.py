"""The report: one self-contained HTML page with the world model's pictures and videos; the image
files behind it (``ImageDataset``); the wall times (``StageTimesHook``); the picture helpers."""

from __future__ import annotations

import base64
import importlib
import io
import json
import re
import time
from pathlib import Path

import imageio.v3 as iio
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from kedro.io.core import DatasetError
from matplotlib.figure import Figure
from PIL import Image

from tests.conftest import (
    CONTROLLER_MODEL,
    MDN_MODEL,
    PIPELINES,
    REPORT,
    VAE_MODEL,
    load_checkpoint,
    run_pipeline,
)
from tests.pipelines.test_evaluate import FIGURES, INPUTS, STAGE_TIMES, VIDEOS
from world_models_kedro.datasets.image_dataset import ImageDataset
from world_models_kedro.models.mdnrnn import MDNRNN
from world_models_kedro.models.vae import ConvVAE
from world_models_kedro.pipeline_registry import register_pipelines
from world_models_kedro.reporting.figures import to_png
from world_models_kedro.reporting.gallery import (
    attribute_vector,
    decode,
    encode_mu,
    open_loop_dream,
    pixel_attribute,
    upscale,
)
from world_models_kedro.reporting.html import Page

VIDEO_SCALE, VIDEO_STEPS, FPS = 2, 20, 25  # conf/base report.video_scale, conf/test, catalog
IMAGE = re.compile(r'<img alt="([^"]*)" title="[^"]*" src="data:(image/\w+);base64,([^"]+)">')
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PICTURES = {  # alt text in the report -> the file it inlines
    "reconstructions": FIGURES["reconstructions"],
    "samples from the prior": FIGURES["prior_samples"],
    "latent interpolation": FIGURES["interpolation"],
    "latent arithmetic": FIGURES["arithmetic"],
    "real vs dreamed rollout": FIGURES["dream_strip"],
    "the trained agent in the real environment": VIDEOS["agent_video"],
    "the trained agent inside M&#x27;s dream": VIDEOS["dream_video"],
}
DRAWN_IN_THE_REPORT = ["return histogram", "VAE training curve", "MDN-RNN training curve"]


def images(html: str) -> dict[str, tuple[str, bytes]]:
    return {alt: (mime, base64.b64decode(data)) for alt, mime, data in IMAGE.findall(html)}


def n_params(checkpoint: dict) -> int:
    return int(sum(t.numel() for t in checkpoint["state_dict"].values()))


# ------------------------------------------------------------------ the page
@pytest.mark.slow
def test_the_report_is_one_self_contained_page(built_project: Path) -> None:
    html = (built_project / REPORT).read_text()
    assert html.lstrip().startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert 'src="http' not in html and "<link" not in html and "<script" not in html
    assert "url(" not in html  # nor in the style sheet
    assert re.findall(r"""\bsrc\s*=\s*["']([^"']{0,5})""", html) == ["data:"] * 11
    # one link: the GAN's page, written beside the report by the gan stage
    assert re.findall(r"""\bhref\s*=\s*["']([^"']*)""", html) == ["gan_report.html"]

    inlined = images(html)
    assert len(inlined) == 11 == html.count("<img ")
    assert sum(mime == "image/png" for mime, _ in inlined.values()) == 9
    assert [alt for alt, (mime, _) in inlined.items() if mime == "image/gif"] == [
        "the trained agent in the real environment",
        "the trained agent inside M&#x27;s dream",
    ]
    for alt, path in PICTURES.items():  # the very files the evaluate pipeline saved
        assert inlined[alt][1] == (built_project / path).read_bytes(), alt
    for alt in [*DRAWN_IN_THE_REPORT, "CMA-ES curve"]:
        assert inlined[alt][1].startswith(PNG_SIGNATURE), alt
    for mime, data in inlined.values():
        assert data.startswith(PNG_SIGNATURE if mime == "image/png" else b"GIF89a")


@pytest.mark.slow
def test_the_report_has_every_section(built_project: Path) -> None:
    html = (built_project / REPORT).read_text()
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert headings == [
        "Scores",
        "The agent at work",
        "V: what the VAE sees and imagines",
        "M: the MDN-RNN and its dream",
        "C: the controller (CMA-ES)",
        "Models, wall times and configuration",
    ]
    # the pictures come in their sections, in this order
    order = [alt for alt, *_ in IMAGE.findall(html)]
    assert order == [
        "return histogram",
        "the trained agent in the real environment",
        "the trained agent inside M&#x27;s dream",
        "reconstructions",
        "samples from the prior",
        "latent interpolation",
        "latent arithmetic",
        "VAE training curve",
        "real vs dreamed rollout",
        "MDN-RNN training curve",
        "CMA-ES curve",
    ]
    # scores: C's training score beside the real-environment scores of the agent and the baseline
    assert "<td>real (C's training score)</td>" in html
    assert html.count("<td>real environment</td>") == 2

    # models: V, M and C with their parameter counts
    for name, path in (
        ("V (ConvVAE)", VAE_MODEL),
        ("M (MDN-RNN)", MDN_MODEL),
        ("C (linear)", CONTROLLER_MODEL),
    ):
        count = n_params(load_checkpoint(built_project / path))
        assert re.search(rf"<td>{re.escape(name)}</td>\s*<td>{count}</td>", html), (name, count)
    # wall times: every node of stage_times.json but build_report (timed once the page is saved)
    times = json.loads((built_project / STAGE_TIMES).read_text())
    for node in set(times) - {"build_report"}:
        assert re.search(rf"<td>{node}</td>\s*<td>[0-9.]+</td>", html), node
    assert "<td>build_report</td>" not in html
    # configuration: dotted names and JSON values
    assert re.search(r"<td>controller.population</td>\s*<td>4</td>", html)
    assert re.search(r'<td>env.action_squash</td>\s*<td>\["linear", "linear", "clip"\]</td>', html)
    assert re.search(r"<td>vae.model.z_dim</td>\s*<td>8</td>", html)


# ------------------------------------------------------------------ the files behind it
@pytest.mark.slow
def test_the_videos_are_animated_gifs(built_project: Path) -> None:
    for name, path in VIDEOS.items():
        frames = iio.imread(built_project / path, index=None)
        assert frames.ndim == 4 and frames.shape[1:3] == (64 * VIDEO_SCALE, 64 * VIDEO_SCALE), name
        assert 2 <= len(frames) <= VIDEO_STEPS + 1, (name, len(frames))
        with Image.open(built_project / path) as image:
            assert image.format == "GIF" and image.n_frames == len(frames)
            assert image.info["duration"] == 1000 / FPS
    real = iio.imread(built_project / VIDEOS["agent_video"], index=None)
    assert len(real) == VIDEO_STEPS + 1  # conf/test episodes last 40 steps: the video is full
    assert not all(np.array_equal(real[0], frame) for frame in real[1:])  # it moves


@pytest.mark.slow
def test_the_figures_are_pngs(built_project: Path) -> None:
    for name, path in FIGURES.items():
        data = (built_project / path).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and min(image.size) > 64, (name, image.size)


@pytest.mark.slow
def test_stage_times_lists_every_node_that_ran(built_project: Path) -> None:
    times = json.loads((built_project / STAGE_TIMES).read_text())
    ran = {
        node.name
        for name in PIPELINES
        for node in importlib.import_module(f"world_models_kedro.pipelines.{name}")
        .create_pipeline()
        .nodes
    }
    assert set(times) == ran
    for node, entry in times.items():
        assert sorted(entry) == ["finished", "seconds"], node
        assert isinstance(entry["seconds"], int | float) and entry["seconds"] >= 0, node
        time.strptime(entry["finished"], "%Y-%m-%d %H:%M:%S")


@pytest.mark.slow
def test_a_rerun_updates_only_its_own_nodes(project_from, built_project: Path) -> None:
    project = project_from(built_project, only=[*INPUTS, STAGE_TIMES])
    before = json.loads((project / STAGE_TIMES).read_text())
    time.sleep(1.0)  # "finished" has a resolution of one second
    run_pipeline(project, ["evaluate"])
    after = json.loads((project / STAGE_TIMES).read_text())
    evaluate = {node.name for node in register_pipelines()["evaluate"].nodes}
    assert set(after) == set(before)
    for node in after:
        if node in evaluate:
            assert after[node]["finished"] > before[node]["finished"], node
        else:
            assert after[node] == before[node], node
    # the report shows the times of the run it belongs to (build_report runs last, without its own)
    assert f"<td>{after['evaluate_agent']['finished']}</td>" in (project / REPORT).read_text()


def test_a_damaged_stage_times_file_does_not_block_a_run(project: Path) -> None:
    """A kill while it was written used to leave a file that stopped every later run."""
    path = project / STAGE_TIMES
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"collect_rollouts": {"seconds": 1.2, "fin')
    run_pipeline(project, ["rollouts"])
    times = json.loads(path.read_text())
    assert set(times) == {node.name for node in register_pipelines()["rollouts"].nodes}
    assert not list(path.parent.glob(".stage_times.json.*"))  # no temporary left behind


def test_the_json_dataset_writes_kedros_bytes_atomically(tmp_path: Path, monkeypatch) -> None:
    from kedro_datasets.json import JSONDataset as KedroJSONDataset

    from world_models_kedro.datasets import JSONDataset
    from world_models_kedro.storage import atomic

    data = {"b": [1, 2.5], "a": {"x": None}}
    ours, kedros = tmp_path / "ours.json", tmp_path / "kedros.json"
    args = {"indent": 2, "sort_keys": True}
    JSONDataset(str(ours), save_args=args).save(data)
    KedroJSONDataset(filepath=str(kedros), save_args=args).save(data)
    assert ours.read_bytes() == kedros.read_bytes()
    assert JSONDataset(str(ours)).load() == data

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        JSONDataset(str(ours)).save({"new": 1})
    assert json.loads(ours.read_text()) == data and sorted(p.name for p in tmp_path.iterdir()) == [
        "kedros.json",
        "ours.json",
    ]
    ours.write_text("{")
    with pytest.raises(DatasetError, match="ours.json' is not valid JSON"):
        JSONDataset(str(ours)).load()


# ------------------------------------------------------------------ ImageDataset
def test_image_dataset_round_trips(tmp_path: Path) -> None:
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0])
    ImageDataset(str(tmp_path / "figure.png")).save(figure)
    assert not plt.fignum_exists(figure.number)  # closed once saved
    with Image.open(tmp_path / "figure.png") as image:
        assert image.format == "PNG"

    frame = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    pil = ImageDataset(str(tmp_path / "pil.png"))
    pil.save(Image.fromarray(frame))
    np.testing.assert_array_equal(iio.imread(io.BytesIO(pil.load())), frame)
    array = ImageDataset(str(tmp_path / "array.png"))
    array.save(frame)
    assert array.load() == pil.load()

    frames = np.zeros((5, 16, 24, 3), np.uint8)
    for t in range(5):  # flat colours: a GIF's palette keeps them exactly
        frames[t, :, : 4 * (t + 1)] = [255, 0, 0]
    gif = ImageDataset(str(tmp_path / "video.gif"), fps=10)
    assert not gif.exists()
    gif.save(frames)
    assert gif.exists() and gif.load().startswith(b"GIF89a")
    np.testing.assert_array_equal(iio.imread(tmp_path / "video.gif", index=None)[..., :3], frames)
    with Image.open(tmp_path / "video.gif") as image:
        assert image.n_frames == 5 and image.info["duration"] == 100

    raw = ImageDataset(str(tmp_path / "copy.gif"))
    raw.save(gif.load())
    assert raw.load() == gif.load()  # bytes are written as they are
    assert base64.b64decode(raw.preview()) == gif.load()
    assert raw._describe() == {"filepath": str(tmp_path / "copy.gif"), "fps": 20.0}


def test_image_dataset_encodes_figures_as_the_report_does(tmp_path: Path) -> None:
    def figure() -> Figure:
        fig = Figure(figsize=(3, 2))
        fig.subplots().plot([0, 1, 2], [2, 0, 1])
        return fig

    ImageDataset(str(tmp_path / "figure.png")).save(figure())
    assert (tmp_path / "figure.png").read_bytes() == to_png(figure())  # one PNG encoder


def test_image_dataset_writes_atomically(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "figure.png"
    dataset = ImageDataset(str(target))
    dataset.save(np.zeros((4, 4, 3), np.uint8))
    before = target.read_bytes()

    def failing_replace(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("world_models_kedro.storage.atomic.os.replace", failing_replace)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(np.full((4, 4, 3), 255, np.uint8))
    assert target.read_bytes() == before  # the old picture, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]  # no temporary file left


@pytest.mark.parametrize("name", ["picture.jpg", "picture", "video.mp4", "figure.PNG"])
def test_image_dataset_refuses_other_suffixes(tmp_path: Path, name: str) -> None:
    with pytest.raises(DatasetError, match=r"\.png or \.gif"):
        ImageDataset(str(tmp_path / name))


def test_image_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        ImageDataset(str(tmp_path / "missing.png")).load()
    with pytest.raises(DatasetError, match="uint8"):
        ImageDataset(str(tmp_path / "float.png")).save(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(DatasetError, match=r"frames \(T, H, W, 3\)"):
        ImageDataset(str(tmp_path / "flat.gif")).save(np.zeros((4, 4, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ the page builder
def test_page_escapes_text_and_inlines_images() -> None:
    page = Page("V & M <tiny>")
    page.heading("a <b>")
    page.paragraph("x < y", "note")
    png, gif = b"\x89PNG fake", b"GIF89a fake"
    page.image(png, 'a "quoted" alt')
    page.image(gif, "video", "image/gif")
    html = page.render()
    assert "<title>V &amp; M &lt;tiny&gt;</title>" in html and "<h2>a &lt;b&gt;</h2>" in html
    assert '<p class="note">x &lt; y</p>' in html
    assert 'alt="a &quot;quoted&quot; alt"' in html
    assert f"data:image/png;base64,{base64.b64encode(png).decode()}" in html
    assert f"data:image/gif;base64,{base64.b64encode(gif).decode()}" in html


# ------------------------------------------------------------------ picture helpers
Z_DIM = 4


@pytest.fixture
def tiny_models() -> tuple[ConvVAE, MDNRNN]:
    torch.manual_seed(0)
    vae = ConvVAE(Z_DIM, (4, 4, 4, 4)).eval()
    with torch.no_grad():  # an untrained decoder paints every z the same grey: make z show
        vae.fc_decode.weight.mul_(50.0)
    return vae, MDNRNN(Z_DIM, 2, 8, 3).eval()


def frames_with_grass(n: int, grass: list[int]) -> np.ndarray:
    frames = np.full((n, 64, 64, 3), 100, np.uint8)  # grey road
    frames[grass, 44:58, 24:40] = [60, 200, 60]  # green under the car
    return frames


def test_pixel_attribute() -> None:
    frames = frames_with_grass(5, [1, 3])
    region, green_minus_red = (44, 58, 24, 40), (-1.0, 1.0, 0.0)
    assert pixel_attribute(frames, region, green_minus_red, 40.0).tolist() == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert not pixel_attribute(frames, region, green_minus_red, 140.0).any()  # strictly above
    assert pixel_attribute(frames, (0, 10, 0, 10), (1.0, 0.0, 0.0), 99.0).all()  # the grey corner
    half = frames.copy()
    half[1, 44:51] = 100  # grass on half the region: half the score
    assert not pixel_attribute(half[1:2], region, green_minus_red, 70.0)[0]
    assert pixel_attribute(half[1:2], region, green_minus_red, 69.0)[0]


def test_attribute_vector(tiny_models) -> None:
    vae, _ = tiny_models
    frames = frames_with_grass(6, [0, 2, 3])
    has = np.array([True, False, True, True, False, False])
    vector = attribute_vector(vae, frames, has)
    z = encode_mu(vae, frames)
    assert vector.shape == (Z_DIM,)
    torch.testing.assert_close(vector, z[[0, 2, 3]].mean(0) - z[[1, 4, 5]].mean(0))
    assert vector.abs().sum() > 0


def test_open_loop_dream(tiny_models) -> None:
    vae, mdn = tiny_models
    first = frames_with_grass(1, [0])[0]
    actions = np.random.default_rng(0).uniform(-1, 1, (7, 2)).astype(np.float32)
    dreamed = open_loop_dream(vae, mdn, first, actions, 1.0, seed=3)
    assert dreamed.shape == (len(actions) + 1, 64, 64, 3) and dreamed.dtype == np.uint8
    np.testing.assert_array_equal(dreamed[0], decode(vae, encode_mu(vae, first[None]))[0])
    np.testing.assert_array_equal(dreamed, open_loop_dream(vae, mdn, first, actions, 1.0, seed=3))
    assert not np.array_equal(dreamed, open_loop_dream(vae, mdn, first, actions, 1.0, seed=4))
    # tau 0: the most likely future, whatever the seed
    cold = open_loop_dream(vae, mdn, first, actions, 0.0, seed=3)
    np.testing.assert_array_equal(cold, open_loop_dream(vae, mdn, first, actions, 0.0, seed=4))
    assert len(open_loop_dream(vae, mdn, first, actions[:0], 1.0, seed=0)) == 1


def test_upscale() -> None:
    frames = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3)
    big = upscale(frames, 3)
    assert big.shape == (2, 6, 9, 3)
    np.testing.assert_array_equal(big[:, ::3, ::3], frames)
    np.testing.assert_array_equal(big[:, 2::3, 1::3], frames)
