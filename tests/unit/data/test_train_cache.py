"""Training images decoded once and served from the device: loader semantics, the cache, and DraemPlugin's use of it."""

from __future__ import annotations

import logging
from itertools import chain
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from anomalib.data import ImageBatch, MVTecAD
from anomalib.engine import Engine
from support import TINY
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from draem_plugin import DraemPlugin
from draem_plugin.data import train_cache
from draem_plugin.data.train_cache import (
    CachedBatchLoader,
    TrainImageCache,
    concatenate_batches,
    random_transforms,
    select_from_batch,
)


def numbered_batch(n: int) -> ImageBatch:
    """Images whose pixels hold their index, with matching paths and labels."""
    image = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 8, 8).clone()
    return ImageBatch(image=image, gt_label=torch.zeros(n, dtype=torch.bool), image_path=[f"{i}.png" for i in range(n)])


def epoch_items(loader: CachedBatchLoader, epoch: int) -> list[list[int]]:
    loader.sampler.set_epoch(epoch)
    batches = []
    for batch in loader:
        assert [int(p.removesuffix(".png")) for p in batch.image_path] == batch.image[:, 0, 0, 0].long().tolist()
        batches.append(batch.image[:, 0, 0, 0].long().tolist())
    return batches


def test_cached_loader_gives_every_image_once_per_epoch_in_a_new_order() -> None:
    loader = CachedBatchLoader(numbered_batch(11), batch_size=4, seed=3)
    first, second = epoch_items(loader, 0), epoch_items(loader, 1)
    assert len(loader) == 3
    assert [len(b) for b in first] == [len(b) for b in second] == [4, 4, 3]  # no drop_last, as anomalib's loader
    assert sorted(chain(*first)) == sorted(chain(*second)) == list(range(11))
    assert first != second
    assert epoch_items(CachedBatchLoader(numbered_batch(11), 4, seed=3), 1) == second  # seed + epoch decide


def test_cached_loader_shards_each_epoch_between_ranks() -> None:
    shards = [epoch_items(CachedBatchLoader(numbered_batch(10), 2, num_replicas=2, rank=r, seed=0), 5) for r in (0, 1)]
    items = [list(chain(*shard)) for shard in shards]
    assert len(items[0]) == len(items[1]) == 5
    assert sorted(items[0] + items[1]) == list(range(10))


def test_concatenate_and_select_keep_every_field() -> None:
    whole = concatenate_batches([select_from_batch(numbered_batch(5), i) for i in ([0, 1], [2, 3, 4])])
    assert whole.image_path == [f"{i}.png" for i in range(5)]
    assert torch.equal(whole.image, numbered_batch(5).image)
    assert whole.gt_label.shape == (5,) and whole.gt_mask is None
    picked = select_from_batch(whole, [4, 0], torch.tensor([4, 0]))
    assert picked.image_path == ["4.png", "0.png"] and picked.image[:, 0, 0, 0].tolist() == [4.0, 0.0]


def test_concatenate_refuses_a_field_missing_in_some_batches() -> None:
    labelled, unlabelled = numbered_batch(2), ImageBatch(image=torch.rand(2, 3, 8, 8), image_path=["a", "b"])
    with pytest.raises(ValueError, match="field 'gt_label' is set in some batches and None in others"):
        concatenate_batches([labelled, unlabelled])


def test_random_transforms_names_only_the_random_ones() -> None:
    fixed = v2.Compose([v2.Resize(64), v2.CenterCrop(32), v2.ToDtype(torch.float32)])
    assert random_transforms(None) == []
    assert random_transforms(fixed) == []
    mixed = v2.Compose([v2.Resize(64), v2.Compose([v2.RandomHorizontalFlip(), v2.ColorJitter(0.1)])])
    assert random_transforms(mixed) == ["RandomHorizontalFlip", "ColorJitter"]


def demo_datamodule(root: Path, **kwargs: object) -> MVTecAD:
    datamodule = MVTecAD(root=root, category="brick", train_batch_size=3, eval_batch_size=4, num_workers=0, **kwargs)
    datamodule.setup("fit")
    return datamodule


def fake_trainer(datamodule: MVTecAD) -> SimpleNamespace:
    """What the cache reads of a trainer: one CPU rank."""
    strategy = SimpleNamespace(broadcast=lambda value, src: value)
    return SimpleNamespace(datamodule=datamodule, strategy=strategy, overfit_batches=0, world_size=1, global_rank=0)


def installed(datamodule: MVTecAD, seed: int | None = 0) -> TrainImageCache:
    cache = TrainImageCache(seed)
    trainer, module = fake_trainer(datamodule), SimpleNamespace(device=torch.device("cpu"))
    cache.setup(trainer, module, "fit")
    cache.on_fit_start(trainer, module)
    return cache


def test_cache_holds_what_the_datamodule_loader_gives_and_can_be_removed(demo_root: Path) -> None:
    datamodule = demo_datamodule(demo_root)
    reference = {
        path: image
        for batch in datamodule.train_dataloader()
        for path, image in zip(batch.image_path, batch.image, strict=True)
    }
    cache = installed(datamodule)
    loader = datamodule.train_dataloader()
    assert isinstance(loader, CachedBatchLoader)
    assert loader.data.image_path == sorted(reference)  # sorted by path: the loader's shuffling does not matter
    for path, image in zip(loader.data.image_path, loader.data.image, strict=True):
        assert torch.equal(image, reference[path]), path
    assert datamodule.train_dataloader().data is loader.data  # a reload does not decode again
    cache.teardown(fake_trainer(datamodule), None, "fit")
    assert isinstance(datamodule.train_dataloader(), DataLoader)


def test_the_shuffling_seed_is_drawn_from_the_global_generator_and_saved() -> None:
    torch.manual_seed(7)
    first = TrainImageCache()
    first.setup(None, None, "fit")
    torch.manual_seed(7)
    second = TrainImageCache()
    second.setup(None, None, "fit")
    assert first.seed == second.seed is not None
    resumed = TrainImageCache(seed=1)
    resumed.load_state_dict(first.state_dict())
    assert resumed.seed == first.seed


def test_cache_too_large_for_memory_warns_and_returns_the_datamodule_loader(
    demo_root: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(train_cache, "MEMORY_FRACTION", 1e-9)
    datamodule = demo_datamodule(demo_root)
    installed(datamodule)
    with caplog.at_level(logging.WARNING):
        loader = datamodule.train_dataloader()
    assert isinstance(loader, DataLoader)
    assert "training images are not cached on cpu" in caplog.text and "cache_train_images=False" in caplog.text
    assert "train_dataloader" not in vars(datamodule)  # the datamodule's own method again


class CountingReads:
    """Counts the images the training dataset decodes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, dataset_type: type) -> None:
        self.count = 0
        original = dataset_type.__getitem__

        def counted(dataset: object, index: int) -> object:
            self.count += 1
            return original(dataset, index)

        monkeypatch.setattr(dataset_type, "__getitem__", counted)


@pytest.mark.parametrize(
    ("cache", "augmentations", "reads_per_epoch"), [(True, None, 0), (False, None, 1), (True, "flip", 1)]
)
def test_fit_decodes_the_training_images_once_when_cached(
    demo_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    cache: bool,
    augmentations: str | None,
    reads_per_epoch: int,
) -> None:
    train_augmentations = v2.RandomHorizontalFlip() if augmentations else None
    datamodule = MVTecAD(
        root=demo_root,
        category="brick",
        train_batch_size=3,
        eval_batch_size=4,
        num_workers=0,
        train_augmentations=train_augmentations,
    )
    datamodule.setup("fit")
    reads = CountingReads(monkeypatch, type(datamodule.train_data))
    engine = Engine(
        accelerator="cpu",
        max_epochs=3,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    model = DraemPlugin(**TINY, cache_train_images=cache, evaluator=False, visualizer=False, seed=0)
    with caplog.at_level(logging.INFO):
        engine.fit(model, datamodule=datamodule)
    images = len(datamodule.train_data)
    assert reads.count == images + 2 * reads_per_epoch * images  # one pass, then per epoch only without the cache
    assert engine.trainer.global_step == 3 * 3  # 8 images in batches of 3: 3, 3, 2 per epoch either way
    assert "train_dataloader" not in vars(datamodule)
    if augmentations:
        assert "train_augmentations hold random transforms (RandomHorizontalFlip)" in caplog.text
    elif cache:
        assert "Decoded the 8 training images once" in caplog.text
