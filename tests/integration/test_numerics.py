"""Numerics and robustness end to end: NaN / inf, interrupted runs, determinism, flat memory (docs/bad_inputs.md)."""

from __future__ import annotations

import gc
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from anomalib.callbacks import ModelCheckpoint
from lightning.pytorch import Callback, Trainer, seed_everything
from support import TINY, folder_datamodule, make_category, tiny_engine, tiny_model

from draem_plugin import DraemPlugin
from draem_plugin.callbacks import finite_loss

#: RSS growth allowed between training step 20 and step 150 (measured: about 2 MB on CPU, Python 3.11, torch 2.x).
MEMORY_GROWTH_BOUND_MB = 25
#: Live tensors that may appear between those two steps (measured: 0).
TENSOR_GROWTH_BOUND = 10


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def category(tmp_path: Path) -> Path:
    """8 training images: 4 steps per epoch at batch size 2."""
    return make_category(tmp_path / "data", train=8, good=1, bad=1)


def checkpointer(folder: Path, **kwargs: object) -> ModelCheckpoint:
    """Keep every checkpoint, named by step, plus ``last.ckpt``."""
    return ModelCheckpoint(dirpath=folder, filename="{step}", save_top_k=-1, save_last=True, **kwargs)


def assert_loadable_and_finite(folder: Path) -> dict[str, int]:
    """Load every checkpoint in ``folder`` as anomalib does (weights_only); its global step by file name."""
    steps = {}
    for path in sorted(folder.glob("*.ckpt")):
        restored = DraemPlugin.load_from_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in restored.model.state_dict().values() if t.is_floating_point())
        steps[path.name] = torch.load(path, map_location="cpu", weights_only=True)["global_step"]
    return steps


class _Poison(Callback):
    """Writes ``value`` into the training images at ``step`` (NaN or inf reaching the networks and the loss)."""

    def __init__(self, value: float, step: int) -> None:
        self.value, self.step = value, step

    def on_train_batch_start(self, trainer: Trainer, pl_module: object, batch: object, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            batch.image[:, :, :8, :8] = self.value


# ------------------------------------------------------------------------------------------------ NaN / inf
@pytest.mark.parametrize(("precision", "value"), [("32-true", math.nan), ("bf16-mixed", math.inf)])
def test_non_finite_loss_stops_training_before_a_nan_checkpoint(
    tmp_path: Path, category: Path, precision: str, value: float
) -> None:
    model = tiny_model()
    engine = tiny_engine(
        tmp_path / "run",
        max_epochs=3,
        precision=precision,
        limit_val_batches=0,
        callbacks=[_Poison(value, step=3), checkpointer(tmp_path / "ckpt", every_n_train_steps=1)],
    )
    with pytest.raises(FloatingPointError) as info:
        engine.fit(model, datamodule=folder_datamodule(category))
    message = str(info.value)
    assert "The training loss is NaN or inf at epoch 0, step 3; not finite: loss, l2" in message
    assert f"now {precision}" in message and "lower lr (set to 0.0001)" in message
    # The steps before the poisoned one are saved and load; the poisoned step never reached the optimiser.
    assert assert_loadable_and_finite(tmp_path / "ckpt") == {
        "last.ckpt": 3,
        "step=1.ckpt": 1,
        "step=2.ckpt": 2,
        "step=3.ckpt": 3,
    }


def test_deferred_check_still_refuses_to_save_nan_weights(
    tmp_path: Path, category: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accelerator path (a host check every N steps) simulated on the CPU with N = 4."""
    monkeypatch.setitem(finite_loss.FINITE_CHECK_INTERVAL, "cpu", 4)
    model = tiny_model()
    engine = tiny_engine(
        tmp_path / "run",
        max_epochs=5,
        limit_val_batches=0,
        callbacks=[_Poison(math.nan, step=5), checkpointer(tmp_path / "ckpt", every_n_train_steps=3)],
    )
    expected = r"NaN or inf within the 2 steps up to epoch 1, step 6; not finite: loss \(1x\), l2 \(1x\)"
    with pytest.raises(FloatingPointError, match=expected):
        engine.fit(model, datamodule=folder_datamodule(category))
    # The optimiser has applied the NaN step, so the save at step 6 is refused; step 3 is the last checkpoint.
    assert not all(torch.isfinite(p).all() for p in model.model.parameters())
    assert assert_loadable_and_finite(tmp_path / "ckpt") == {"last.ckpt": 3, "step=3.ckpt": 3}


class _BreakWeights(Callback):
    """Turns one weight into NaN after ``step`` without a NaN loss (e.g. an overflowing gradient)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: Trainer, pl_module: DraemPlugin, *args: object) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.model.discriminative_subnetwork.head.bias[0] = math.nan


def test_nan_weights_are_never_written(tmp_path: Path, category: Path) -> None:
    engine = tiny_engine(
        tmp_path / "run",
        max_epochs=2,
        limit_val_batches=0,
        callbacks=[_BreakWeights(step=2), checkpointer(tmp_path / "ckpt", every_n_train_steps=1)],
    )
    with pytest.raises(FloatingPointError, match=r"weights hold NaN or inf \(discriminative_subnetwork\.head\.bias\)"):
        engine.fit(tiny_model(), datamodule=folder_datamodule(category))
    assert assert_loadable_and_finite(tmp_path / "ckpt") == {"last.ckpt": 1, "step=1.ckpt": 1}


# ------------------------------------------------------------------------------------------------ interruptions
class _Interrupt(Callback):
    """Presses Ctrl+C in the middle of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer: Trainer, pl_module: object, batch: object, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            raise KeyboardInterrupt


def test_keyboard_interrupt_leaves_the_last_checkpoint_readable(tmp_path: Path, category: Path) -> None:
    engine = tiny_engine(
        tmp_path / "run",
        max_epochs=5,
        limit_val_batches=0,
        callbacks=[_Interrupt(epoch=2), checkpointer(tmp_path / "ckpt", every_n_epochs=1)],
    )
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown ends with sys.exit(1)
            engine.fit(tiny_model(), datamodule=folder_datamodule(category))
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores further Ctrl+C
    assert assert_loadable_and_finite(tmp_path / "ckpt") == {"last.ckpt": 8, "step=4.ckpt": 4, "step=8.ckpt": 8}


KILLED_RUN = """
import sys
import torch
torch.set_num_threads(1)
from anomalib.callbacks import ModelCheckpoint
from anomalib.data import Folder
from anomalib.engine import Engine
from draem_plugin import DraemPlugin
root, out = sys.argv[1], sys.argv[2]
datamodule = Folder(
    name="part", root=root, normal_dir="train/good", abnormal_dir="test/bad", normal_test_dir="test/good",
    mask_dir="ground_truth/bad", train_batch_size=2, num_workers=0,
)
checkpoints = ModelCheckpoint(dirpath=out, filename="{{step}}", every_n_train_steps=1, save_top_k=-1, save_last=True)
engine = Engine(
    accelerator="cpu", default_root_dir=out, max_epochs=100000, logger=False, enable_progress_bar=False,
    enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0, callbacks=[checkpoints],
)
engine.fit(DraemPlugin(**{tiny}, seed=0), datamodule=datamodule)
"""


def test_killed_training_process_leaves_readable_checkpoints(tmp_path: Path, category: Path) -> None:
    """kill -9 while a checkpoint is written every step: every *.ckpt left behind loads.

    Lightning serialises to memory, writes a temporary file in $TMPDIR and moves it into place; the move is an
    atomic rename when $TMPDIR is on the checkpoint's filesystem, as here.
    """
    script = tmp_path / "train.py"
    script.write_text(KILLED_RUN.format(tiny=TINY))
    out, temp = tmp_path / "ckpt", tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1", "TMPDIR": str(temp)}
    process = subprocess.Popen(
        [sys.executable, str(script), str(category), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 300
        while len(list(out.glob("step=*.ckpt"))) < 6:
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoints after 300 s"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    steps = assert_loadable_and_finite(out)
    assert "last.ckpt" in steps and len(steps) >= 7


# ------------------------------------------------------------------------------------------------ determinism
def _train(root: Path, category: Path, seed: int) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Augmented training images and final weights of 4 steps from ``seed``."""
    seed_everything(seed)
    model = tiny_model(seed=seed)
    augmented: list[torch.Tensor] = []
    model.augmenter.register_forward_hook(lambda _m, _i, out: augmented.extend(t.clone() for t in out))
    tiny_engine(root, max_steps=4, limit_val_batches=0).fit(model, datamodule=folder_datamodule(category))
    return augmented, {name: t.clone() for name, t in model.model.state_dict().items()}


def test_same_seed_same_augmentations_and_weights_on_cpu(tmp_path: Path, category: Path) -> None:
    images, weights = _train(tmp_path / "a", category, seed=11)
    again_images, again_weights = _train(tmp_path / "b", category, seed=11)
    other_images, other_weights = _train(tmp_path / "c", category, seed=12)
    assert len(images) == len(again_images) == 16  # 4 steps x (image, mask, label, clean)
    assert all(torch.equal(a, b) for a, b in zip(images, again_images, strict=True))
    assert all(torch.equal(weights[name], again_weights[name]) for name in weights)  # bit-identical
    assert not all(torch.equal(a, b) for a, b in zip(images, other_images, strict=True))
    assert not all(torch.equal(weights[name], other_weights[name]) for name in weights)


# ------------------------------------------------------------------------------------------------ memory
def _rss_mb() -> float:
    """Resident set size of this process in MiB."""
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _MemoryProbe(Callback):
    """RSS and the number of live tensors after a full garbage collection, at two training steps."""

    def __init__(self, steps: tuple[int, int]) -> None:
        self.steps = steps
        self.rss: dict[int, float] = {}
        self.tensors: dict[int, int] = {}

    def on_train_batch_end(self, trainer: Trainer, *args: object) -> None:
        if trainer.global_step in self.steps:
            gc.collect()
            self.rss[trainer.global_step] = _rss_mb()
            self.tensors[trainer.global_step] = sum(isinstance(o, torch.Tensor) for o in gc.get_objects())


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads the RSS from /proc (Linux)")
def test_memory_stays_flat_over_150_training_steps(tmp_path: Path) -> None:
    """No tensor (or graph) is kept across steps: RSS and live tensors stay flat after warm-up."""
    category = make_category(tmp_path / "data", train=16, good=1, bad=1)
    warm, end = 20, 150
    probe = _MemoryProbe((warm, end))
    trainer = Trainer(
        accelerator="cpu",
        max_steps=end,
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
        default_root_dir=tmp_path,
    )
    trainer.fit(tiny_model(), datamodule=folder_datamodule(category))
    growth = probe.rss[end] - probe.rss[warm]
    assert growth < MEMORY_GROWTH_BOUND_MB, f"RSS grew by {growth:.1f} MiB over {end - warm} steps"
    assert probe.tensors[end] - probe.tensors[warm] <= TENSOR_GROWTH_BOUND, probe.tensors
