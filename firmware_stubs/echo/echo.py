"""Echo firmware: every frame in the configured id range comes back on the response id, same payload."""

import can


def _id(value):
    return int(value, 0) if isinstance(value, str) else int(value)


def setup(mcu):
    lo, hi = (_id(v) for v in mcu.config["ids"])
    response_id = _id(mcu.config["response_id"])
    ids = [i for i in range(lo, hi + 1) if i != response_id]

    def echo(msg):
        mcu.send(can.Message(arbitration_id=response_id, data=msg.data, is_fd=msg.is_fd,
                             bitrate_switch=msg.bitrate_switch, is_extended_id=response_id > 0x7FF))

    mcu.on_frame(echo, ids)
    mcu.printf("echo: answering %#x..%#x on %#x, delay %s", lo, hi, response_id, mcu.config.get("delay", 0))
