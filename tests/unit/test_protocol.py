"""The original evaluation protocol: masks as test_DRAEM.py reads them, metrics as sklearn computes them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from anomalib.data import MVTecAD
from anomalib.engine import Engine
from PIL import Image
from sklearn.metrics import average_precision_score, roc_auc_score
from support import TINY

from draem_plugin import DraemPlugin
from draem_plugin.protocol import PAPER_RESULTS, OriginalProtocol, original_mask


def test_only_mask_pixels_that_stay_255_after_the_bilinear_resize_count(tmp_path: Path) -> None:
    mask = np.zeros((4, 6), dtype=np.uint8)
    mask[:, :2] = 255  # columns 0-1: halved to column 0 exactly; columns 2-3 mix 0 and 255 and do not count
    mask[:, 3] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    assert original_mask(str(tmp_path / "mask.png"), (2, 3)).tolist() == [[1, 0, 0], [1, 0, 0]]
    assert original_mask(None, (2, 3)).tolist() == [[0, 0, 0], [0, 0, 0]]
    assert original_mask("", (1, 1)).dtype == np.uint8
    (tmp_path / "broken.png").write_bytes(b"nothing")
    with pytest.raises(ValueError, match="cannot read the mask"):
        original_mask(str(tmp_path / "broken.png"), (2, 2))


def test_the_metrics_equal_sklearns_pooled_over_all_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    masks = [np.zeros((8, 8), dtype=np.uint8) for _ in range(4)]
    paths = ["", "", str(tmp_path / "m2.png"), str(tmp_path / "m3.png")]
    for index in (2, 3):
        masks[index][2:5, 3:7] = 255
        Image.fromarray(masks[index]).save(paths[index])
    maps = torch.from_numpy(rng.random((4, 8, 8), dtype=np.float32))
    scores = torch.tensor([0.1, 0.5, 0.4, 0.9])
    labels = torch.tensor([0, 0, 1, 1])
    logged: dict[str, float] = {}
    module = SimpleNamespace(log=lambda name, value, **kwargs: logged.__setitem__(name, value))
    protocol = OriginalProtocol()
    protocol.on_test_epoch_start(None, module)
    for part in (slice(0, 2), slice(2, 4)):
        outputs = SimpleNamespace(
            pred_score=scores[part], gt_label=labels[part], anomaly_map=maps[part], mask_path=paths[part]
        )
        protocol.on_test_batch_end(None, module, outputs, None, 0)
    protocol.on_test_epoch_end(None, module)
    truth = (np.stack(masks) // 255).ravel()
    assert logged["original_image_AUROC"] == pytest.approx(roc_auc_score(labels, scores))
    assert logged["original_image_AP"] == pytest.approx(average_precision_score(labels, scores))
    assert logged["original_pixel_AUROC"] == pytest.approx(roc_auc_score(truth, maps.numpy().ravel()), abs=1e-6)
    assert logged["original_pixel_AP"] == pytest.approx(average_precision_score(truth, maps.numpy().ravel()), abs=1e-6)


def test_anomalib_test_reports_both_protocols_from_raw_outputs(demo_root: Path, tmp_path: Path) -> None:
    model = DraemPlugin(**TINY, seed=0, visualizer=False, original_protocol=True)
    datamodule = MVTecAD(root=demo_root, category="brick", eval_batch_size=8, num_workers=0)
    (results,) = Engine(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False).test(
        model, datamodule=datamodule, verbose=False
    )
    assert {
        "image_AUROC",
        "pixel_AUROC",
        "original_image_AUROC",
        "original_image_AP",
        "original_pixel_AUROC",
        "original_pixel_AP",
    } <= results.keys()
    scores, labels = [], []
    model.eval()
    for batch in datamodule.test_dataloader():
        with torch.no_grad():
            scores += model.model(model.pre_processor.transform(batch.image)).pred_score.tolist()
        labels += batch.gt_label.int().tolist()
    assert results["original_image_AUROC"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-6)


def test_the_papers_table_holds_the_15_categories() -> None:
    assert len(PAPER_RESULTS) == 15 and PAPER_RESULTS["bottle"] == (99.2, 99.1, 86.5)
    means = np.mean(list(PAPER_RESULTS.values()), axis=0)
    assert means == pytest.approx((98.0, 97.3, 68.4), abs=0.06)  # the paper's averages
