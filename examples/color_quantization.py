"""Colour quantization of a photograph: every pixel is replaced by the nearest of K
colours found by k-means (scikit-learn's sample photo "china.jpg", 427 x 640 pixels).

    python examples/color_quantization.py --colors 64 --out china-64.png

Needs scikit-learn (for the sample image) and pillow (to read it and write --out).
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_sample_image

from kmaot import KMeans


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--colors", type=int, default=64, help="number of colours (default: 64)")
    p.add_argument("--image", default="china.jpg", help="china.jpg or flower.jpg")
    p.add_argument("--sample", type=int, default=20000,
                   help="fit on this many random pixels (default: 20000; 0: all pixels)")
    p.add_argument("--out", help="write the quantized image to this PNG file")
    args = p.parse_args(argv)

    image = load_sample_image(args.image)                       # (h, w, 3) uint8
    h, w, _ = image.shape
    pixels = (image.reshape(-1, 3) / 255.0).astype(np.float32)  # (h*w, 3) in [0, 1]
    train = pixels
    if args.sample:
        rng = np.random.default_rng(0)
        train = pixels[rng.choice(len(pixels), size=args.sample, replace=False)]

    t0 = time.perf_counter()
    km = KMeans(n_clusters=args.colors, random_state=0).fit(train)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    labels = km.predict(pixels)
    t_pred = time.perf_counter() - t0

    palette = km.cluster_centers_
    quantized = palette[labels].reshape(h, w, 3)
    err = np.abs(quantized - pixels.reshape(h, w, 3)).mean() * 255
    rgb = image.reshape(-1, 3).astype(np.uint32)
    n_colours = len(np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]))
    print(f"{args.image}: {h} x {w} pixels, {n_colours:,} distinct colours -> {args.colors}")
    print(f"fit on {len(train):,} pixels: {t_fit:.2f} s, {km.n_iter_} iterations, "
          f"inertia {km.inertia_:.4g}")
    print(f"predict {len(pixels):,} pixels: {t_pred * 1000:.1f} ms")
    print(f"mean absolute error: {err:.2f} (0-255 scale)")
    if args.out:
        from PIL import Image

        Image.fromarray(np.round(quantized * 255).astype(np.uint8)).save(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
