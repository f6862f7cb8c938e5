"""Developer benchmarks: speed, scale, passage backends and load (``python -m bench.<name>``).

They live beside the product, not in it: the wheel ships planqa's own packages only, so these
measure a source checkout. bench may import planqa.*; nothing in planqa imports bench (the CLI's
``planqa bench`` loads it through importlib, and says so where it is missing).
"""
