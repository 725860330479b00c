"""``python -m hil.firmware CONFIG.json``: run one emulated MCU (see :mod:`hil.firmware.mcu`)."""

import sys

from hil.buses import without_mf4

without_mf4()  # an MCU never writes MF4 logs; every MCU boot would pay for asammdf's import

from hil.firmware.mcu import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
