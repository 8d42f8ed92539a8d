"""Screenshot HTML reports for the README (docs/report.png, docs/compare.png).

    vmgrade grade samples/before_practice.wav samples/after_practice.wav --caller-name "Priya Patel" \\
        --company Ledgerline --callback-number 312-555-0147 --prospect-name Marcus \\
        --prospect-company "Harborview Freight" --format json --html out/ > out/reports.jsonl
    vmgrade compare out/reports.jsonl --label "before coaching" --label "after coaching" \\
        --html out/compare.html
    python tools/html_screenshots.py out/before_practice.html:docs/report.png:1560 \\
        out/compare.html:docs/compare.png:1900

Each argument is PAGE:PNG[:HEIGHT_PX]: the top HEIGHT_PX of the page (default
all of it) at 1200 px wide, saved as a 256-colour PNG to stay small.
Needs Debian's chromium (/usr/bin/chromium), playwright and Pillow
(`pip install playwright pillow`).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio"]
WIDTH_PX = 1200


def main(specs: list[str]) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for spec in specs:
            page_path, png_path, *height = spec.split(":")
            page = browser.new_page(viewport={"width": WIDTH_PX, "height": 900})
            page.goto(Path(page_path).resolve().as_uri())
            page.wait_for_load_state("load")
            full = page.evaluate("document.documentElement.scrollHeight")
            clip_h = min(full, int(height[0]) if height else full)
            shot = Image.open(io.BytesIO(page.screenshot(
                clip={"x": 0, "y": 0, "width": WIDTH_PX, "height": clip_h}, full_page=True)))
            small = shot.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            small.save(png_path, optimize=True)
            print(f"{png_path}: {Path(png_path).stat().st_size // 1024} KB, {shot.size[0]}x{shot.size[1]}")
            page.close()
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
