"""The core on the run clock: the exception model, SysTick and TIM2, pacing, WFI, in-application
programming, the watchdog and the console — each through a real program built for the part."""

from __future__ import annotations

import time

from hil.cortexm.core import LEARN_EVERY, MAX_LEAD_NS, MIN_LEAD_NS, RECENT_EVENTS, unmasking_sites


def test_exceptions_preempt_tail_chain_and_mask_by_priority(run_image, programs):
    run = run_image(programs / "exceptions.elf")
    order = run.wait_for(r"exceptions: (\S+)\r\n").group(1)
    # L (prio 0x80) is preempted by H (0x40) it pends; after CPSIE, H and T (equal priority, lower
    # number first) and L tail-chain; BASEPRI 0x60 holds L back until cleared; SVC #5 sees its
    # immediate; PendSV; an interrupt taken from a thread on PSP returns to the PSP
    assert order == "LHl" + "HTLHl" + "|HbLHl" + "|5P" + "|Hp"
    assert not run.faults and not run.diagnostics


def test_systick_and_tim2_run_on_the_run_clock_and_a_busy_core_is_paced_to_hclk(run_image, programs):
    run = run_image(programs / "timing.elf")
    ticks = int(run.wait_for(r"200 ticks in (\d+) us").group(1))
    busy = int(run.wait_for(r"busy loop (\d+) us").group(1))
    assert ticks >= 199_900  # TIM2 measures SysTick: 200 periods of 1 ms can never take less
    assert busy >= 110_000  # 8,000,000 cycles at 72 MHz: the core never runs faster than HCLK


def test_a_sleeping_core_costs_little_host_time(run_image, programs):
    run = run_image(programs / "exceptions.elf")  # ends in WFI with nothing enabled that fires
    run.wait_for(r"exceptions: ")
    time.sleep(0.2)
    before = time.thread_time()  # this thread's CPU: the core's is bounded through its wall time
    cpu_before = time.process_time()
    time.sleep(1.0)
    used = (time.process_time() - cpu_before) - (time.thread_time() - before)
    assert used < 0.1, f"an idle core used {used:.3f} s of CPU in 1 s"


def test_in_application_programming_erases_programs_and_refuses_as_the_flash_interface_does(
        run_image, programs):
    run = run_image(programs / "iap.elf")
    assert run.wait_for(r"iap: ([^\r\n]*)\r\n").group(1) == "1234 beef eop 1 pgerr 1"
    assert run.machine.flash.read(0x0801_0000, 4) == bytes.fromhex("3412efbe")  # in the flash file too


def test_the_independent_watchdog_resets_a_firmware_that_stops_reloading_it(run_image, programs):
    run = run_image(programs / "watchdog.elf")
    run.wait_for(r"reset by watchdog 1")  # after the reset the firmware sees IWDGRSTF
    assert run.text.count("watchdog: reset by watchdog 0") == 1
    assert "hil: reset: independent watchdog (IWDG) expired" in run.diagnostics
    time.sleep(0.3)
    assert run.diagnostics.count("hil: reset: independent watchdog (IWDG) expired") == 1  # reloaded now


def test_console_input_reaches_the_usart(run_image, programs):
    run = run_image(programs / "echo.elf")
    run.wait_for(r"echo: ready")
    run.machine.console_input(b"hi")
    run.wait_for(r"echo: H[\s\S]*echo: I")


def test_unmasking_instructions_are_found_in_flash():
    # cpsie i; nop; msr primask, r3 (F383 8810); data that only looks like one at an odd offset
    code = bytes.fromhex("62b6" "00bf" "83f31088" "0062b6")
    assert unmasking_sites(code) == [2, 8]


def test_the_brake_ecu_boots_with_its_config_and_without_emulator_diagnostics(run_image, brake_build):
    run = run_image(brake_build / "brake_ecu.elf", {"request_timeout": "250ms"})
    run.wait_for(r"brake: ready, request timeout 250 ms")
    assert run.diagnostics == []


def test_the_lead_for_timer_events_is_learned_from_how_long_the_host_took(run_image, programs):
    run = run_image(programs / "exceptions.elf")
    run.wait_for(r"exceptions: ")
    run.close()
    machine = run.machine
    events = RECENT_EVENTS + LEARN_EVERY  # enough for the lead to be set from these alone
    for _ in range(events):
        machine._learn(320_000)  # a busy host: 0.32 ms from the planned wake-up back to WFI
    assert machine.lead_ns == 400_000  # the p99 and a quarter
    for _ in range(events):
        machine._learn(2_000_000)
    assert machine.lead_ns == MAX_LEAD_NS  # never more than half a 1 kHz period
    for _ in range(events):
        machine._learn(20_000)
    assert machine.lead_ns == MIN_LEAD_NS
