"""Brake ECU firmware: BrakeRequest in, a 1 kHz PI pressure loop on a first-order hydraulic model,
BrakeCommand / BrakeStatus / BrakeHeartbeat out (brake.dbc). Requests stop → safe state."""

STANDBY, ACTIVE, SAFE = 0, 1, 2
NO_FAULT, REQUEST_TIMEOUT, COUNTER_ERROR = 0, 1, 2
STATE_NAMES = {STANDBY: "standby", ACTIVE: "active", SAFE: "safe"}


class BrakeEcu:
    def __init__(self, mcu):
        c = mcu.config
        self.mcu = mcu
        self.timeout_s = mcu.seconds(c["request_timeout"])
        self.tau_s = mcu.seconds(c["tau"])
        self.dt_s = mcu.tick_ns / 1e9
        self.safe_pressure = float(c["safe_pressure"])
        self.max_pressure = float(c["max_pressure"])
        self.bar_per_mps2 = float(c["bar_per_mps2"])
        self.kp, self.ki = float(c["kp"]), float(c["ki"])
        self.state, self.fault = STANDBY, NO_FAULT
        self.pressure = self.target = self.integral = self.valve = 0.0
        self.last_request_ns = None
        self.request_counter = None
        self.counter_errors = 0
        self.tx = {"BrakeCommand": 0, "BrakeStatus": 0, "BrakeHeartbeat": 0}
        self.start_ns = mcu.now_ns()

    def on_request(self, signals, msg):
        counter = signals["RequestCounter"]
        if counter == self.request_counter:
            return  # a repeated frame carries nothing new (stale sender)
        if self.request_counter is not None and counter != (self.request_counter + 1) % 16:
            self.counter_errors += 1
            self.fault = COUNTER_ERROR
        self.request_counter = counter
        self.last_request_ns = self.mcu.frame_ns(msg)
        mode = signals["RequestMode"]
        if mode == 1:
            self.target = min(signals["DecelRequest"] * self.bar_per_mps2, self.max_pressure)
        elif mode == 2:
            self.target = min(signals["PressureRequest"], self.max_pressure)
        else:
            self.target = 0.0
        if self.state != ACTIVE:
            self.mcu.printf("brake: %s -> active (request counter %d)", STATE_NAMES[self.state], counter)
            self.state = ACTIVE
            if self.fault == REQUEST_TIMEOUT:
                self.fault = NO_FAULT
        self._send("BrakeCommand", TargetPressure=self.target, ValveCommand=self.valve * 100,
                   RequestCounter=counter, BrakeState=self.state, counter="CommandCounter")

    def tick(self, deadline_ns):
        if (self.state == ACTIVE and self.last_request_ns is not None
                and (deadline_ns - self.last_request_ns) / 1e9 > self.timeout_s):
            self.state, self.fault = SAFE, REQUEST_TIMEOUT
            self.target = self.safe_pressure
            self.mcu.printf("brake: request timeout (%.0f ms without BrakeRequest) -> safe state, %.1f bar",
                            self.timeout_s * 1e3, self.safe_pressure)
        error = self.target - self.pressure
        self.integral = min(max(self.integral + error * self.dt_s, 0.0), 1.0 / self.ki)
        self.valve = min(max(self.kp * error + self.ki * self.integral, 0.0), 1.0)
        self.pressure += (self.valve * self.max_pressure - self.pressure) * self.dt_s / self.tau_s

    def status(self):
        self._send("BrakeStatus", BrakeState=self.state, MeasuredPressure=max(self.pressure, 0.0),
                   RequestCounter=self.request_counter or 0, counter="StatusCounter")

    def heartbeat(self):
        uptime = (self.mcu.now_ns() - self.start_ns) // 1_000_000
        self._send("BrakeHeartbeat", BrakeState=self.state, FaultCode=self.fault,
                   UptimeMs=uptime % 2**32, counter="HeartbeatCounter", modulo=256)
        if self.fault == COUNTER_ERROR:
            self.fault = NO_FAULT  # reported once per heartbeat

    def _send(self, name, counter, modulo=16, **signals):
        signals[counter] = self.tx[name] % modulo
        self.tx[name] += 1
        self.mcu.send_message(name, signals)


def setup(mcu):
    ecu = BrakeEcu(mcu)
    mcu.on_message("BrakeRequest", ecu.on_request)
    mcu.on_tick(ecu.tick)
    mcu.every("10ms", ecu.status)
    mcu.every("100ms", ecu.heartbeat)
    mcu.printf("brake: ready, request timeout %.0f ms", ecu.timeout_s * 1e3)
