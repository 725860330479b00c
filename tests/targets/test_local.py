"""The local HPC target through its whole life cycle, with real processes and process groups."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hil.errors import BundleError, DeployError, TargetStateError, TargetTimeoutError
from hil.targets import create_target
from hil.targets.base import State
from hil.targets.local import LocalHpcTarget
from hil.targets.power import switches_for

from .conftest import group_members, wait_groups_gone

APP = textwrap.dedent("""\
    import json, os, signal, sys, time
    cfg = json.loads(os.environ["HIL_CONFIG"])
    print("boot", os.environ["HIL_TARGET"], os.environ["HIL_COMPONENT"], cfg["gain"], os.environ.get("EXTRA"))
    print("warning on stderr", file=sys.stderr)
    if cfg.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready")
    time.sleep(600)
""")


def make(sf, tmp_path, **components):
    rig = sf.rig()
    stack = sf.stack(components)
    lines = []
    target = create_target("hpc", rig.targets["hpc"], rig, None, tmp_path / "run", lines.append)
    return target, stack, lines


def app_component(**over):
    comp = {"files": ["app"], "argv": ["{python}", "app/main.py"], "config": {"gain": 2},
            "env": {"EXTRA": "x"}, "ready": {"console": "^ready$", "timeout": "60s"}}
    comp.update(over)
    return comp


def test_whole_life_cycle_runs_real_processes_in_own_groups(sf, tmp_path):
    sf.file("app/main.py", APP)
    target, stack, lines = make(sf, tmp_path, fusion=app_component(), planner=app_component())
    assert isinstance(target, LocalHpcTarget)
    with target:
        target.deploy(sf.components(stack))
        assert target.state is State.DEPLOYED
        assert (target.sandbox / "files" / "fusion" / "app" / "main.py").read_text() == APP
        target.start()
        target.wait_ready()
        assert target.state is State.READY
        groups = target.pgids()
        assert set(groups) == {"fusion", "planner"}
        for pgid in groups.values():
            assert os.getpgid(pgid) == pgid != os.getpgid(0)
            assert group_members(pgid)
    assert target.state is State.STOPPED
    assert wait_groups_gone(groups.values()) == {}
    fusion = [(l.stream, l.text) for l in lines if l.source == "fusion"]
    assert ("stdout", "boot hpc fusion 2 x") in fusion
    assert ("stderr", "warning on stderr") in fusion
    assert all(a.t_ns <= b.t_ns for a, b in zip(lines, lines[1:]) if a.source == b.source and a.stream == b.stream)


def test_start_before_deploy_names_the_state(sf, tmp_path):
    target, _, _ = make(sf, tmp_path, fusion=app_component(files=[]))
    with pytest.raises(TargetStateError, match="cannot start while idle; expected deployed"):
        target.start()


def test_crash_during_start_is_a_deploy_error_with_console_tail(sf, tmp_path):
    crash = "import sys\nfor i in range(30):\n    print('line', i)\nprint('fatal: no calibration')\nsys.exit(3)\n"
    sf.file("crash.py", crash)
    target, stack, _ = make(sf, tmp_path, fusion=app_component(files=["crash.py"], argv=["{python}", "crash.py"]))
    with target:
        target.deploy(sf.components(stack))
        target.start()
        with pytest.raises(DeployError) as err:
            target.wait_ready()
        assert target.state is State.BROKEN
    msg = str(err.value)
    assert "component 'fusion' exited with code 3 during start-up" in msg
    assert "fatal: no calibration" in msg
    assert "line 29" in msg and "line 10" not in msg  # the last 20 lines only


@pytest.mark.parametrize("sig", ["SEGV", "KILL"])  # SIGKILL: the leash cannot install a handler for it
def test_killed_by_signal_is_named(sf, tmp_path, sig):
    target, stack, _ = make(sf, tmp_path, seg=app_component(files=[], argv=["sh", "-c", f"echo x; kill -{sig} $$"],
                                                            ready={"console": "never"}))
    with target:
        target.deploy(sf.components(stack))
        target.start()
        with pytest.raises(DeployError, match=f"'seg' was killed by SIG{sig}"):
            target.wait_ready()


def test_never_ready_times_out_with_console_tail(sf, tmp_path):
    sf.file("app/main.py", APP)
    target, stack, _ = make(sf, tmp_path, fusion=app_component(ready={"console": "^calibrated", "timeout": "300ms"}))
    with target:
        target.deploy(sf.components(stack))
        target.start()
        assert target.log.find("fusion", re.compile("^ready$"), 0, 60) is not None
        with pytest.raises(TargetTimeoutError) as err:
            target.wait_ready()
        groups = target.pgids()
    msg = str(err.value)
    assert "component 'fusion' not ready after 300ms: expected console line matching '^calibrated'" in msg
    assert "| boot hpc fusion 2 x" in msg
    assert wait_groups_gone(groups.values()) == {}


def test_missing_program_is_named(sf, tmp_path):
    target, stack, _ = make(sf, tmp_path, fusion=app_component(files=[], argv=["no-such-program-hil"]))
    with target:
        target.deploy(sf.components(stack))
        target.start()
        with pytest.raises(DeployError, match="(?s)exited with code 127.*cannot start 'no-such-program-hil'"):
            target.wait_ready()


def test_stop_escalates_to_sigkill_for_a_component_ignoring_sigterm(sf, tmp_path):
    sf.file("app/main.py", APP)
    target, stack, _ = make(sf, tmp_path, stubborn=app_component(config={"gain": 1, "ignore_term": True}))
    target.grace_ns = 300_000_000
    target.deploy(sf.components(stack))
    target.start()
    target.wait_ready()
    pgid = target.pgids()["stubborn"]
    proc = target._procs["stubborn"]
    target.stop()
    assert proc.poll() == -signal.SIGKILL
    assert wait_groups_gone([pgid]) == {}


def test_grandchildren_are_stopped_with_their_group(sf, tmp_path):
    target, stack, _ = make(sf, tmp_path, shell=app_component(
        files=[], argv=["sh", "-c", "sleep 600 & sleep 600 & echo ready; wait"]))
    with target:
        target.deploy(sf.components(stack))
        target.start()
        target.wait_ready()
        pgid = target.pgids()["shell"]
        assert len(group_members(pgid)) >= 4  # leash, sh, two sleeps
    assert wait_groups_gone([pgid]) == {}


def test_socket_ready(sf, tmp_path):
    sock = tmp_path / "svc.sock"
    server = f"import socket,time\ns=socket.socket(socket.AF_UNIX)\ntime.sleep(0.3)\ns.bind({str(sock)!r})\ns.listen()\ntime.sleep(600)\n"
    sf.file("server.py", server)
    target, stack, _ = make(sf, tmp_path, svc=app_component(files=["server.py"], argv=["{python}", "server.py"],
                                                            ready={"socket": f"unix:{sock}", "timeout": "60s"}))
    with target:
        target.deploy(sf.components(stack))
        target.start()
        target.wait_ready()
        assert sock.exists()


def test_deploy_refuses_a_bundle_with_a_tampered_file(sf, tmp_path):
    from hil.targets import bundle

    sf.file("app/main.py", APP)
    target, stack, _ = make(sf, tmp_path, fusion=app_component())
    archive = tmp_path / "demo.tar.gz"
    bundle.build_stack(stack, archive)
    sf.file("app/main.py", APP + "# changed\n")
    tampered = tmp_path / "tampered.tar.gz"
    _rewrite_keeping_manifest(archive, tampered, sf.root / "app/main.py")
    with target, pytest.raises(BundleError, match="files/fusion/app/main.py: sha256"):
        target.deploy(sf.components(stack), tampered)


def _rewrite_keeping_manifest(src: Path, dst: Path, new_file: Path) -> None:
    import io
    import tarfile

    with tarfile.open(src) as tin, tarfile.open(dst, "w:gz") as tout:
        for m in tin.getmembers():
            if m.name.endswith("main.py"):
                data = new_file.read_bytes()
                m.size = len(data)
                tout.addfile(m, io.BytesIO(data))
            else:
                tout.addfile(m, tin.extractfile(m) if m.isfile() else None)


def test_emulated_power_off_kills_and_on_boots_again(sf, tmp_path):
    sf.file("app/main.py", APP)
    target, stack, lines = make(sf, tmp_path, fusion=app_component())
    switch = switches_for(sf.rig(), {"hpc": target})["sim-power"]
    with target:
        target.deploy(sf.components(stack))
        target.start()
        target.wait_ready()
        first = target.pgids()["fusion"]
        switch.off()
        assert target.state is State.DEPLOYED
        assert target.pgids() == {}
        assert wait_groups_gone([first]) == {}
        switch.on()
        assert target.state is State.RUNNING
        target.wait_ready()
        second = target.pgids()["fusion"]
        assert second != first and group_members(second)
    assert [l.text for l in lines if l.text == "ready"] == ["ready", "ready"]


CONTROLLER = textwrap.dedent("""\
    import json, sys, time
    from pathlib import Path
    from hil.spec import load_rig, load_stack
    from hil.targets import components_for, create_target
    rig = load_rig(sys.argv[1]).model
    stack = load_stack(sys.argv[2]).model
    t = create_target("hpc", rig.targets["hpc"], rig, None, Path(sys.argv[3]))
    t.deploy(components_for(stack, "hpc"))
    t.start()
    t.wait_ready()
    print(json.dumps(t.pgids()), flush=True)
    time.sleep(600)
""")


def test_sigkilled_controller_takes_every_process_group_with_it(sf, tmp_path):
    sf.file("app/main.py", APP)
    stack_doc = {"fusion": app_component(),
                 "shell": app_component(files=[], argv=["sh", "-c", "sleep 600 & echo ready; wait"])}
    sf.stack(stack_doc)
    sf.rig()
    script = sf.file("controller.py", CONTROLLER)
    ctl = subprocess.Popen([sys.executable, str(script), str(sf.root / "rig.yaml"), str(sf.root / "stack.yaml"),
                            str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        groups = json.loads(ctl.stdout.readline())
        assert set(groups) == {"fusion", "shell"}
        assert all(group_members(g) for g in groups.values())
        ctl.send_signal(signal.SIGKILL)
    finally:
        ctl.kill()
        ctl.wait()
        ctl.stdout.close()
    assert wait_groups_gone(groups.values()) == {}


def test_redeploy_after_stop_starts_from_a_clean_sandbox(sf, tmp_path):
    sf.file("app/main.py", APP)
    sf.file("old.txt", "old")
    target, stack, _ = make(sf, tmp_path, fusion=app_component(files=["app", "old.txt"]))
    with target:
        target.deploy(sf.components(stack))
    assert target.state is State.STOPPED
    assert (target.sandbox / "files/fusion/old.txt").exists()
    stack = sf.stack({"fusion": app_component()})
    with target:
        target.deploy(sf.components(stack))
        target.start()
        target.wait_ready()
        assert not (target.sandbox / "files/fusion/old.txt").exists()
