"""Full-page screenshots of a trial's report.html with headless Chromium, as a reviewer sees it at 100 % zoom.

    python benchmarks/report_screenshots.py spectrial-results/quick --out screenshots/

Chromium (``apt-get install chromium``) renders the page in a 1280-pixel-wide window; each screenshot
is cut where the page ends (the bottom rows of page background are trimmed) and also written as
consecutive tiles of at most ``--tile`` pixels, which read better than one very tall image.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars")


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no Chromium found: apt-get install chromium")


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 16000) -> Path:
    """A ``width`` x ``height`` screenshot of ``page``, trimmed below the page's last non-background row."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                        f"--screenshot={png}", page.resolve().as_uri()], check=True, capture_output=True, timeout=300)
    image = np.asarray(Image.open(png).convert("RGB"))
    background = image[-1, 0]
    rows = np.flatnonzero(np.any(np.abs(image.astype(int) - background).sum(axis=2) > 0, axis=1))
    bottom = int(rows[-1]) + 24 if rows.size else image.shape[0]
    if bottom >= height - 24:
        print(f"warning: the page is taller than {height} px; raise --height", file=sys.stderr)
    Image.fromarray(image[:bottom]).save(png)
    return png


def tiles(png: Path, tile: int) -> list[Path]:
    """Cut ``png`` into consecutive tiles ``png-1.png``, ``png-2.png``, ... of at most ``tile`` rows."""
    image = Image.open(png)
    out = []
    for k, top in enumerate(range(0, image.height, tile), start=1):
        path = png.with_name(f"{png.stem}-{k}.png")
        image.crop((0, top, image.width, min(top + tile, image.height))).save(path)
        out.append(path)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path, help="results directory holding report.html")
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="folder for the PNGs")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels (default 1280)")
    parser.add_argument("--height", type=int, default=16000, help="window height, more than the page (default 16000)")
    parser.add_argument("--tile", type=int, default=1600, help="rows per tile (default 1600)")
    args = parser.parse_args(argv)
    page = args.results_dir / "report.html"
    if not page.is_file():
        sys.exit(f"{page} does not exist: give a results directory written by 'spectrial run'")
    args.out.mkdir(parents=True, exist_ok=True)
    full = screenshot(page, args.out / "report.png", width=args.width, height=args.height)
    for path in [full, *tiles(full, args.tile)]:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
