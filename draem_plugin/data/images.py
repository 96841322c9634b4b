"""Image files: which names count as images, and one decoder for every place that opens them.

Both the texture bank (which keeps the decoded pixels) and the data checks (which only need to know that a file
decodes, and its mode and size) open images through :func:`decode_image`, so a file is judged the same way in both.

Example:
    >>> from PIL import Image
    >>> Image.new("RGB", (40, 30)).save("/tmp/draem_plugin_doctest.png")
    >>> image = decode_image("/tmp/draem_plugin_doctest.png")
    >>> image.mode, image.size
    ('RGB', (40, 30))
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

__all__ = ["DECODE_ERRORS", "IMAGE_EXTENSIONS", "decode_image"]

#: File name endings (any case) that are read as images.
IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
#: What PIL raises for a truncated, corrupt or unsupported file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def decode_image(path: str | Path, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open ``path`` and decode all of it (so a truncated file fails here, not later in a data loader worker).

    Args:
        path: the image file.
        draft: ``(width, height)``: JPEGs are decoded at the smallest DCT scale (1/1 to 1/8) that is still at least
            this large, which reads the whole file but decodes up to 64x fewer pixels; other formats ignore it.

    Returns:
        The decoded image, in its own mode; ``image.info["original_size"]`` is its ``(width, height)`` on disk.

    Raises:
        One of :data:`DECODE_ERRORS` when the file cannot be decoded.
    """
    with Image.open(path) as image:
        original = image.size
        if draft is not None and image.format == "JPEG":
            image.draft(image.mode, draft)
        image.load()
        image.info["original_size"] = original
        return image
