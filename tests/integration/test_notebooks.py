"""The notebooks run top to bottom (tiny settings: DRAEM_NOTEBOOK_SMOKE=1) and are committed without outputs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
import yaml
from support import REPO, SHARED

NOTEBOOKS = REPO / "notebooks"
NAMES = ("01_quickstart.ipynb", "02_compare_with_patchcore_padim.ipynb")


def execute(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results_csv: Path | None = None) -> list[dict]:
    """Run the notebook in a python3 kernel of this interpreter from notebooks/, as Jupyter does; return its outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("DRAEM_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("DRAEM_NOTEBOOK_DATA", str(tmp_path / "datasets"))
    monkeypatch.setenv("DRAEM_NOTEBOOK_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("DRAEM_BENCHMARK_CSV", str(results_csv or tmp_path / "no_results.csv"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    return [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]


def images(outputs: list[dict]) -> list:
    from PIL import Image

    return [
        Image.open(io.BytesIO(base64.b64decode(output["data"]["image/png"])))
        for output in outputs
        if "image/png" in output.get("data", {})
    ]


def text(outputs: list[dict]) -> str:
    parts = [output.get("text", "") for output in outputs]
    parts += [output.get("data", {}).get("text/plain", "") for output in outputs]
    parts += [output.get("data", {}).get("text/html", "") for output in outputs]
    return "\n".join(part if isinstance(part, str) else "".join(part) for part in parts)


@pytest.mark.slow
def test_quickstart_trains_tests_and_shows_input_reconstruction_map_and_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = execute("01_quickstart.ipynb", tmp_path, monkeypatch)
    shown = text(outputs)
    for metric in ("image_AUROC", "image_F1Score", "pixel_AUROC", "pixel_AUPR", "pixel_AUPRO"):
        assert metric in shown
    (figure,) = images(outputs)
    assert figure.width > 500
    assert figure.height > 5 * 100  # one row per kind: good and the four defects
    assert list((tmp_path / "results").rglob("*.ckpt")), "no checkpoint written"


@pytest.mark.slow
def test_comparison_runs_the_models_side_by_side_and_plots_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = execute("02_compare_with_patchcore_padim.ipynb", tmp_path, monkeypatch)
    shown = text(outputs)
    assert "running the comparison" in shown
    models = ("DraemPlugin", "Patchcore", "Padim") if (SHARED / "weights" / "hf_home").is_dir() else ("DraemPlugin",)
    for model in models:
        assert model in shown
    (chart,) = images(outputs)
    assert chart.width > 500


def test_comparison_reads_a_results_csv_when_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """anomalib benchmark's column names; nothing is trained."""
    csv = tmp_path / "results.csv"
    csv.write_text(
        "model.class_path,data.init_args.category,image_AUROC,pixel_AUROC,pixel_AUPR\n"
        "draem_plugin.DraemPlugin,bottle,0.91,0.95,0.6\n"
        "anomalib.models.Patchcore,bottle,0.99,0.98,0.7\n"
    )
    outputs = execute("02_compare_with_patchcore_padim.ipynb", tmp_path, monkeypatch, results_csv=csv)
    shown = text(outputs)
    assert f"read {csv}" in shown
    assert "Padim" not in shown
    assert not list((tmp_path / "results").rglob("*.ckpt")), "trained although a CSV was given"
    (chart,) = images(outputs)
    assert chart.width > 500


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs(name: str) -> None:
    notebook = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    first = "".join(code[0]["source"])
    assert "DRAEM_NOTEBOOK_SMOKE" in first
    assert "parameters" in code[0]["metadata"].get("tags", [])


def test_quickstart_parameters_are_the_demo_preset() -> None:
    """Outside smoke mode the quickstart trains what configs/draem_plugin_demo.yaml trains."""
    cells = json.loads((NOTEBOOKS / "01_quickstart.ipynb").read_text())["cells"]
    source = next("".join(cell["source"]) for cell in cells if "EPOCHS = " in "".join(cell["source"]))
    values: dict[str, object] = {}
    for line in source.splitlines():
        name, _, value = line.partition(" = ")
        if name in {"IMAGE_SIZE", "RECONSTRUCTIVE_WIDTH", "DISCRIMINATIVE_WIDTH", "SCORE_FILTER", "EPOCHS", "LR"}:
            values[name] = eval(value.split("#")[0], {"SMOKE": False})  # noqa: S307 (the repository's own notebook)
    config = yaml.safe_load((REPO / "configs" / "draem_plugin_demo.yaml").read_text())
    model = config["model"]["init_args"]
    assert values == {
        "IMAGE_SIZE": model["image_size"][0],
        "RECONSTRUCTIVE_WIDTH": model["reconstructive_width"],
        "DISCRIMINATIVE_WIDTH": model["discriminative_width"],
        "SCORE_FILTER": model["score_filter_size"],
        "EPOCHS": config["trainer"]["max_epochs"],
        "LR": model["lr"],
    }
