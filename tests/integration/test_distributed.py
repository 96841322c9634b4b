"""Two-process DDP on CPU (gloo) through Lightning: distinct anomalies per rank, metrics gathered over all ranks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
from pathlib import Path
from anomalib.engine import Engine
from lightning.pytorch import seed_everything
from draem_plugin import DraemPlugin, SurfaceDemo

devices, root, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
seed_everything(0)
model = DraemPlugin(reconstructive_width=4, discriminative_width=4, image_size=64, score_filter_size=7, seed=5)
first_masks = []
draw = model.augmenter.forward
def spy(image):
    batch = draw(image)
    first_masks.append(batch.mask.flatten(1).sum(1).tolist())
    return batch
model.augmenter.forward = spy
datamodule = SurfaceDemo(root=root, image_size=64, num_train=8, num_test_good=4, num_test_defect=2,
                         train_batch_size=2, eval_batch_size=3, num_workers=0)
engine = Engine(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto", max_epochs=2,
                default_root_dir=out, logger=False, enable_progress_bar=False, num_sanity_val_steps=0)
engine.fit(model, datamodule=datamodule)
metrics = engine.test(model, datamodule=datamodule)[0]
rank = engine.trainer.global_rank
(out / f"rank{rank}.json").write_text(json.dumps({
    "world_size": engine.trainer.world_size, "metrics": metrics, "masks": first_masks[:4],
    "steps": engine.trainer.global_step, "ckpt": engine.trainer.checkpoint_callback.best_model_path,
}))
"""

TEST_SCRIPT = """
import json, sys
from anomalib.engine import Engine
from draem_plugin import DraemPlugin, SurfaceDemo
ckpt, root, out = sys.argv[1:4]
datamodule = SurfaceDemo(root=root, image_size=64, num_train=8, num_test_good=4, num_test_defect=2,
                         eval_batch_size=3, num_workers=0)
engine = Engine(accelerator="cpu", devices=1, default_root_dir=out, logger=False, enable_progress_bar=False)
print(json.dumps(engine.test(DraemPlugin.load_from_checkpoint(ckpt), datamodule=datamodule)[0]))
"""


def run_script(code: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    script = cwd / "script.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


@pytest.mark.slow
def test_two_process_ddp_on_cpu_matches_single_process_in_kind(demo_root: Path, tmp_path: Path) -> None:
    ddp_dir, single_dir = tmp_path / "ddp", tmp_path / "single"
    ddp_dir.mkdir()
    single_dir.mkdir()
    ddp = run_script(SCRIPT, ["2", str(demo_root), str(ddp_dir)], ddp_dir)
    assert ddp.returncode == 0, ddp.stderr[-4000:]
    single = run_script(SCRIPT, ["1", str(demo_root), str(single_dir)], single_dir)
    assert single.returncode == 0, single.stderr[-4000:]

    rank0, rank1 = (json.loads((ddp_dir / f"rank{r}.json").read_text()) for r in (0, 1))
    alone = json.loads((single_dir / "rank0.json").read_text())
    assert rank0["world_size"] == rank1["world_size"] == 2
    assert alone["world_size"] == 1
    # The DistributedSampler halves the steps of each rank; each rank draws its own anomalies.
    assert rank0["steps"] == rank1["steps"] == alone["steps"] // 2
    assert rank0["masks"] != rank1["masks"]
    # Same metrics, all in [0, 1], reported identically by both ranks (they are gathered, not per-rank).
    assert set(rank0["metrics"]) == set(alone["metrics"]) >= {"image_AUROC", "pixel_AUROC", "pixel_AUPR"}
    assert rank0["metrics"] == rank1["metrics"]
    assert all(0.0 <= value <= 1.0 for value in rank0["metrics"].values())

    # Gathering is exact: testing the DDP checkpoint in one process gives the DDP run's threshold-free metrics.
    check = run_script(TEST_SCRIPT, [rank0["ckpt"], str(demo_root), str(tmp_path / "check")], tmp_path)
    assert check.returncode == 0, check.stderr[-4000:]
    one_process = json.loads(check.stdout.strip().splitlines()[-1])
    for name in ("image_AUROC", "pixel_AUROC", "pixel_AUPR"):
        assert one_process[name] == pytest.approx(rank0["metrics"][name], abs=1e-4), name
