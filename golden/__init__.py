"""The SpykeFlow models: the float reference and the bit-accurate integer golden model.

Imports neither :mod:`spykehw.rtl` nor :mod:`spykehw.sim` (DESIGN.md).
"""
