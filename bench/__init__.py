"""Benchmarks that drive a real ``stackvol serve`` process (see bench/README.md)."""
