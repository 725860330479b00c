"""Recording: the lossless MCAP capture of a run, and its loader into numpy columns."""
