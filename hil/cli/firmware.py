"""``hil firmware``: build firmware images from stub folders and inspect images."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App


@click.group()
def firmware() -> None:
    """Firmware images: build from a stub folder, show an image's header."""


@firmware.command()
@click.argument("folder", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Image file to write (default: NAME-VERSION.hilfw in the current folder).")
@click.pass_obj
def build(app: App, folder: str, output: str | None) -> None:
    """Build FOLDER (a firmware_stubs/NAME folder with firmware.yaml) into an image."""
    from hil.firmware.build import build as build_image

    image = build_image(folder)
    path = Path(output or f"{image.name}-{image.version}.hilfw")
    path.write_bytes(image.to_bytes())
    app.print(f"built {path}: {image.name} {image.version}, {len(image.to_bytes())} bytes, "
              f"crc32 {image.crc32:#010x}", level=-1)


@firmware.command()
@click.argument("image", type=click.Path(dir_okay=False, exists=True))
@click.pass_obj
def info(app: App, image: str) -> None:
    """Verify IMAGE and show its header and files (exit 2 when it would not boot)."""
    from hil.files import FileRefused, read_bytes
    from hil.firmware.image import FILE_LIMIT, ImageError, parse

    try:
        img = parse(read_bytes(image, FILE_LIMIT, "firmware image"))
        files = img.files()
    except FileRefused as exc:
        app.abort(str(exc))
    except ImageError as exc:
        app.abort(f"{image}: {exc}")
    app.print(f"{img.name} {img.version}: payload {len(img.payload)} bytes, crc32 {img.crc32:#010x} ok", level=-1)
    for name, data in files.items():
        app.print(f"  {name} ({len(data)} bytes)")
