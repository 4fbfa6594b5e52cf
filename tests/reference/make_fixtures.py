"""Writes the small image fixtures of tests/formats.rs with PIL, one per format or quirk the
decoder must handle. Each is a 48×32 (width × height) crop of a foolbox photo, so the test
can compare every decoded file with the lossless `reference.png`.

    python tests/reference/make_fixtures.py [--photo PATH] [--out tests/fixtures]
"""
import argparse
import io
import pathlib

from PIL import Image


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photo", default="models/photos/imagenet_04_949.jpg")
    ap.add_argument("--out", default="tests/fixtures")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    base = Image.open(args.photo).convert("RGB").resize((48, 32), Image.BILINEAR)
    base.save(out / "reference.png")

    base.save(out / "baseline.jpg", quality=95)
    base.save(out / "progressive.jpg", quality=95, progressive=True)
    base.convert("CMYK").save(out / "cmyk.jpg", quality=95)
    base.save(out / "lossy.webp", quality=95)
    base.save(out / "image.bmp")
    base.quantize(colors=256).save(out / "palette.png")

    # 16 bits per channel: PIL writes 16-bit PNGs from mode "I;16" (grey) only, so go through
    # numpy-free raw bytes: each 8-bit value v becomes v * 257 (big-endian, as PNG stores it).
    raw16 = bytes(b for v in base.tobytes() for b in ((v * 257) >> 8, (v * 257) & 0xFF))
    write_png16(out / "rgb16.png", base.size, raw16)

    # Animated GIF: the first frame is the photo, the second plain black.
    black = Image.new("RGB", base.size)
    base.save(out / "animated.gif", save_all=True, append_images=[black], duration=100, loop=0)

    # Stored rotated 90° clockwise with EXIF orientation 8 (display = rotate 90° counter-
    # clockwise back): upright it is the 48×32 reference again.
    exif = Image.Exif()
    exif[0x0112] = 8
    base.transpose(Image.Transpose.ROTATE_270).save(out / "exif-orientation-8.jpg", quality=95, exif=exif)


def write_png16(path, size, raw16):
    import struct
    import zlib

    width, height = size
    rows = b"".join(b"\x00" + raw16[y * width * 6:(y + 1) * width * 6] for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(png)


if __name__ == "__main__":
    main()
