"""Writes media/icon.png (128x128): a magnifying glass over code lines. Pure stdlib, so
the icon can be regenerated anywhere: `python3 scripts/make-icon.py`."""
import math
import struct
import zlib
from pathlib import Path

N = 128
BG = (30, 41, 59)
LINE = (100, 116, 139)
RING = (56, 189, 248)


def pixel(x: float, y: float) -> tuple[int, int, int, int]:
    # rounded square background
    r = 22
    dx = max(r - x, 0, x - (N - 1 - r))
    dy = max(r - y, 0, y - (N - 1 - r))
    if dx * dx + dy * dy > r * r:
        return (0, 0, 0, 0)
    cx, cy, rad = 54, 54, 30
    d = math.hypot(x - cx, y - cy)
    if abs(d - rad) < 6:
        return (*RING, 255)
    # handle
    t = ((x - cx) + (y - cy)) / 2
    off = abs((x - cx) - (y - cy)) / math.sqrt(2)
    if off < 7 and rad * 0.72 + 4 < t < rad * 0.72 + 36:
        return (*RING, 255)
    # code lines inside the lens
    if d < rad - 7:
        for i, (y0, w) in enumerate(((40, 30), (52, 22), (64, 34))):
            if y0 <= y < y0 + 5 and 36 + (i % 2) * 6 <= x < 36 + (i % 2) * 6 + w:
                return (*LINE, 255)
    return (*BG, 255)


rows = b"".join(b"\x00" + bytes(c for x in range(N) for c in pixel(x, y)) for y in range(N))


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", N, N, 8, 6, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
out = Path(__file__).resolve().parent.parent / "media" / "icon.png"
out.write_bytes(png)
print(out)
