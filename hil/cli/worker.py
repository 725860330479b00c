"""``hil worker``: serve this lab host's rigs to a Dask scheduler, one bench per rig at a time."""

from __future__ import annotations

from pathlib import Path

import click

from hil.cli.app import App, Seconds, plain


@click.command()
@click.argument("rigs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--scheduler", required=True, envvar="HIL_SCHEDULER", metavar="tcp://HOST:8786",
              help="Address of the lab's Dask scheduler (also HIL_SCHEDULER); tls://... for TLS.")
@click.option("--name", help="Worker name shown to the scheduler [default: HOST/RIG+RIG...].")
@click.option("--listen", metavar="HOST", help="Interface to listen on [default: chosen by Dask].")
@click.option("--runs", type=click.Path(file_okay=False, path_type=Path), default=Path("runs"),
              show_default=True, help="Folder the run folders of dispatched benches go into.")
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=Path("."),
              help="Checkout that relative suite paths resolve against [default: current folder].")
@click.option("--lease-wait", type=Seconds(forever=True), default=0.0, show_default=True, metavar="SECONDS",
              help="How long a bench waits for a rig leased locally on this host (0: error at once).")
@click.option("--connect-timeout", type=Seconds(), default=60.0, show_default=True, metavar="SECONDS",
              help="Give up when the scheduler cannot be reached for this long (a service manager restarts us).")
@click.option("--tls-ca-file", type=click.Path(exists=True, dir_okay=False), help="CA certificate (PEM).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="This worker's certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="This worker's private key (PEM).")
@click.pass_obj
def worker(app: App, rigs: tuple[str, ...], scheduler: str, name: str | None, listen: str | None,
           runs: Path, root: Path, lease_wait: float, connect_timeout: float, tls_ca_file: str | None,
           tls_cert: str | None, tls_key: str | None) -> None:
    """Serve RIG.yaml... to the scheduler: each rig becomes the resource rig-NAME=1."""
    import asyncio
    import logging

    from hil.cluster.worker import LabHost, load_rigs, resource_name, serve

    owned = load_rigs(list(rigs))
    runs.mkdir(parents=True, exist_ok=True)
    host = LabHost(owned, runs.resolve(), root.resolve(), lease_wait if lease_wait > 0 else None)
    logging.basicConfig(level=logging.WARNING if app.verbosity < 1 else logging.INFO)
    logging.getLogger("distributed").setLevel(logging.INFO if app.verbosity >= 1 else logging.WARNING)

    def ready(w) -> None:
        offered = ", ".join(f"{resource_name(r)}=1" for r in owned)
        app.print(plain(f"worker {w.name} at {w.address} serving {offered} to {scheduler}"), level=-1)
        app.console.file.flush()

    asyncio.run(serve(scheduler, host, name=name, listen=listen,
                      security=_security(scheduler, tls_ca_file, tls_cert, tls_key),
                      connect_timeout=connect_timeout, on_ready=ready))
    app.print("worker stopped", level=-1)


def _security(scheduler: str, ca: str | None, cert: str | None, key: str | None):
    """TLS settings from the options, else from dask config (``distributed.comm.tls.*``)."""
    from distributed.security import Security

    from hil.errors import UsageError

    given = [x for x in (ca, cert, key) if x]
    if given and len(given) != 3:
        raise UsageError("TLS needs all three of --tls-ca-file, --tls-cert and --tls-key")
    if given:
        return Security(tls_ca_file=ca, tls_worker_cert=cert, tls_worker_key=key, require_encryption=True)
    if scheduler.startswith("tls://"):
        return Security()
    return None
