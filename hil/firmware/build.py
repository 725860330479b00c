"""Build a firmware image from a stub folder (``firmware_stubs/NAME``) and its ``firmware.yaml``.

The manifest is validated like every spec file (errors at file:line:col); the folder's files, plus
the manifest as ``manifest.json``, become a deterministic zip payload (sorted members, fixed
timestamps), so building twice gives the same bytes and the same CRC32.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from pydantic import Field

from hil.errors import SpecError
from hil.firmware.image import FIELD_LEN, Image, RawImage
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
    problems = [(("dbc", i), f"file {name!r} not found in {folder}")
                for i, name in enumerate(spec.model.dbc) if not (folder / name).is_file()]
    problems += [((key,), f"at most {FIELD_LEN} bytes of UTF-8 fit the image header, got "
                          f"{len(getattr(spec.model, key).encode())}")
                 for key in ("name", "version") if len(getattr(spec.model, key).encode()) > FIELD_LEN]
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
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(_files(folder)):
            _add(zf, path.relative_to(folder).as_posix(), path.read_bytes())
        _add(zf, "manifest.json", json.dumps(manifest.model_dump(), sort_keys=True).encode())
    return Image(manifest.name, manifest.version, buf.getvalue())


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*")
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".") and p.suffix != ".hilfw"
            and not SKIP_DIRS.intersection(p.relative_to(folder).parts)]


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
    from hil.firmware.image import ImageError, parse

    path = Path(path)
    if path.is_dir():
        return build(path)
    try:
        if path.suffix.lower() == RawImage.suffix:
            return RawImage(path.stem, "", path.read_bytes())
        if path.suffix.lower() == ".elf":
            return RawImage(path.stem, "", flash_bytes(path.read_bytes(), PART.flash_start, PART.flash_size))
        return parse(path.read_bytes())
    except OSError as exc:
        raise DeployError(f"cannot read firmware image {path}: {exc.strerror or exc}") from None
    except (ImageError, ElfImageError) as exc:
        raise DeployError(f"firmware image {path} is invalid: {exc}") from None
