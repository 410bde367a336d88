"""Reading, resizing and tiling images without blurring pixel art.

Everything here works on numpy uint8 arrays shaped (H, W, C) or (N, H, W, C), C = 3 (RGB) or
4 (RGBA: the alpha mask kept for datasets with transparency), so the data stages need no torch.
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from heroportraits.errors import HeroError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
# Image types that are seen but not read (multi-page, float or layered formats): reported, not guessed at.
UNSUPPORTED_SUFFIXES = {".tif", ".tiff", ".psd", ".ico", ".tga", ".ppm", ".pgm", ".heic", ".avif", ".svg", ".jxl"}
MAX_PIXELS = 4096 * 4096  # larger than any portrait source; refuses decompression bombs before decoding


class ImageReadError(HeroError):
    """An image file that cannot be decoded; the message names the file."""


class ImageTooLarge(ImageReadError):
    """An image with more than MAX_PIXELS pixels (a 90 KB PNG can claim 20000x20000)."""


def scan_folder(folder: str | Path) -> tuple[list[Path], list[tuple[Path, str, str]]]:
    """Every path below `folder` (recursive, sorted): (image files, [(path, reason, detail)] for the rest).

    Reasons for the rest: `broken_link` (a link to nothing, or a link loop), `not_a_file`
    (a folder or device named like an image), `unsupported_type` (an image type that is not
    read), `not_an_image` (any other file, e.g. labels.csv). Plain folders are not listed.
    """
    images, others = [], []
    for p in sorted(Path(folder).rglob("*")):
        suffix = p.suffix.lower()
        if p.is_symlink() and not p.exists():
            others.append((p, "broken_link", _broken_link(p)))
        elif suffix in IMAGE_SUFFIXES and p.is_file():
            images.append(p)
        elif suffix in IMAGE_SUFFIXES | UNSUPPORTED_SUFFIXES and not p.is_file():
            others.append((p, "not_a_file", "a folder (or device) named like an image"))
        elif suffix in UNSUPPORTED_SUFFIXES:
            others.append((p, "unsupported_type", f"{suffix} images are not read; convert it to PNG"))
        elif p.is_file():
            others.append((p, "not_an_image", ""))
    return images, others


def _broken_link(path: Path) -> str:
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a symbolic link loop"
    return f"a symbolic link to {os.readlink(path)}, which does not exist"


def list_images(folder: str | Path) -> list[Path]:
    """Every image file below `folder` (recursive), sorted for determinism."""
    return scan_folder(folder)[0]


def load_image(path: str | Path, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Decode any PIL-readable image to (H, W, 3) uint8, flattening transparency onto `background`.

    Animated GIF/WebP: the first frame. Palette and greyscale modes are converted; 16-bit
    greyscale is scaled (0..65535 -> 0..255), not clipped; a JPEG's EXIF orientation is applied.
    More than MAX_PIXELS pixels: ImageTooLarge, read from the header before any decoding.
    """
    return flatten_alpha(load_image_rgba(path), background)


def load_image_rgba(path: str | Path) -> np.ndarray:
    """Decode any image like `load_image`, keeping its alpha: (H, W, 4) uint8 (255 where the file has none),
    so `prepare` can keep the mask of a portrait with a transparent background."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImageTooLarge(f"{path} is {im.width}x{im.height}: more than {MAX_PIXELS:,} pixels")
                im.seek(0)
                im.load()
                return _to_rgba(ImageOps.exif_transpose(im))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(f"{path}: {e}") from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, ImageReadError):
            raise
        raise ImageReadError(f"cannot read image {path}: {e}. Re-export it as PNG or remove it.") from e


def has_transparency(rgba: np.ndarray) -> bool:
    """True when any pixel of an (..., 4) image is less than opaque; an (..., 3) image has none."""
    return rgba.shape[-1] == 4 and bool((rgba[..., 3] < 255).any())


def _to_rgba(im: Image.Image) -> np.ndarray:
    """(H, W, 4) uint8 of any mode; 16/32-bit greyscale scaled from 0..65535 (PNG's 16-bit range)."""
    if im.mode.startswith("I"):  # I;16, I;16B, I (a 16-bit greyscale PNG decodes to one of these)
        grey = np.clip(np.round(np.asarray(im, np.float64) / 257.0), 0, 255).astype(np.uint8)
        return np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    return np.asarray(im.convert("RGBA"))


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

    Steps: recover the native pixel grid (detect_pixel_scale, on the colours), crop it square,
    then enlarge by nearest neighbour or shrink by box averaging. Never bilinear. The
    returned scale is how many output pixels one native pixel spans (1 if not integral).
    An (H, W, 4) image keeps its 4th channel, resized alike but apart: PIL would premultiply RGBA.
    """
    k = detect_pixel_scale(img[..., :3])
    native = center_square(img[::k, ::k] if k > 1 else img)
    n = native.shape[0]
    if n == size:
        return native.copy(), 1
    how = Image.NEAREST if n < size else Image.BOX
    out = np.asarray(Image.fromarray(np.ascontiguousarray(native[..., :3])).resize((size, size), how))
    if native.shape[-1] == 4:
        alpha = np.asarray(Image.fromarray(np.ascontiguousarray(native[..., 3])).resize((size, size), how))
        out = np.dstack([out, alpha])
    return out, size // n if n < size and size % n == 0 else 1


def nearest_upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Repeat every pixel factor x factor times (works on (H,W,C) and (N,H,W,C))."""
    if factor == 1:
        return img
    return img.repeat(factor, axis=-3).repeat(factor, axis=-2)


def save_png(img: np.ndarray, path: str | Path) -> Path:
    """Write (H, W, 3) as an RGB PNG, (H, W, 4) as an RGBA PNG (the mask kept)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(img)).save(path, optimize=False, compress_level=1)
    return path


def make_grid(images: np.ndarray, nrow: int, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile (N, H, W, C) uint8 images (C = 3 or 4) into one image, `nrow` images per row; RGBA padding is opaque."""
    n, h, w, c = images.shape
    ncol = nrow
    nrows = (n + ncol - 1) // ncol
    grid = np.full((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncol)
        y, x = padding + r * (h + padding), padding + col * (w + padding)
        grid[y : y + h, x : x + w] = images[i]
    return grid
