"""Target drivers behind one small protocol (:class:`hil.targets.base.Target`)."""
