"""Train on a folder of your own images: PNG/JPEG files of any size, grayscale or colour, in any subfolders.

    python examples/own_images.py FOLDER --out runs/own_images            # your folder
    python examples/own_images.py --out runs/own_images                   # writes a demo folder of digits first
    python examples/own_images.py --out /tmp/oi --tiny                    # a few steps (what the tests run)

The same run from the command line (the run's config.yaml is such a file):

    latentprior train config.yaml --out runs/own_images     # config.yaml holds  data: {name: images, path: FOLDER,
                                                             #                          resolution: 28, channels: 1}
    latentprior eval runs/own_images --metrics fid --n 200

Every file is centre-cropped and resized to data.resolution (28, 32 or 64) and converted to data.channels (1 or 3);
a held-out tenth, chosen by file content, is the test split that FID compares with. Files that cannot be decoded are
skipped with a warning, and the split record (in the image cache) lists them.
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

import latentprior as lp


def write_demo_folder(folder: Path, n: int) -> Path:
    """n digits as PNG and JPEG files of mixed sizes and modes, one folder per class, and one broken file."""
    digits = lp.load_dataset("digits", "train")
    sizes = np.random.default_rng(0).choice([20, 28, 40, 56], size=n)
    for i in range(n):
        im = Image.fromarray(digits.images[i, 0].numpy()).resize((int(sizes[i]), int(sizes[i] * 1.25)))
        sub = folder / f"class_{int(digits.labels[i])}"
        sub.mkdir(parents=True, exist_ok=True)
        (im.convert("RGB") if i % 2 else im).save(sub / f"{i:05d}.{'jpg' if i % 3 == 0 else 'png'}")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # skipped, and counted in the log
    return folder


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", nargs="?", help="a folder of PNG/JPEG images (default: a demo folder of digits)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--tiny", action="store_true", help="a few steps and a small FID (for tests)")
    args = p.parse_args(argv)
    folder = args.folder or write_demo_folder(Path(args.out + "-images"), 200 if args.tiny else 1500)

    cfg = lp.Config(
        data=lp.DataConfig(name="images", path=str(folder), resolution=28, channels=1),
        net=lp.NetConfig(arch="conv4", width=0.125),
        prior=lp.PriorConfig(kind="realnvp", layers=4, hidden=128),
        model=lp.ModelConfig(latent_dim=16),
        objective=lp.ObjectiveConfig(kind="vae", beta=1.0, lr=1e-3),
        train=lp.TrainConfig(epochs=0.5 if args.tiny else 20, batch_size=50, checkpoint_every=200, progress=False),
    )
    trainer = lp.Trainer(args.out, cfg)
    summary = trainer.fit()  # the config's data and model: a run `latentprior resume/sample/eval` can rebuild
    test = lp.load_image_folder(folder, "test", resolution=28, channels=1)
    print(f"trained {summary['step']} steps; test split: {len(test)} images ({test.name})")
    scores = trainer.evaluate(["fid"], n=len(test) if args.tiny else 2 * len(test), n_ref=len(test), progress=False)
    print("FID", round(scores["fid"]["value"], 2), "against", scores["fid"]["protocol"]["n_ref"], "test images")


if __name__ == "__main__":
    main()
