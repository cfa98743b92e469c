"""Simulations, plainly labelled as such: stand-ins for services we do not have offline."""
