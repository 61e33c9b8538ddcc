"""Controllers written into the residual stream: e <- e + U e."""
