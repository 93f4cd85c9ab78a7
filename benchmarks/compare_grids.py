"""Two sample grids side by side with their captions, e.g. a release's default beside the last one.

    git show <old-rev>:plots/samples.png > /tmp/old.png
    python benchmarks/compare_grids.py /tmp/old.png "previous default" plots/samples.png \
        "this default" reports/samples_before_after.png
"""

from __future__ import annotations

import argparse

from PIL import Image, ImageDraw

CAPTION = 16  # pixels above each grid for its caption
GAP = 12


def side_by_side(grids: list[tuple[Image.Image, str]], scale: int = 2) -> Image.Image:
    """The grids, each scaled by `scale` (nearest, so pixels stay sharp), left to right."""
    scaled = [
        (g.convert("RGB").resize((g.width * scale, g.height * scale), Image.NEAREST), c)
        for g, c in grids
    ]
    width = sum(g.width for g, _ in scaled) + GAP * (len(scaled) - 1)
    height = max(g.height for g, _ in scaled) + CAPTION
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    left = 0
    for grid, caption in scaled:
        draw.text((left + 2, 2), caption, fill=(0, 0, 0))
        canvas.paste(grid, (left, CAPTION))
        left += grid.width + GAP
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("old")
    parser.add_argument("old_caption")
    parser.add_argument("new")
    parser.add_argument("new_caption")
    parser.add_argument("out")
    args = parser.parse_args()
    grids = [(Image.open(args.old), args.old_caption), (Image.open(args.new), args.new_caption)]
    side_by_side(grids).save(args.out)


if __name__ == "__main__":
    main()
