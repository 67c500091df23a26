"""Loopback emulators that speak each platform's wire format; shared by tests, demo and benchmarks."""
