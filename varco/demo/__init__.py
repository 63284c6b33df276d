"""The demo: everything in one process, on embedded defaults."""

from varco.demo.runner import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
