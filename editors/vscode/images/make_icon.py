"""Draw the extension icon (128x128 PNG): code lines, a cursor, and grey ghost text after it.

Run with any Python that has Pillow: `python images/make_icon.py` (writes images/icon.png).
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE, SCALE = 128, 4  # drawn at 4x and downsampled, for smooth edges
BACKGROUND, CODE, CURSOR, GHOST = "#1f2a44", "#e8edf5", "#4fc3f7", "#6b7a99"


def draw() -> Image.Image:
    s = SCALE
    image = Image.new("RGBA", (SIZE * s, SIZE * s), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pen.rounded_rectangle((4 * s, 4 * s, 124 * s, 124 * s), radius=24 * s, fill=BACKGROUND)

    def bar(x0: int, y: int, x1: int, colour: str) -> None:
        pen.rounded_rectangle((x0 * s, y * s, x1 * s, (y + 10) * s), radius=5 * s, fill=colour)

    bar(22, 28, 78, CODE)  # code already typed
    bar(34, 48, 64, CODE)
    pen.rectangle((68 * s, 44 * s, 72 * s, 62 * s), fill=CURSOR)  # the cursor
    bar(78, 48, 106, GHOST)  # ghost text: the suggestion after the cursor
    bar(34, 68, 94, GHOST)
    bar(22, 88, 60, GHOST)
    return image.resize((SIZE, SIZE), Image.LANCZOS)


if __name__ == "__main__":
    draw().save(Path(__file__).with_name("icon.png"), optimize=True)
