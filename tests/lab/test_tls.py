"""The lab over TLS: scheduler, ``hil worker`` and the submitter with certificates from one CA, as
docs/lab.md sets them up; a submitter without TLS settings is told what is missing."""

from __future__ import annotations

import subprocess

import pytest
from distributed.security import Security

from hil.cluster.dispatch import Lab
from hil.errors import ClusterError

from .cluster import RIGS, HilWorker, Scheduler


def make_certs(tmp) -> dict[str, tuple[str, str]]:
    """A CA and a certificate per role, with openssl as in docs/lab.md; role → (cert, key)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hil-lab-ca",
            "-keyout", "ca.key", "-out", "ca.pem")
    out = {}
    for who in ("scheduler", "worker", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=hil-{who}", "-keyout", f"{who}.key",
                "-out", f"{who}.csr")
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-out", f"{who}.pem")
        out[who] = (str(tmp / f"{who}.pem"), str(tmp / f"{who}.key"))
    return out


def test_worker_and_submitter_over_tls(tmp_path):
    certs = make_certs(tmp_path)
    ca = str(tmp_path / "ca.pem")
    sched = Scheduler(tmp_path, "--protocol", "tls", "--tls-ca-file", ca, "--tls-cert", certs["scheduler"][0],
                      "--tls-key", certs["scheduler"][1])
    worker = None
    try:
        assert sched.address.startswith("tls://127.0.0.1:")
        worker = HilWorker(sched.address, tmp_path, str(RIGS / "sim-lab-a.yaml"),
                           args=("--tls-ca-file", ca, "--tls-cert", certs["worker"][0], "--tls-key", certs["worker"][1]))
        security = Security(tls_ca_file=ca, tls_client_cert=certs["client"][0], tls_client_key=certs["client"][1],
                            require_encryption=True)
        with Lab(sched.address, security=security, timeout=60) as lab:
            lab.client.wait_for_workers(1, timeout=120)
            assert list(lab.offers()) == ["sim-lab-a"]
            assert lab.offers()["sim-lab-a"][0].startswith("tls://")
        with pytest.raises(ClusterError, match=f"the scheduler at {sched.address} speaks TLS, but no TLS settings"):
            Lab(sched.address, timeout=2)  # no certificate: refused before connecting
    finally:
        if worker is not None:
            worker.stop()
        sched.stop()
