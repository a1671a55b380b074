"""What runs on Workers: the model builder, the DP trainer (Opacus) and DP statistics (OpenDP).

`spec` is torch-free (the SDK shares it); `builder`, `training` and `statistics` import torch or OpenDP and
are imported only where they are used.
"""
