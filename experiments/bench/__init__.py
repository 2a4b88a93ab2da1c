"""Benchmarks: saejax's speed and accuracy against its peers and against the hardware's bounds."""
