"""Where a composed source keeps its faces: the box that holds brows, eyes, nose and mouth in every portrait.

The sources that compose their portraits know it (the built-in procedural art places the face by `Head`, the
LPC composer crops every body at the same frame position), so they record it in their source.json and it
travels into dataset.json; `evaluate` then scores the face alone too (detail and FD), where the original
study saw detail blur first. A folder of the user's own art has no face box, and its faces are not scored
apart. Boxes are (x0, y0, x1, y1) in output pixels of the 64x64 portrait, x1 / y1 exclusive.
"""

from __future__ import annotations

FaceBox = tuple[int, int, int, int]

# Native pixels (32x32 grid, 2x2 output pixels each): the face ovals of 400 drawn heads cover columns 8-23 and
# rows 6-22 (forehead included); brows to chin of every one lie in columns 9-22 and rows 10-21.
PROCEDURAL_FACE: FaceBox = (18, 20, 46, 44)
# LPC bodies, standing front frame cropped at (16, 10): the head spans crop columns 6-25 and rows 5-21, the eyes
# rows 17-21 in columns 10-21 and the mouth below them; the face box is columns 8-23, rows 14-23.
LPC_FACE: FaceBox = (16, 28, 48, 48)
FACE_BOXES: dict[str, FaceBox] = {"procedural": PROCEDURAL_FACE, "lpc": LPC_FACE}


def face_box(meta: dict) -> FaceBox | None:
    """The face box of a dataset (its dataset.json), or None when its source does not know one: the box its
    source recorded, else the known box of its kind (datasets built before sources recorded it)."""
    source = meta.get("source") or {}
    box = source.get("face_box") or FACE_BOXES.get(source.get("kind"))
    resolution = int(meta.get("resolution", 64))
    if not box or len(box) != 4:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= resolution and 0 <= y0 < y1 <= resolution):
        return None
    return x0, y0, x1, y1
