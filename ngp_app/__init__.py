"""ngp-app: Instant-NGP NeRF engine, CLI and desktop app."""

__version__ = "0.1.0"
