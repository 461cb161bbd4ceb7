"""Change products grounded in spectral physics."""
