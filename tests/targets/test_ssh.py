"""The SSH HPC target against a real OpenSSH server on 127.0.0.1 (started by the ``sshd`` fixture)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest

from hil.errors import BundleError, DeployError, TargetTimeoutError
from hil.targets import bundle, create_target
from hil.targets.base import State
from hil.targets.ssh import SshHpcTarget

from . import hostile
from .conftest import free_port, group_members, wait_groups_gone

APP = textwrap.dedent("""\
    echo $$ > "$PIDFILE"
    echo "boot $HIL_TARGET $HIL_COMPONENT $HIL_CONFIG"
    echo "to stderr" >&2
    sleep 600 &
    echo ready
    wait
""")


@pytest.fixture
def ssh_rig(sf, sshd):
    sf.rig_doc["targets"]["hpc"] = {"kind": "hpc", "reach": {
        "via": "ssh", "host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
        "known_hosts": str(sshd.known_hosts), "identity": str(sshd.identity),
        "workdir": str(sshd.dir / "remote")}}
    sf.rig_doc["power"] = {}
    return sf


def make(sf, tmp_path, **components):
    rig = sf.rig()
    stack = sf.stack(components)
    lines = []
    target = create_target("hpc", rig.targets["hpc"], rig, None, tmp_path / "run", lines.append)
    target.grace_ns = 1_000_000_000
    return target, stack, lines


def app(tmp_path, name="fusion", **over):
    comp = {"files": ["app.sh"], "argv": ["sh", "app.sh"], "config": {"gain": 2},
            "env": {"PIDFILE": str(tmp_path / f"{name}.pid")}, "ready": {"console": "^ready$", "timeout": "60s"}}
    comp.update(over)
    return comp


def test_whole_life_cycle_over_ssh(ssh_rig, tmp_path):
    ssh_rig.file("app.sh", APP)
    target, stack, lines = make(ssh_rig, tmp_path, fusion=app(tmp_path), planner=app(tmp_path, "planner"))
    assert isinstance(target, SshHpcTarget)
    remote = Path(target.remote_dir)
    with target:
        target.deploy(ssh_rig.components(stack))
        assert (remote / "bundle/files/fusion/app.sh").read_text() == APP
        target.start()
        target.wait_ready()
        assert target.state is State.READY
        pgids = [int((tmp_path / f"{n}.pid").read_text()) for n in ("fusion", "planner")]
        for pgid in pgids:
            assert len(group_members(pgid)) >= 2  # the component and its sleep
    assert wait_groups_gone(pgids) == {}
    assert not remote.exists() and not remote.parent.exists()
    fusion = [(l.stream, l.text) for l in lines if l.source == "fusion"]
    assert ("stdout", 'boot hpc fusion {"gain": 2}') in fusion
    assert ("stderr", "to stderr") in fusion


def test_crash_during_start_names_component_and_tail(ssh_rig, tmp_path):
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(
        tmp_path, files=[], argv=["sh", "-c", "echo loading map; echo 'fatal: map missing' >&2; exit 4"]))
    with target:
        target.deploy(ssh_rig.components(stack))
        target.start()
        with pytest.raises(DeployError, match=r"(?s)component 'fusion' exited with code 4 during start-up.*"
                                              r"\| loading map.*\| fatal: map missing"):
            target.wait_ready()


def test_never_ready_times_out(ssh_rig, tmp_path):
    ssh_rig.file("app.sh", APP)
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, ready={"console": "calibrated", "timeout": "500ms"}))
    with target:
        target.deploy(ssh_rig.components(stack))
        target.start()
        assert target.log.find("fusion", re.compile("^ready$"), 0, 60) is not None
        with pytest.raises(TargetTimeoutError, match="(?s)not ready after 500ms.*\\| ready"):
            target.wait_ready()
        pgid = int((tmp_path / "fusion.pid").read_text())
    assert wait_groups_gone([pgid]) == {}


def test_checksum_is_verified_on_the_remote_side(ssh_rig, tmp_path):
    ssh_rig.file("app.sh", APP)
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path))
    good = tmp_path / "good.tar.gz"
    bundle.build_stack(stack, good)
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(good) as tin, tarfile.open(bad, "w:gz") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("app.sh"):
                data = data.replace(b"ready", b"reddy")
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    with target, pytest.raises(BundleError, match="(?s)checksum verification of bundle demo 1.0 failed on 127.0.0.1"
                                                  ".*files/fusion/app.sh: FAILED"):
        target.deploy(ssh_rig.components(stack), bad)


def test_unknown_host_key_is_refused(ssh_rig, tmp_path, sshd):
    other = tmp_path / "known_hosts"
    other.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    ssh_rig.rig_doc["targets"]["hpc"]["reach"]["known_hosts"] = str(other)
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, files=[]))
    with target, pytest.raises(DeployError, match=f"host key of 127.0.0.1:{sshd.port} is not trusted by {other}"):
        target.deploy(ssh_rig.components(stack))
    ssh_rig.rig_doc["targets"]["hpc"]["reach"]["known_hosts"] = str(tmp_path / "absent")
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, files=[]))
    with target, pytest.raises(DeployError, match="known_hosts file .*absent does not exist; hil never connects"):
        target.deploy(ssh_rig.components(stack))


def test_wrong_key_is_refused(ssh_rig, tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")], check=True)
    ssh_rig.rig_doc["targets"]["hpc"]["reach"]["identity"] = str(tmp_path / "stranger")
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, files=[]))
    with target, pytest.raises(DeployError, match="127.0.0.1:.* refused key .*stranger"):
        target.deploy(ssh_rig.components(stack))


CONTROLLER = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from hil.spec import load_rig, load_stack
    from hil.targets import components_for, create_target
    rig = load_rig(sys.argv[1]).model
    t = create_target("hpc", rig.targets["hpc"], rig, None, Path(sys.argv[3]))
    t.deploy(components_for(load_stack(sys.argv[2]).model, "hpc"))
    t.start()
    t.wait_ready()
    print("up", flush=True)
    time.sleep(600)
""")


def test_sigkilled_controller_takes_remote_groups_with_it(ssh_rig, tmp_path):
    ssh_rig.file("app.sh", APP)
    ssh_rig.stack({"fusion": app(tmp_path)})
    ssh_rig.rig()
    script = ssh_rig.file("controller.py", CONTROLLER)
    ctl = subprocess.Popen([sys.executable, str(script), str(ssh_rig.root / "rig.yaml"),
                            str(ssh_rig.root / "stack.yaml"), str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert ctl.stdout.readline() == "up\n"
        pgid = int((tmp_path / "fusion.pid").read_text())
        assert group_members(pgid)
        ctl.send_signal(signal.SIGKILL)
    finally:
        ctl.kill()
        ctl.wait()
        ctl.stdout.close()
    assert wait_groups_gone([pgid]) == {}


def test_unreachable_host_is_retried_until_connect_timeout(ssh_rig, tmp_path):
    port = free_port()
    reach = ssh_rig.rig_doc["targets"]["hpc"]["reach"]
    reach.update(port=port, connect_timeout="300ms")
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, files=[]))
    with target, pytest.raises(DeployError, match=f"cannot connect to .*@127.0.0.1:{port} \\(tried for 300ms\\)"):
        target.deploy(ssh_rig.components(stack))


def test_crash_of_one_component_is_reported_while_another_runs(ssh_rig, tmp_path):
    ssh_rig.file("app.sh", APP)
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path), seg=app(
        tmp_path, "seg", files=[], argv=["sh", "-c", "echo dying; kill -SEGV $$"], ready={"console": "never"}))
    with target:
        target.deploy(ssh_rig.components(stack))
        target.start()
        with pytest.raises(DeployError, match=r"(?s)component 'seg' was killed by SIGSEGV during start-up.*\| dying"):
            target.wait_ready()


def test_links_are_verified_on_the_remote_side(ssh_rig, tmp_path):
    """The check script runs on the remote host after unpacking; a tree whose links differ from the
    manifest (as a remote tar or file system may leave it) fails it, naming each link."""
    ssh_rig.file("app.sh", APP)
    ssh_rig.file("lib/real.txt", "real\n")
    (ssh_rig.root / "lib" / "current").symlink_to("real.txt")
    (ssh_rig.root / "lib" / "also").symlink_to("real.txt")
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, files=["app.sh", "lib"]))
    manifest = bundle.build_stack(stack, tmp_path / "good.tar.gz")
    script = bundle.remote_checks(manifest, ["fusion"])
    with target:
        target.deploy(ssh_rig.components(stack), tmp_path / "good.tar.gz")  # the true links pass
        remote = Path(target.remote_dir) / "bundle"
        assert (remote / "files/fusion/lib/current").readlink() == Path("real.txt")
        (remote / "files/fusion/lib/current").unlink()
        (remote / "files/fusion/lib/current").symlink_to("other.txt")
        (remote / "files/fusion/lib/also").unlink()
        checked = subprocess.run(["sh", "-s"], input=script, cwd=remote, capture_output=True, text=True)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == ["files/fusion/lib/also: expected a link to real.txt",
                                           "files/fusion/lib/current: expected a link to real.txt"]


def test_the_remote_check_resolves_links_completely(ssh_rig, tmp_path):
    """Tampered remotely with every link text kept: a file swapped for a link out, a folder swapped
    for a link out. ``readlink -e`` follows the chains; the folder and file checks see the swaps."""
    ssh_rig.file("app.sh", APP)
    ssh_rig.file("lib/real.txt", "real\n")
    ssh_rig.file("lib/sub/data.txt", "data\n")
    (ssh_rig.root / "lib" / "current").symlink_to("real.txt")
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path, files=["app.sh", "lib"]))
    manifest = bundle.build_stack(stack, tmp_path / "good.tar.gz")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "real.txt").write_text("real\n")
    (outside / "sub/data.txt").write_text("data\n")
    with target:
        target.deploy(ssh_rig.components(stack), tmp_path / "good.tar.gz")
        lib = Path(target.remote_dir) / "bundle/files/fusion/lib"
        (lib / "real.txt").unlink()
        (lib / "real.txt").symlink_to(outside / "real.txt")
        shutil.rmtree(lib / "sub")
        (lib / "sub").symlink_to(outside / "sub")
        checked = subprocess.run(["sh", "-s"], input=bundle.remote_checks(manifest, ["fusion"]),
                                 cwd=lib.parents[2], capture_output=True, text=True)
        sums = subprocess.run(["sha256sum", "-c", "--strict", "--quiet", "-"], cwd=lib.parents[2],
                              input=bundle.sha256sums(manifest, ["fusion"]), capture_output=True, text=True)
    assert checked.returncode == 1
    assert checked.stdout.splitlines() == [
        "files/fusion/lib/sub: expected a folder",
        f"files/fusion/lib/current: link leads to {outside / 'real.txt'}, outside its component",
        "files/fusion/lib/real.txt: expected a regular file"]
    assert sums.returncode == 0  # the same bytes outside: checksums alone would not have seen it


def test_a_bundle_with_a_chain_of_links_out_is_refused_before_upload(ssh_rig, tmp_path):
    ssh_rig.file("app.sh", APP)
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path))
    bundle.build_stack(stack, tmp_path / "good.tar.gz")
    evil = hostile.with_links(tmp_path / "good.tar.gz", tmp_path / "evil.tar.gz", "fusion",
                              {"z": "a/b/l/../../..", "a/b/l": "../.."})
    with target, pytest.raises(BundleError) as exc:
        target.deploy(ssh_rig.components(stack), evil)
    assert str(exc.value) == (f"{evil}: manifest.json: component 'fusion': symbolic link 'z' -> 'a/b/l/../../..' "
                              "leaves the component's folder")
    assert not Path(target.remote_dir).exists()


# -- nothing from the stack runs in a shell --------------------------------------------------------


def test_hostile_values_and_arguments_reach_the_remote_process_exactly(ssh_rig, tmp_path):
    marker = tmp_path / "pwned"
    ssh_rig.rig_doc["targets"]["hpc"]["reach"]["python"] = sys.executable
    args, env = hostile.argv(marker), hostile.values(marker)
    target, stack, _ = make(ssh_rig, tmp_path, x={"argv": ["{python}", "-c", hostile.SHOW, *args], "env": env,
                                                  "ready": {"console": "^ready$", "timeout": "60s"}})
    with target:
        target.deploy(ssh_rig.components(stack))
        target.start()
        target.wait_ready()
        shown = json.loads(next(line.text for line in target.log.tail("x") if line.text.startswith("{")))
    assert shown == {"argv": [a.replace("{python}", sys.executable) for a in args], "env": env}
    assert not marker.exists()


def test_an_environment_name_that_would_be_a_command_is_refused_before_connecting(ssh_rig, tmp_path):
    marker = tmp_path / "pwned"
    target, stack, _ = make(ssh_rig, tmp_path, x={"argv": ["true"]})
    for name in hostile.bad_names(marker):
        comps = {"x": ssh_rig.components(stack)["x"].model_copy(update={"env": {name: "v"}})}
        with target, pytest.raises(DeployError) as exc:
            target.deploy(comps)
        assert str(exc.value) == (f"target 'hpc': component 'x': environment variable name {name!r} is not a name "
                                  "(letters, digits and _, not starting with a digit); refused")
    assert not marker.exists() and not Path(target.remote_dir).parent.exists()


@pytest.mark.parametrize("update, message", [
    ({"env": {"A": "x\0; touch pwned"}}, "environment variable A holds a NUL byte, which no process environment "
                                         "can carry; refused"),
    ({"argv": ["sh", "-c", "true\0; touch pwned"]}, "argv[2] holds a NUL byte, which no program argument can "
                                                    "carry; refused"),
])
def test_a_nul_byte_is_refused_before_connecting(ssh_rig, tmp_path, update, message):
    target, stack, _ = make(ssh_rig, tmp_path, x={"argv": ["true"]})
    comps = {"x": ssh_rig.components(stack)["x"].model_copy(update=update)}
    with target, pytest.raises(DeployError) as exc:
        target.deploy(comps)
    assert str(exc.value) == f"target 'hpc': component 'x': {message}"
    assert not Path(target.remote_dir).parent.exists()


def test_a_component_name_cannot_lead_out_of_the_remote_folder(ssh_rig, tmp_path):
    target, stack, _ = make(ssh_rig, tmp_path, x={"argv": ["true"]})
    comps = {"../../../x": ssh_rig.components(stack)["x"]}
    with target, pytest.raises(BundleError, match=r"^component name '../../../x' contains '/'; it is a folder "
                                                  r"of the bundle$"):
        target.deploy(comps)
    assert not Path(target.remote_dir).parent.exists()


def test_a_stack_version_cannot_lead_out_of_the_run_folder(ssh_rig, tmp_path):
    from hil.targets.deployment import Deployment

    ssh_rig.file("app.sh", APP)
    stack = ssh_rig.stack({"x": app(tmp_path)}).model_copy(update={"version": "../../../escape"})
    run = tmp_path / "runs" / "r1"
    with pytest.raises(BundleError, match=r"^stack version '../../../escape' contains '/'; it is part of the "
                                          r"bundle's file name$"), Deployment(ssh_rig.rig(), stack, None, run) as d:
        d.up()
    assert not (tmp_path / "escape").exists() and not run.exists()


def test_a_hostile_workdir_is_a_folder_name_and_nothing_more(ssh_rig, tmp_path, sshd):
    marker = tmp_path / "pwned"
    workdir = f"{sshd.dir}/remote; touch {marker} $(touch {marker}) `touch {marker}`"
    ssh_rig.rig_doc["targets"]["hpc"]["reach"]["workdir"] = workdir
    ssh_rig.file("app.sh", APP)
    target, stack, _ = make(ssh_rig, tmp_path, fusion=app(tmp_path))
    with target:
        target.deploy(ssh_rig.components(stack))
        target.start()
        target.wait_ready()
        assert Path(target.remote_dir).is_relative_to(workdir)
        assert (Path(target.remote_dir) / "bundle/files/fusion/app.sh").read_text() == APP
    assert not marker.exists()


def test_known_hosts_and_identity_are_read_as_bounded_regular_files(ssh_rig, tmp_path, sshd):
    fifo = tmp_path / "known_hosts"
    os.mkfifo(fifo)
    ssh_rig.rig_doc["targets"]["hpc"]["reach"]["known_hosts"] = str(fifo)
    target, stack, _ = make(ssh_rig, tmp_path, x={"argv": ["true"]})
    with target, pytest.raises(DeployError) as exc:
        target.deploy(ssh_rig.components(stack))
    assert str(exc.value) == (f"target 'hpc': known_hosts file {fifo} is not a regular file (a FIFO); hil never "
                              "connects without checking the host key")
    ssh_rig.rig_doc["targets"]["hpc"]["reach"].update(known_hosts=str(sshd.known_hosts), identity="/dev/zero")
    target, stack, _ = make(ssh_rig, tmp_path, x={"argv": ["true"]})
    with target, pytest.raises(DeployError) as exc:
        target.deploy(ssh_rig.components(stack))
    assert str(exc.value) == "target 'hpc': identity /dev/zero is not a regular file (a character device)"
