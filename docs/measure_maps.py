"""Where a trained DRÆM's errors are: image AUROC per filter size; per defect type, pixel AUROC and reconstruction.

One inference pass over an MVTec-layout test split with a checkpoint of a ``draem-bench quality`` run (DraemPlugin or
anomalib's Draem at the run's widths and size), raw outputs, no post-processor. ``restored`` is the mean
|reconstruction - input| on a type's defect pixels over its mean on good pixels: near 1, the reconstructive network
reproduces the defect instead of restoring the normal surface, and the discriminator has little to compare.
The pixel AUROC of that residual alone, beside the discriminator's, shows which of the two networks misses a defect.
``--recalibrate_bn N`` first recomputes the BatchNorm statistics with the checkpoint's weights over N batches of
augmented training images (the model's own augmenter; ``torch.optim.swa_utils.update_bn``, i.e. "precise BN")
instead of using the running averages saved during training.

Usage (the run's settings; anomalib's Draem needs --source to be built offline):
    python docs/measure_maps.py results/draem_bench/curves_bottle/runs/bottle/DraemPlugin/seed0/checkpoints/last.ckpt \
        --root ../shared/data/mvtec_ad --category bottle --model DraemPlugin --image_size 128 \
        --reconstructive_width 16 --discriminative_width 32 --source ../shared/data/textures/dtd_lowres
"""

import argparse
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from anomalib.data import MVTecAD
from torch.optim.swa_utils import update_bn
from torchmetrics.functional.classification import binary_auroc

from draem_plugin.anomaly_map import image_score
from draem_plugin.benchmark.models import build_model

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("checkpoint")
parser.add_argument("--root", required=True)
parser.add_argument("--category", required=True)
parser.add_argument("--model", default="DraemPlugin", choices=["DraemPlugin", "Draem"])
parser.add_argument("--image_size", type=int, default=128)
parser.add_argument("--reconstructive_width", type=int, default=16)
parser.add_argument("--discriminative_width", type=int, default=32)
parser.add_argument("--source")
parser.add_argument("--recalibrate_bn", type=int, default=0, metavar="N", help="recompute BatchNorm over N batches")
args = parser.parse_args()
name, category = args.model, args.category
model = build_model(
    name,
    image_size=args.image_size,
    reconstructive_width=args.reconstructive_width,
    discriminative_width=args.discriminative_width,
    source=args.source,
    visualizer=False,
)
state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)  # a Lightning checkpoint of the run
missing = [
    key for key in model.load_state_dict(state["state_dict"], strict=False).missing_keys if key.startswith("model.")
]
if missing:
    sys.exit(
        f"{args.checkpoint} lacks {len(missing)} network weights of {name} (e.g. {missing[0]}); pass the run's --model."
    )
datamodule = MVTecAD(root=args.root, category=category, eval_batch_size=16, num_workers=0)
if args.recalibrate_bn > 0:
    datamodule.setup("fit")
    torch.manual_seed(0)  # anomalib's Draem draws its anomalies from the global generator
    if hasattr(model.augmenter, "reseed"):
        model.augmenter.reseed(0)  # DraemPlugin's augmenter has a generator of its own
    before = [m.running_mean.clone() for m in model.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]

    def augmented_batches() -> Iterator[torch.Tensor]:
        """Training batches with anomalies (DraemPlugin's augmenter returns ``.image``, Draem's a tuple)."""
        for batch in itertools.islice(itertools.cycle(datamodule.train_dataloader()), args.recalibrate_bn):
            out = model.augmenter(model.pre_processor.transform(batch.image))
            yield out.image if hasattr(out, "image") else out[0]

    with torch.no_grad():
        update_bn(augmented_batches(), model.model)
    after = [m.running_mean for m in model.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    change = torch.stack([(a - b).abs().mean() for a, b in zip(after, before, strict=True)]).mean()
    print(f"BatchNorm statistics recomputed over {args.recalibrate_bn} augmented training batches ", end="")
    print(f"(mean |change| of the running means: {change:.4g})")
model.eval()
datamodule.setup("test")
maps, masks, changes, types = [], [], [], []
with torch.no_grad():
    for batch in datamodule.test_dataloader():
        image, mask = model.pre_processor.transform(batch.image, batch.gt_mask)
        maps.append(model.model(image).anomaly_map.reshape(len(image), *image.shape[-2:]))
        changes.append((model.model.reconstructive_subnetwork(image) - image).abs().mean(dim=1))
        masks.append(mask.reshape(len(image), *image.shape[-2:]) > 0.5)
        types += [Path(path).parent.name for path in batch.image_path]
maps, masks, changes = torch.cat(maps), torch.cat(masks), torch.cat(changes)
labels = torch.tensor([kind != "good" for kind in types]).int()
pixel_auroc = binary_auroc(maps.flatten(), masks.flatten().int())
print(f"{name} after epoch {state['epoch'] + 1}, {category}: pixel AUROC {pixel_auroc:.4f}")
residual_auroc = binary_auroc(changes.flatten(), masks.flatten().int())
print(
    f"the reconstruction residual alone (mean |reconstruction - input| over channels): pixel AUROC {residual_auroc:.4f}"
)
print(" ".join(f"filter {k}: {binary_auroc(image_score(maps, k), labels):.4f}" for k in (1, 5, 7, 11, 15, 21, 31)))
normal, normal_change = maps[~masks], changes[~masks].mean()
print(f"good pixels above 0.5: {(normal > 0.5).float().mean():.4f}")
for kind in sorted(set(types) - {"good"}):
    chosen = torch.tensor([t == kind for t in types])
    defect = maps[chosen][masks[chosen]]
    scores = torch.cat([defect, normal])
    target = torch.cat([torch.ones_like(defect), torch.zeros_like(normal)]).int()
    auroc, restored = binary_auroc(scores, target), changes[chosen][masks[chosen]].mean() / normal_change
    print(f"{kind}: {int(chosen.sum())} images, its defect pixels against all good pixels: AUROC {auroc:.4f}, ", end="")
    print(f"restored {restored:.2f}")
