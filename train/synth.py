"""A procedural facades dataset: CMP-style label maps and matching "photos", made in seconds.

Why: a test, the demo and CI need a paired dataset that is small, deterministic, free to
redistribute and *learnable* in minutes (label -> photo follows fixed rules: each class has its
own material, and light and shadow follow the geometry), yet looks like the real task.

Each building is laid out like the CMP facades (Tylecek & Sara 2013, the source of the pix2pix
``facades`` set): a facade body under a sky, floors separated by mouldings, a grid of windows
with sills, hoods and blinds, balconies, pillars, ornaments, and a ground floor with a door and
shop windows. The photo gets per-class textures (plaster or brick, glass with sky reflections,
wood, stone, metal railings), vertical light fall-off, shadows under every protruding element,
lens softness and sensor noise.

Output is the pix2pix **aligned** layout: ``OUT/train/000001.png = [labels | photo]``, so
A = labels and B = photo, and the default direction ``AtoB`` learns labels -> photo.
(The real facades archive is stored the other way round, photo | labels: train it with
``--direction BtoA``.)

Only numpy and PIL: ``pix2pix data synth`` needs no PyTorch. Everything is vectorised numpy;
Python loops run over the few dozen rectangles of a building, never over pixels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

# The 12 CMP classes in label order, with the colours of the pix2pix facades label maps.
# The CMP label images are a 13-level "jet" colour map of the class index 1..12; the values
# below are measured on the real pix2pix files (/work/shared/datasets/facades/train, right
# halves): each colour is the median of the real label pixels within 20 of it (L-inf), iterated
# from the jet colours, because JPEG blurs the stored labels slightly.
CLASSES = ("background", "facade", "window", "door", "cornice", "sill", "balcony", "blind",
           "deco", "molding", "pillar", "shop")
(BACKGROUND, FACADE, WINDOW, DOOR, CORNICE, SILL, BALCONY, BLIND, DECO, MOLDING, PILLAR,
 SHOP) = range(12)
PALETTE = np.array([
    (0, 0, 222),      # background
    (0, 48, 254),     # facade
    (4, 126, 255),    # window
    (2, 206, 255),    # door
    (36, 252, 227),   # cornice
    (113, 253, 148),  # sill
    (192, 254, 65),   # balcony
    (252, 240, 8),    # blind
    (255, 159, 3),    # deco
    (253, 80, 1),     # molding
    (244, 4, 6),      # pillar
    (174, 0, 1),      # shop
], dtype=np.uint8)

# Materials (RGB, 0..255) the photo draws from.
PLASTER = np.array([(226, 216, 188), (222, 204, 140), (232, 229, 220), (212, 164, 132),
                    (176, 174, 168), (192, 202, 164), (204, 164, 98), (200, 186, 170)], np.float32)
BRICK = np.array([(152, 72, 50), (128, 62, 46), (170, 96, 64)], np.float32)
SHUTTER = np.array([(62, 102, 64), (112, 72, 42), (212, 210, 200), (122, 122, 118),
                    (70, 86, 110)], np.float32)
WOOD = np.array([(92, 56, 30), (64, 40, 26), (40, 64, 48), (120, 80, 48)], np.float32)
FRAME = np.array([(226, 226, 222), (96, 64, 40), (60, 60, 60)], np.float32)

PROTRUDING = (CORNICE, SILL, BALCONY, DECO, MOLDING, PILLAR)


class _Canvas:
    """Class and instance maps painted with rectangles (later rectangles cover earlier ones)."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        self.cls = np.zeros((h, w), np.int64)
        self.inst = np.zeros((h, w), np.int64)
        self.boxes = [(0, 0, w, h)]  # instance 0: the whole background

    def rect(self, c: int, x0: float, y0: float, x1: float, y1: float) -> None:
        x0, x1 = max(0, int(round(x0))), min(self.w, int(round(x1)))
        y0, y1 = max(0, int(round(y0))), min(self.h, int(round(y1)))
        if x1 <= x0 or y1 <= y0:
            return
        self.cls[y0:y1, x0:x1] = c
        self.inst[y0:y1, x0:x1] = len(self.boxes)
        self.boxes.append((x0, y0, x1, y1))


def _layout(rng: np.random.Generator, h: int, w: int) -> tuple[_Canvas, int]:
    """Paint one building; returns the canvas and the y of the facade top (sky above it)."""
    cv = _Canvas(h, w)
    u = rng.uniform
    full = rng.random() < 0.45
    fl = 0 if full else u(0, 0.12) * w
    fr = w if full else w - u(0, 0.12) * w
    top = u(0.02, 0.2) * h
    cv.rect(FACADE, fl, top, fr, h)

    # Top cornice, with dentils (deco) under it on some buildings.
    ch = max(2.0, u(0.02, 0.045) * h)
    cv.rect(CORNICE, fl - 0.01 * w, top, fr + 0.01 * w, top + ch)
    if rng.random() < 0.3:
        step = max(3.0, u(0.025, 0.05) * w)
        for x in np.arange(fl + step / 2, fr - step / 2, step):
            cv.rect(DECO, x, top + ch, x + step / 2, top + ch + ch * 0.7)
        ch += ch * 0.7

    n_floors = int(rng.integers(3, 7))          # including the ground floor
    ground_ratio = u(1.15, 1.6)
    unit = (h - top - ch) / (n_floors - 1 + ground_ratio)
    edges = top + ch + unit * np.arange(n_floors)
    floors = [(y, y + unit) for y in edges[:-1]] + [(edges[-1], h)]

    n_cols = int(rng.integers(3, 9))
    pitch = (fr - fl) / n_cols
    centres = fl + pitch * (np.arange(n_cols) + 0.5)
    win_w = pitch * u(0.35, 0.6)
    win_h = unit * u(0.45, 0.66)
    win_off = unit * u(0.14, 0.28)

    molding = rng.random() < 0.65
    blinds = rng.choice(["none", "roller", "shutters"], p=[0.45, 0.3, 0.25])
    hoods = rng.random() < 0.35
    sills = rng.random() < 0.8
    balcony_style = rng.choice(["none", "single", "run"], p=[0.5, 0.3, 0.2])
    balcony_floors = set(rng.choice(np.arange(1, n_floors - 1), size=int(rng.integers(1, 3)))) \
        if n_floors > 2 else set()
    pillars = rng.random() < 0.25
    deco = rng.random() < 0.35

    if pillars:  # between the columns, over the upper floors
        pw = pitch * u(0.08, 0.14)
        first = int(rng.integers(0, max(1, n_floors - 2)))
        for x in fl + pitch * np.arange(1, n_cols):
            cv.rect(PILLAR, x - pw / 2, floors[first][0], x + pw / 2, floors[-1][0])

    for f, (y0, y1) in enumerate(floors[:-1]):
        if molding and f > 0:
            cv.rect(MOLDING, fl, y0 - 0.012 * h, fr, y0 + 0.012 * h)
        wy0, wy1 = y0 + win_off, y0 + win_off + win_h
        for x in centres:
            if rng.random() < 0.04:
                continue  # a blank bay
            x0, x1 = x - win_w / 2, x + win_w / 2
            cv.rect(WINDOW, x0, wy0, x1, wy1)
            if blinds == "roller" and rng.random() < 0.7:
                cv.rect(BLIND, x0, wy0, x1, wy0 + win_h * rng.choice([0.15, 0.3, 0.5, 1.0]))
            elif blinds == "shutters":
                sw = win_w * u(0.4, 0.5)
                cv.rect(BLIND, x0 - sw, wy0, x0, wy1)
                cv.rect(BLIND, x1, wy0, x1 + sw, wy1)
            if hoods:
                cv.rect(CORNICE, x0 - 0.1 * win_w, wy0 - 0.12 * win_h, x1 + 0.1 * win_w, wy0)
            if deco:
                cv.rect(DECO, x - 0.15 * win_w, wy0 - (0.3 if hoods else 0.18) * win_h,
                        x + 0.15 * win_w, wy0 - (0.14 if hoods else 0.04) * win_h)
            if sills:
                cv.rect(SILL, x0 - 0.08 * win_w, wy1, x1 + 0.08 * win_w,
                        wy1 + max(1.5, 0.07 * win_h))
            if balcony_style == "single" and f in balcony_floors:
                cv.rect(BALCONY, x0 - 0.2 * win_w, wy1 - 0.35 * win_h,
                        x1 + 0.2 * win_w, wy1 + 0.05 * win_h)
        if balcony_style == "run" and f in balcony_floors:
            k = int(rng.integers(1, max(2, n_cols // 2)))
            cv.rect(BALCONY, centres[k] - pitch * 0.5, wy1 - 0.35 * win_h,
                    centres[-1 - k] + pitch * 0.5, wy1 + 0.05 * win_h)

    # Ground floor: a moulding above it, a door, and shop windows or plain windows.
    gy0, gy1 = floors[-1]
    gh = gy1 - gy0
    cv.rect(MOLDING, fl, gy0 - 0.015 * h, fr, gy0 + 0.015 * h)
    door_col = int(rng.integers(0, n_cols))
    shop = rng.random() < 0.6
    for i, x in enumerate(centres):
        if i == door_col:
            dw = min(pitch * 0.8, max(win_w, pitch * u(0.4, 0.6)))
            cv.rect(DOOR, x - dw / 2, gy1 - gh * u(0.62, 0.8), x + dw / 2, gy1)
        elif shop:
            cv.rect(SHOP, x - pitch * 0.42, gy0 + gh * 0.18, x + pitch * 0.42, gy1 - gh * 0.04)
        else:
            cv.rect(WINDOW, x - win_w / 2, gy0 + gh * 0.25, x + win_w / 2, gy0 + gh * 0.25 + win_h)
            if sills:
                cv.rect(SILL, x - win_w * 0.58, gy0 + gh * 0.25 + win_h,
                        x + win_w * 0.58, gy0 + gh * 0.25 + win_h + max(1.5, 0.07 * win_h))
    return cv, int(round(top))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-ish noise that varies over about ``cells`` blobs (bicubic upsampling)."""
    grid = rng.standard_normal(cells).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.BICUBIC))


def _f32(*rgb) -> np.ndarray:
    return np.array(rgb, np.float32)


class _Pixels:
    """The pixels of one class as flat arrays, gathered on first use: where they are, where
    inside their element (u, v in 0..1), the element's size and its random numbers."""

    def __init__(self, idx: np.ndarray, frame: dict):
        self.idx, self._frame = idx, frame

    def __getattr__(self, name: str) -> np.ndarray:
        f = self._frame
        if name == "r":
            value = f["rnd"][f["inst"][self.idx]]
        else:
            value = f[name][self.idx]
        setattr(self, name, value)
        return value


def _render_photo(rng: np.random.Generator, cv: _Canvas, top: int) -> np.ndarray:
    h, w = cv.h, cv.w
    cls = cv.cls.ravel()
    inst = cv.inst.ravel()
    yy, xx = (a.ravel() for a in np.indices((h, w), dtype=np.float32))
    boxes = np.array(cv.boxes, np.float32)
    bx0, by0 = boxes[:, 0][inst], boxes[:, 1][inst]
    fw = np.maximum(boxes[:, 2] - boxes[:, 0], 1)[inst]
    fh = np.maximum(boxes[:, 3] - boxes[:, 1], 1)[inst]
    at = {"y": yy, "x": xx, "u": (xx - bx0 + 0.5) / fw, "v": (yy - by0 + 0.5) / fh,
             "fw": fw, "fh": fh, "inst": inst,
             "rnd": rng.random((len(cv.boxes), 3)).astype(np.float32)}
    order = np.argsort(cls.astype(np.int8), kind="stable")   # a radix sort for small ints
    ends = np.cumsum(np.bincount(cls, minlength=len(CLASSES)))
    img = np.zeros((h * w, 3), np.float32)
    px = max(1.0, w / 256)                                   # one "pixel" at 256 px
    noise = (_smooth_noise(rng, h, w, (5, 5)) * 0.05
             + _smooth_noise(rng, h, w, (24, 24)) * 0.03).ravel()

    def pixels(c: int) -> _Pixels:
        start = ends[c - 1] if c else 0
        return _Pixels(order[start:ends[c]], at)

    # Background: sky above the facade top, neighbouring buildings beside it.
    p = pixels(BACKGROUND)
    sky_top = _f32(150, 180, 220) * rng.uniform(0.85, 1.1)
    t = np.clip(p.y / max(top, 1), 0, 1)[:, None]
    sky = sky_top * (1 - t) + _f32(228, 230, 236) * t
    neighbour = rng.choice(PLASTER) * rng.uniform(0.55, 0.85)
    side = neighbour * (1 + 0.15 * _smooth_noise(rng, h, w, (6, 6)).ravel()[p.idx])[:, None]
    img[p.idx] = np.where((p.y < top + 0.1 * h)[:, None], sky, side)

    # Facade: plaster with blotches, or brick with mortar and per-brick colour.
    p = pixels(FACADE)
    if rng.random() < 0.3:
        base = rng.choice(BRICK)
        bh, bw = 3.0 * px, 8.0 * px
        row = np.floor(p.y / bh)
        shifted = p.x + (row % 2) * bw / 2
        brick = (np.sin(row * 12.9898 + np.floor(shifted / bw) * 78.233) * 43758.5453) % 1.0
        mortar = ((p.y % bh) < 0.9 * px) | ((shifted % bw) < 0.9 * px)
        wall = np.where(mortar[:, None], _f32(190, 180, 165), base * (0.85 + 0.3 * brick)[:, None])
    else:
        base = rng.choice(PLASTER) * rng.uniform(0.92, 1.05)
        wall = base[None, :]
    img[p.idx] = wall * (1 + noise[p.idx])[:, None]
    stone = np.clip(base * 0.4 + _f32(205, 200, 188) * 0.6, 0, 255)
    frame = rng.choice(FRAME)
    bar = 1.2 * px

    # Windows: frame, mullions, glass that reflects the sky (bright top, dark bottom, a streak).
    p = pixels(WINDOW)
    refl = (0.35 + 0.5 * p.r[:, 0]) * (1 - p.v)
    streak = np.exp(-((p.u - p.v * 0.6 - 0.2 * p.r[:, 1]) * 6) ** 2)
    glass = _f32(30, 38, 48) + _f32(120, 135, 150) * refl[:, None] + 60 * streak[:, None]
    on_frame = ((p.u * p.fw < bar) | ((1 - p.u) * p.fw < bar) | (p.v * p.fh < bar)
                | ((1 - p.v) * p.fh < bar) | (np.abs(p.u - 0.5) * p.fw < bar / 2)
                | (np.abs(p.v - 0.33) * p.fh < bar / 2))
    img[p.idx] = np.where(on_frame[:, None], frame, glass)

    # Shops: big dark glass with warm interior light, sky reflection and a frame.
    p = pixels(SHOP)
    warm = p.r[:, 0] * (p.v > 0.4) * np.exp(-((p.u - 0.5) * 3) ** 2)
    shop = (_f32(28, 26, 24) + _f32(150, 110, 60) * warm[:, None]
            + _f32(54, 60, 66) * (1 - p.v)[:, None])
    on_frame = (p.u * p.fw < 1.5 * bar) | ((1 - p.u) * p.fw < 1.5 * bar) | (p.v * p.fh < 1.5 * bar)
    img[p.idx] = np.where(on_frame[:, None], frame * 0.7, shop)

    # Door: wood with vertical grain and two recessed panels.
    p = pixels(DOOR)
    grain = 1 + 0.12 * _smooth_noise(rng, h, w, (3, max(8, w // 6))).ravel()[p.idx]
    panel = ((np.abs(p.u - 0.5) > 0.08) & (np.abs(p.u - 0.5) < 0.38)
             & (((p.v > 0.08) & (p.v < 0.45)) | ((p.v > 0.55) & (p.v < 0.92))))
    img[p.idx] = rng.choice(WOOD) * (grain * np.where(panel, 0.78, 1.0))[:, None]

    # Blinds and shutters: slats.
    p = pixels(BLIND)
    img[p.idx] = rng.choice(SHUTTER) * (0.8 + 0.25 * ((p.y % (3 * px)) < 1.5 * px))[:, None]

    # Stone elements: profile shading (lit top, dark underside); ornaments; round pillars.
    for c in (CORNICE, SILL, MOLDING):
        p = pixels(c)
        img[p.idx] = stone * ((1.15 - 0.45 * p.v) * (1 + 0.04 * noise[p.idx]))[:, None]
    p = pixels(DECO)
    img[p.idx] = stone * (0.8 + 0.35 * np.abs(np.sin(p.u * 9) * np.sin(p.v * 7)))[:, None]
    p = pixels(PILLAR)
    img[p.idx] = np.minimum(stone * 1.1, 255) * (0.5 + 0.6 * np.sin(np.pi * p.u))[:, None]

    # Balconies: a metal railing in front of a dark opening, a stone slab at the bottom.
    p = pixels(BALCONY)
    rail = ((p.x % (4 * px)) < 1.3 * px) | (p.v < 0.12)
    behind = _f32(48, 46, 44) + 40 * (1 - p.v)[:, None]
    balcony = np.where(rail[:, None], _f32(34, 34, 36), behind)
    img[p.idx] = np.where((p.v > 0.86)[:, None], stone * 0.9, balcony)

    # Shadows: soft, cast downwards under protruding elements; inside the top of openings.
    protrude = np.isin(cv.cls, PROTRUDING)
    shadow = np.zeros((h, w), np.float32)
    reach = max(2, int(round(4 * px)))
    for d in range(1, reach + 1):
        np.maximum(shadow[d:], protrude[:-d] * np.float32(1 - (d - 1) / reach), out=shadow[d:])
    shadow[protrude] = 0
    light = 1 - 0.45 * shadow.ravel()
    recess = np.isin(cls, (WINDOW, DOOR, SHOP)) & (at["v"] * fh < 3 * px)
    light[recess] *= 0.55
    # Light falls off towards the street; a slight horizontal gradient from the sun's side.
    light *= 1.08 - 0.28 * (yy / h) + np.float32(rng.uniform(-0.08, 0.08)) * (xx / w - 0.5)
    gain = rng.uniform(0.9, 1.1, size=3) * rng.uniform(0.85, 1.1)  # white balance, exposure
    img *= light[:, None] * gain.astype(np.float32)

    photo = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8).reshape(h, w, 3))
    photo = photo.filter(ImageFilter.BoxBlur(0.5 * px))               # lens softness
    # Sensor noise: uniform, std 3 (random bytes are ~30x cheaper than Gaussian draws).
    grain = np.frombuffer(rng.bytes(h * w * 3), np.uint8).reshape(h, w, 3)
    out = np.asarray(photo, np.float32) + (grain.astype(np.float32) - 127.5) * np.float32(3 / 73.9)
    return np.clip(out, 0, 255).astype(np.uint8)


def render_pair(rng: np.random.Generator, size) -> tuple[np.ndarray, np.ndarray]:
    """One building: ``(labels, photo)``, both uint8 RGB ``HxWx3``. ``size``: int or (h, w)."""
    h, w = (size, size) if np.isscalar(size) else size
    h, w = int(h), int(w)
    if h < 16 or w < 16:
        raise ValueError(f"synthetic images must be at least 16x16, got {w}x{h}")
    cv, top = _layout(rng, h, w)
    return PALETTE[cv.cls], _render_photo(rng, cv, top)


def _write_pair(job) -> None:
    path, size, seed, stream, i = job
    labels, photo = render_pair(np.random.default_rng([seed, stream, i]), size)
    Image.fromarray(np.concatenate([labels, photo], axis=1)).save(path, compress_level=1)


def _write_splits(jobs: list, workers: int | None) -> None:
    """Render in a few processes when there is enough work (each pair depends only on its job,
    so the bytes are the same with any number of workers)."""
    workers = min(os.cpu_count() or 1, 8) if workers is None else max(1, workers)
    if workers == 1 or len(jobs) < 16:
        for job in jobs:
            _write_pair(job)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_pair, jobs, chunksize=8))


def make_dataset(out, n: int = 200, size=256, seed: int = 0, val: int = 0,
                 workers: int | None = None):
    """Write ``n`` training pairs to ``out/train`` (and ``val`` more to ``out/val``).

    Pair ``i`` of a split depends only on ``(seed, split, i)``: the same arguments write
    byte-identical PNGs (with any number of ``workers`` processes; default: one per CPU), and
    a larger ``n`` adds pairs without changing the first ones. Returns ``out`` as a Path."""
    out = Path(out)
    if n < 1:
        raise ValueError("n must be at least 1")
    jobs = []
    for split, count, stream in (("train", n, 0), ("val", val, 1)):
        if count:
            (out / split).mkdir(parents=True, exist_ok=True)
            jobs += [(out / split / f"{i + 1:06d}.png", size, seed, stream, i)
                     for i in range(count)]
    _write_splits(jobs, workers)
    h, w = (size, size) if np.isscalar(size) else size
    meta = {
        "generator": "pix2pix-edge synthetic facades",
        "layout": "aligned [A | B]: A = CMP-style labels, B = photo (train with --direction AtoB)",
        "train": n, "val": val, "height": int(h), "width": int(w), "seed": seed,
        "classes": {name: PALETTE[i].tolist() for i, name in enumerate(CLASSES)},
    }
    (out / "synth.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out
