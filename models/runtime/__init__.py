"""What a packaged solution runs: numpy, LightGBM and ``features`` only.

Everything here is vendored into the upload zip by ``harness.package``, so these modules must
never import training code, pandas or the harness. Training code builds on them (the offline
evaluation runs the same objects in their batch form), which is why offline and online scores
agree.
"""
