"""Reading, resizing and tiling images without blurring pixel art.

Everything here works on numpy uint8 arrays shaped (H, W, 3) or (N, H, W, 3), so the
data stages need no torch. `tensor_to_uint8` bridges from model outputs in [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from heroportraits.errors import HeroError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}


class ImageReadError(HeroError):
    """An image file that cannot be decoded; the message names the file."""


def list_images(folder: str | Path) -> list[Path]:
    """Every image file below `folder` (recursive), sorted for determinism."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image(path: str | Path, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Decode any PIL-readable image to (H, W, 3) uint8, flattening transparency onto `background`.

    Animated GIF/WebP: the first frame. Palette and greyscale modes are converted.
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            rgba = im.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}. Re-export it as PNG or remove it.") from e
    return flatten_alpha(np.asarray(rgba), background)


def flatten_alpha(rgba: np.ndarray, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Composite an (H, W, 4) uint8 image over a solid background -> (H, W, 3) uint8."""
    if rgba.shape[-1] == 3:
        return rgba.astype(np.uint8)
    rgb = rgba[..., :3].astype(np.float32)
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    bg = np.asarray(background, np.float32)
    return np.clip(rgb * a + bg * (1 - a) + 0.5, 0, 255).astype(np.uint8)


def detect_pixel_scale(img: np.ndarray, max_scale: int = 16, tolerance: int = 8) -> int:
    """Largest integer k such that the image is made of k x k single-colour blocks.

    Pixel art is usually stored upscaled by nearest neighbour; recovering k lets us
    go back to the native grid instead of resampling (which would blur). A small
    `tolerance` (max channel difference) admits lightly compressed files.
    """
    h, w = img.shape[:2]
    signed = img.astype(np.int16)
    for k in range(min(max_scale, h, w), 1, -1):
        if h % k or w % k:
            continue
        blocks = signed.reshape(h // k, k, w // k, k, -1)
        spread = blocks.max(axis=(1, 3)) - blocks.min(axis=(1, 3))
        if spread.max() <= tolerance:
            return k
    return 1


def center_square(img: np.ndarray) -> np.ndarray:
    """Crop the central square (portraits are square; a wide scan keeps its middle)."""
    h, w = img.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return img[top : top + s, left : left + s]


def to_resolution(img: np.ndarray, size: int = 64) -> tuple[np.ndarray, int]:
    """Resize to size x size keeping pixel art crisp; returns (image, native pixel scale).

    Steps: recover the native pixel grid (detect_pixel_scale), crop it square, then
    enlarge by nearest neighbour or shrink by box averaging. Never bilinear. The
    returned scale is how many output pixels one native pixel spans (1 if not integral).
    """
    k = detect_pixel_scale(img)
    native = center_square(img[::k, ::k] if k > 1 else img)
    n = native.shape[0]
    if n == size:
        return native.copy(), 1
    pil = Image.fromarray(native)
    if n < size:
        out = np.asarray(pil.resize((size, size), Image.NEAREST))
        return out, size // n if size % n == 0 else 1
    return np.asarray(pil.resize((size, size), Image.BOX)), 1


def nearest_upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel factor x factor times (works on (H,W,C) and (N,H,W,C))."""
    if factor == 1:
        return img
    return img.repeat(factor, axis=-3).repeat(factor, axis=-2)


def save_png(img: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(img)).save(path, optimize=False, compress_level=1)
    return path


def make_grid(images: np.ndarray, nrow: int, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile (N, H, W, 3) uint8 images into one image, `nrow` images per row."""
    n, h, w, c = images.shape
    ncol = nrow
    nrows = (n + ncol - 1) // ncol
    grid = np.full((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def tensor_to_uint8(x) -> np.ndarray:
    """Model output (N, 3, H, W) float in [-1, 1] -> (N, H, W, 3) uint8 numpy."""
    x = x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to("cpu")
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)
