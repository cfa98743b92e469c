"""Backends: one small class per engine, all implementing `smallfleet.backends.base.Backend`."""
