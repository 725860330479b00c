"""``python -m hil.firmware CONFIG.json``: run one emulated MCU (see :mod:`hil.firmware.mcu`)."""

import sys

# An MCU never writes MF4 logs: keep python-can from importing asammdf at `import can` (seconds on
# every MCU boot; can.io.mf4 treats the ImportError as "MF4 not available").
sys.modules.setdefault("asammdf", None)

from hil.firmware.mcu import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
