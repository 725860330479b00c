"""Build a firmware image from a stub folder (``firmware_stubs/NAME``) and its ``firmware.yaml``.

The manifest is validated like every spec file (errors at file:line:col); the folder's files, plus
the manifest as ``manifest.json``, become a deterministic zip payload (sorted members, fixed
timestamps), so building twice gives the same bytes and the same CRC32. Only regular files are
packed, each read within the payload's size limit; a symbolic link is packed as the file it names,
which must be in the folder; a FIFO, device or socket in the folder is an error, never read.
"""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

from pydantic import Field

from hil.errors import SpecError
from hil.files import FileRefused, kind_text, name_problem, read_bytes
from hil.firmware.image import FIELD_LEN, FILE_LIMIT, PAYLOAD, Image, ImageError, RawImage
from hil.spec.common import Name, Spec

MANIFEST = "firmware.yaml"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
SKIP_DIRS = {"__pycache__"}


class FirmwareManifest(Spec):
    """What a stub folder declares: identity, entry point, DBC files, tick rate, default config."""

    name: Name
    version: str = Field(min_length=1, max_length=32)
    description: str = ""
    entry: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$",
                       description="module:function in this folder, called with the Mcu at boot")
    dbc: list[str] = Field(default_factory=list, description="DBC files in this folder")
    tick_hz: int = Field(1000, ge=1, le=20_000)
    config: dict[str, Any] = Field(default_factory=dict, description="defaults; the stack's config overrides")


def load_manifest(folder: Path) -> FirmwareManifest:
    from hil.spec.load import load

    spec = load(folder / MANIFEST, FirmwareManifest)
    problems: list[tuple[tuple, str]] = [(("dbc", i), f"file {name!r} not found in {folder}")
                for i, name in enumerate(spec.model.dbc) if not (folder / name).is_file()]
    problems += [((key,), f"at most {FIELD_LEN} bytes of UTF-8 fit the image header, got "
                          f"{len(getattr(spec.model, key).encode())}")
                 for key in ("name", "version") if len(getattr(spec.model, key).encode()) > FIELD_LEN]
    if problem := name_problem(spec.model.version):
        problems.append((("version",), f"{spec.model.version!r} {problem}; it is part of the image's file name"))
    module = spec.model.entry.split(":")[0]
    if not (folder / f"{module}.py").is_file():
        problems.append((("entry",), f"module {module!r} needs {module}.py in {folder}"))
    if problems:
        raise spec.error(problems)
    return spec.model


def build(folder: str | Path) -> Image:
    """Validate ``folder``'s manifest and pack the folder into an :class:`Image`."""
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        raise SpecError(f"{folder}: expected a firmware stub folder with {MANIFEST}, none found")
    manifest = load_manifest(folder)
    buf = io.BytesIO()
    left = PAYLOAD.size  # what the folder's files may add up to
    try:
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in _files(folder):
                data = read_bytes(path, left, "firmware file")
                left -= len(data)
                _add(zf, path.relative_to(folder).as_posix(), data)
            _add(zf, "manifest.json", json.dumps(manifest.model_dump(), sort_keys=True).encode())
        image = Image(manifest.name, manifest.version, buf.getvalue())
        image.files()  # what a target would refuse is refused here
    except (FileRefused, ImageError) as exc:
        raise SpecError(f"{folder}: {exc}") from None
    return image


def _files(folder: Path) -> list[Path]:
    """The files to pack, sorted: regular files, and links that resolve to one in ``folder``
    (links to folders are not followed, as before)."""
    root = folder.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in filenames:
            path = Path(dirpath, name)
            if name == MANIFEST or name.startswith(".") or path.suffix == ".hilfw":
                continue
            mode = path.lstat().st_mode
            to = Path(os.path.realpath(path))
            if stat.S_ISLNK(mode) and not (to.is_relative_to(root) and to.is_file()):
                raise SpecError(f"{folder}: {path.relative_to(folder)} is a symbolic link to {to}, which is not "
                                "a file in the folder; refused")
            if not stat.S_ISREG(mode) and not stat.S_ISLNK(mode):
                raise SpecError(f"{folder}: {path.relative_to(folder)} is not a regular file ({kind_text(mode)}); "
                                "refused")
            found.append(path)
    return sorted(found)


def _add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def load_image(path: str | Path) -> Image | RawImage:
    """An image from a built ``.hilfw`` file, built on the fly from a stub folder, or an MCU's
    machine code: a raw ``.bin`` or the ``.elf`` the linker wrote (its version unknown: ``""``)."""
    from hil.cortexm.elf import ElfImageError, flash_bytes
    from hil.cortexm.part import PART
    from hil.errors import DeployError
    from hil.firmware.image import parse

    path = Path(path)
    if path.is_dir():
        return build(path)
    try:
        data = read_bytes(path, FILE_LIMIT, "firmware image")
        if path.suffix.lower() == RawImage.suffix:
            return RawImage(path.stem, "", data)
        if path.suffix.lower() == ".elf":
            return RawImage(path.stem, "", flash_bytes(data, PART.flash_start, PART.flash_size))
        return parse(data)
    except FileRefused as exc:
        raise DeployError(str(exc)) from None
    except (ImageError, ElfImageError) as exc:
        raise DeployError(f"firmware image {path} is invalid: {exc}") from None
