"""The exploration notebook (``notebooks/explore_world_model.ipynb``).

- It is committed clean: no outputs, no execution counts (fast).
- It runs top to bottom against test-scale artifacts, in a real Jupyter kernel, through Kedro's
  IPython extension with ``KEDRO_ENV=test``, and draws its figures (slow).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, TEST_ENV

NOTEBOOK = PROJECT_ROOT / "notebooks" / "explore_world_model.ipynb"
CELL_TIMEOUT_S = 120


def test_notebook_is_committed_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the notebook has no code cells"
    assert code[0].source.strip() == "%load_ext kedro.ipython", (
        "the first code cell must load Kedro's IPython extension"
    )
    dirty = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"cells {dirty} of {NOTEBOOK.name} hold outputs or execution counts: clear them before "
        "committing (jupyter nbconvert --clear-output --inplace notebooks/explore_world_model.ipynb)"
    )


@pytest.mark.slow
def test_notebook_runs_against_test_artifacts(
    built_project: Path,
    project_from: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    project = project_from(built_project)  # a working copy of every test artifact (cwd)
    notebooks = project / "notebooks"
    notebooks.mkdir()
    shutil.copy2(NOTEBOOK, notebooks / NOTEBOOK.name)
    notebook = nbformat.read(notebooks / NOTEBOOK.name, as_version=4)

    # The kernel inherits this environment: Kedro's test configuration, no telemetry, one thread.
    monkeypatch.setenv("KEDRO_ENV", TEST_ENV)
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))

    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",  # "python" in its kernelspec resolves to this interpreter
        # As Jupyter does: the kernel starts in the notebook's folder, and Kedro's extension
        # finds the project in its parent.
        resources={"metadata": {"path": str(notebooks)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:  # names the cell and the traceback
        pytest.fail(f"the notebook failed:\n{exc}")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    text = "".join(
        o.get("text", "") for cell in code for o in cell.outputs if o.output_type == "stream"
    )
    assert f"Kedro environment: {TEST_ENV}" in text
    assert str(project.resolve()) in text  # the project copy, not the repository

    figures = {
        cell.id: sum("image/png" in o.get("data", {}) for o in cell.outputs)
        for cell in code
        if any("image/png" in o.get("data", {}) for o in cell.outputs)
    }
    # reconstructions, prior samples, interpolation, arithmetic, PCA, open-loop and C's dream;
    # the GAN's samples beside V's and its interpolation
    expected = {
        "recon",
        "prior",
        "interp",
        "attr",
        "pca",
        "open-loop",
        "dream",
        "gan-samples",
        "gan-interp",
    }
    assert expected <= set(figures), f"figures only from cells {sorted(figures)}"
    assert all(count == 1 for count in figures.values()), f"figures drawn twice: {figures}"
