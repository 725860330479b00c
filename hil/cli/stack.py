"""``hil stack build STACK.yaml``: pack a stack into a versioned bundle with a checksum manifest."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App, plain


@click.group()
def stack() -> None:
    """Stack bundles: build them ahead of a deploy."""


@stack.command()
@click.argument("stack_file", metavar="STACK.yaml", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(), default=None,
              help="Bundle file or folder (default: NAME-VERSION.tar.gz in the current folder).")
@click.pass_obj
def build(app: App, stack_file: str, output: str | None) -> None:
    """Write NAME-VERSION.tar.gz: every component's files and a manifest (sha256 per file, component → target)."""
    from rich.table import Table

    from hil.spec import load_stack
    from hil.targets import bundle

    model = load_stack(stack_file).model
    out = Path(output) if output else Path.cwd()
    if output is None or out.is_dir():
        out = bundle.bundle_path(out, model)
    manifest = bundle.build_stack(model, out)
    table = Table(box=None, pad_edge=False)
    for col in ("component", "target", "kind", "files", "bytes"):
        table.add_column(col, justify="right" if col in ("files", "bytes") else "left")
    for name, comp in manifest.components.items():
        size = sum(e.size for e in comp.files.values())
        table.add_row(name, comp.target, comp.kind, str(len(comp.files)), str(size))
    app.print(table, level=0)
    app.print(f"[green]built[/] {plain(out)} — {manifest.name} {manifest.version}, sha256 {bundle.file_sha256(out)}",
              level=-1)
